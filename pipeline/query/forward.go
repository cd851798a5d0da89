package query

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	"github.com/carepipe/carepipe/pipeline"
)

const (
	// ForwardedHeader marks a query one instance sent on to another; its
	// value is the sender's advertised address ("-" if it advertises
	// none). An instance never sends a query so marked on again.
	ForwardedHeader = "Carepipe-Forwarded-From"
	// AnsweredByHeader, on a forwarded query's answer, is the address of
	// the instance that answered it.
	AnsweredByHeader = "Carepipe-Answered-By"
	// RetryAfter is the Retry-After, in seconds, of the answers that say
	// to retry: about one rebalance round or a small store's restore.
	RetryAfter = 1
)

// Forwarder sends queries for keys other instances hold on to them. It
// holds its own HTTP client connections to the other instances.
type Forwarder struct {
	r         *pipeline.Runner
	transport *http.Transport
	discard   *log.Logger
}

// NewForwarder is a Forwarder for the queries of r's state.
func NewForwarder(r *pipeline.Runner) *Forwarder {
	return &Forwarder{
		r: r,
		transport: &http.Transport{
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			// An owner that does not answer within this is most
			// likely gone: the client is told to retry, by when the
			// group will have moved its partitions.
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       30 * time.Second,
		},
		// The proxy's own log lines may quote the URL, and so a key.
		discard: log.New(io.Discard, "", 0),
	}
}

// Forward answers req, a query for key, when this instance does not hold
// key's partition, and reports whether it did:
//
//   - the partition's owner advertises a query address: the query is
//     sent on to it and its answer passed back (with AnsweredByHeader);
//   - the partition has no owner now (it moves between members), this
//     instance, advertising an address, has not yet heard the group's
//     owners, or req was forwarded here already: 503 with Retry-After;
//   - the owner is not reachable: 503 with Retry-After (it has most
//     likely left, and the group will move its partitions).
//
// It does not answer (false) when this instance holds the partition
// (the caller answers from its state, or says it is restoring), before
// the runner has learned the partition count, or when the owner is known
// not to be reachable for queries: the group's leader gives no owners
// (an older carepipe) and this instance advertises nothing, or the owner
// advertises nothing. The caller then answers as a lone instance would.
func (f *Forwarder) Forward(w http.ResponseWriter, req *http.Request, key string) bool {
	p, owned, _ := f.r.Owner(key)
	if p < 0 || owned {
		return false
	}
	o := f.r.QueryOwner(p)
	switch {
	case !o.Known && f.r.AdvertisedHTTP() == "":
		return false
	case !o.Known:
		retry(w, fmt.Sprintf("this instance has not yet heard which instance holds partition %d (the group is rebalancing); try again shortly", p))
	case !o.Assigned:
		retry(w, fmt.Sprintf("partition %d is moving between instances (the group is rebalancing); try again shortly", p))
	case req.Header.Get(ForwardedHeader) != "":
		// The sender thought this instance holds the partition: one of
		// the two has an older view of the group than the other.
		retry(w, fmt.Sprintf("partition %d is not held by the instance this query was sent on to (the group is rebalancing); try again shortly", p))
	case o.Addr == "":
		return false
	default:
		f.proxy(w, req, o.Addr, p)
	}
	return true
}

// proxy sends req on to addr and passes its answer back.
func (f *Forwarder) proxy(w http.ResponseWriter, req *http.Request, addr string, p int32) {
	from := f.r.AdvertisedHTTP()
	if from == "" {
		from = "-"
	}
	rp := &httputil.ReverseProxy{
		// Rewrite (not Director) so that the client's X-Forwarded-*
		// headers are dropped, not trusted; Authorization goes on
		// unchanged and the owner checks it.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.Host = addr
			pr.Out.Header.Set(ForwardedHeader, from)
			pr.SetXForwarded()
		},
		Transport: f.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set(AnsweredByHeader, addr)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			// The error quotes the URL, so the key: not passed on.
			retry(w, fmt.Sprintf("the instance holding partition %d did not answer; try again shortly", p))
		},
		ErrorLog: f.discard,
	}
	rp.ServeHTTP(w, req)
}

// retry answers 503 with Retry-After and msg.
func retry(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
