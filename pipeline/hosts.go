package pipeline

import (
	"cmp"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Query owners: which member of the group answers queries for which
// partition, so that any instance can send a query on to the one that
// holds the key (Kafka Streams' application.server and its
// partitionsByHost).
//
// Each member puts its advertised query address in its join metadata's
// user data (memberInfo). The leader, having planned the assignment,
// gives every member the whole map, each address with the partitions its
// member owns once this round's assignment is in place, in every member's
// assignment user data (ownersInfo). So after each sync every member
// knows every owner. A partition that changes owner is in no one's
// assignment for the round between its revoke and its assignment
// (KIP-429), and so in no one's entry of the map: a query for it is told
// to retry, which is right, as neither member can answer it then.
//
// The join metadata stays deterministic (the address, or nothing when
// none is advertised, the same bytes as a member of a carepipe without
// query owners sends): a static member that restarts with the same
// address rejoins without a rebalance. One whose address changed makes a
// rebalance, which the others need to learn the new address.

// queryInfoVersion is the version of memberInfo and ownersInfo. A reader
// takes any version from 1 up, reading the fields it knows.
const queryInfoVersion = 1

// memberInfo is a member's join metadata user data.
type memberInfo struct {
	V    int    `json:"v"`
	HTTP string `json:"http,omitempty"`
}

// ownersInfo is the assignment user data every member gets: each
// advertised address (empty: members that advertise none) with the
// partitions its members own, sorted by address.
type ownersInfo struct {
	V      int         `json:"v"`
	Owners []ownerInfo `json:"owners"`
}

type ownerInfo struct {
	HTTP       string  `json:"http"`
	Partitions []int32 `json:"partitions"`
}

// WithAdvertisedHTTP sets the address, host:port, at which the other
// instances of the group reach this instance's query API (Kafka Streams'
// application.server): the group's leader tells every member which
// partitions' queries each address answers (see [Runner.QueryOwner]).
// The host must be one the other instances can reach: a pod's IP or its
// stable DNS name, not a wildcard or loopback address unless every
// instance runs on one machine. Default: none; the instance advertises
// nothing and queries for its partitions cannot be sent on to it.
func WithAdvertisedHTTP(hostPort string) Option {
	return func(c *cfg) { c.advertiseHTTP = hostPort }
}

// checkAdvertised is nil for an empty address or a host:port with a host
// and a port from 1 to 65535.
func checkAdvertised(hostPort string) error {
	if hostPort == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return errors.New("advertised HTTP address " + strconv.Quote(hostPort) + " is not host:port")
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return errors.New("advertised HTTP address " + strconv.Quote(hostPort) + " needs a host and a port from 1 to 65535")
	}
	return nil
}

// memberUserData is the join metadata user data advertising addr: nil
// when addr is empty.
func memberUserData(addr string) []byte {
	if addr == "" {
		return nil
	}
	b, _ := json.Marshal(memberInfo{V: queryInfoVersion, HTTP: addr})
	return b
}

// advertisedBy is the address a member's join metadata user data
// advertises: empty when it has none or one this version cannot read.
func advertisedBy(userData []byte) string {
	var m memberInfo
	if len(userData) == 0 || json.Unmarshal(userData, &m) != nil || m.V < 1 {
		return ""
	}
	return m.HTTP
}

// ownersUserData encodes owners (address -> partitions) as ownersInfo.
func ownersUserData(owners map[string][]int32) []byte {
	info := ownersInfo{V: queryInfoVersion, Owners: []ownerInfo{}}
	for addr, ps := range owners {
		ps = slices.Clone(ps)
		slices.Sort(ps)
		info.Owners = append(info.Owners, ownerInfo{HTTP: addr, Partitions: ps})
	}
	slices.SortFunc(info.Owners, func(a, b ownerInfo) int { return cmp.Compare(a.HTTP, b.HTTP) })
	b, _ := json.Marshal(info)
	return b
}

// parseOwners reads the owners map (partition -> address) from a
// member's sync assignment; nil when the assignment carries none: its
// leader runs a balancer without query owners (range, or an older
// carepipe), or one whose user data this version cannot read.
func parseOwners(assignment []byte) map[int32]string {
	var a kmsg.ConsumerMemberAssignment
	if a.ReadFrom(assignment) != nil || len(a.UserData) == 0 {
		return nil
	}
	var info ownersInfo
	if json.Unmarshal(a.UserData, &info) != nil || info.V < 1 || info.Owners == nil {
		return nil
	}
	owners := make(map[int32]string)
	for _, o := range info.Owners {
		for _, p := range o.Partitions {
			owners[p] = o.HTTP
		}
	}
	return owners
}

// ownersAssignment is a balance plan whose every member assignment
// carries the owners map as its user data.
type ownersAssignment struct {
	plan     *kgo.BalancePlan
	userData []byte
}

func (a ownersAssignment) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := a.plan.IntoSyncAssignment()
	for i := range out {
		var ma kmsg.ConsumerMemberAssignment
		if err := ma.ReadFrom(out[i].MemberAssignment); err != nil {
			// Encoded by the plan just now: it cannot fail to read. A
			// member whose assignment did would go without the map,
			// which only stops it forwarding.
			continue
		}
		ma.UserData = a.userData
		out[i].MemberAssignment = ma.AppendTo(nil)
	}
	return out
}

// QueryOwner says who answers queries for a partition, as the group's
// last sync said.
type QueryOwner struct {
	// Known: the last sync carried the group's owners. It does not when
	// the group's leader runs a balancer without them (an older
	// carepipe), before this instance's first sync of the session, or
	// between sessions.
	Known bool
	// Assigned: some member owns the partition now. It is false while
	// the partition moves between members, which takes one rebalance
	// under the cooperative protocol, and once this instance has had
	// the partition revoked until the next sync says who has it.
	Assigned bool
	// Addr is the owner's advertised query address; empty when it
	// advertises none.
	Addr string
	// Self: the owner is this instance.
	Self bool
}

// AdvertisedHTTP is the query address this instance advertises to the
// group (see [WithAdvertisedHTTP]); empty: none.
func (r *Runner) AdvertisedHTTP() string { return r.cfg.advertiseHTTP }

// QueryOwner says who answers queries for partition (see [Runner.Owner]
// for a key's partition).
func (r *Runner) QueryOwner(partition int32) QueryOwner {
	r.mu.Lock()
	s := r.cur
	r.mu.Unlock()
	if s == nil {
		return QueryOwner{}
	}
	owners := s.synced.queryOwners()
	if owners == nil {
		return QueryOwner{}
	}
	addr, assigned := owners[partition]
	r.mu.Lock()
	_, self := s.assigned[partition]
	r.mu.Unlock()
	if self {
		return QueryOwner{Known: true, Assigned: true, Addr: r.cfg.advertiseHTTP, Self: true}
	}
	if assigned && addr != "" && addr == r.cfg.advertiseHTTP {
		// The map says this instance, but it no longer has the
		// partition: revoked since the sync, on its way to another
		// member.
		assigned = false
	}
	return QueryOwner{Known: true, Assigned: assigned, Addr: addr}
}
