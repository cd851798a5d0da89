// Package query is what the pipelines' query APIs share to answer a key
// from any instance of a group: it sends a query for a key that another
// instance holds on to that instance (a reverse proxy to the address it
// advertises, see pipeline.WithAdvertisedHTTP), says to retry while the
// group rebalances, and checks the API's bearer token.
//
// Invariants it keeps:
//
//   - A query is sent on at most once: the forwarded request is marked
//     (ForwardedHeader), and an instance that gets a marked query for a
//     key it does not hold says to retry rather than send it on again,
//     so two instances with different views of the group never bounce a
//     query between them.
//   - The Authorization header goes with the query unchanged, and the
//     instance that answers checks it as it checks any query: forwarding
//     neither grants nor needs more than the client's own token.
//   - While the key's partition has no owner (it moves between members,
//     or this instance has not yet heard who owns it) or its owner's
//     state is restoring, the answer is 503 with Retry-After, never a 404
//     that would say the key does not exist.
//   - Nothing it logs or answers names a key: errors name partitions.
//
// Why forward rather than redirect (307 to the owner): behind one
// Kubernetes Service or an ingress, clients reach the Service, not the
// pods, so a redirect to a pod address would fail for them, and it would
// show them the cluster's internal addresses; clients also drop the
// Authorization header on a redirect to another host (Go's http.Client
// does), so the redirected query would be refused. Forwarding needs only
// that the pods reach each other, which they do on a pod network.
//
// It trusts the group: an address advertised in the group's metadata gets
// queries with their tokens, so only principals allowed to join the group
// (Kafka ACLs on it) may be given the query API's token's trust.
package query
