package scenarios

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/pipeline/query"
	"github.com/carepipe/carepipe/sim"
)

// queryToken is the query API's bearer token in these scenarios.
const queryToken = "query-Token-2718"

// queryInstance is an orchestrator instance with its own HTTP server on
// loopback, serving the query API as the binary does (the token guard
// around priorauth's query handler) at the address it advertises.
type queryInstance struct {
	*kafkatest.Instance
	addr string
}

// startQueryInstance starts an orchestrator instance of w that advertises
// its own HTTP server's address to the group.
func (w *paWorld) startQueryInstance(instanceID string) *queryInstance {
	w.t.Helper()
	spec := w.spec
	spec.PunctuateEvery = 50 * time.Millisecond
	return startQueryRunner(w.t, spec, priorauth.QueryHandler, pipeline.WithKafka(w.cluster.ClientOpts()...), pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithInstanceID(instanceID), pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithLogger(testLogger()), pipeline.WithClock(w.clock))
}

// startQueryRunner runs spec with opts, advertising an HTTP server on
// loopback that serves handler's query API behind the token guard, as the
// binary does.
func startQueryRunner(t *testing.T, spec pipeline.Spec, handler func(*pipeline.Runner) http.Handler, opts ...pipeline.Option) *queryInstance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	in := kafkatest.StartRunner(t, spec, append(opts, pipeline.WithAdvertisedHTTP(addr))...)
	srv := &http.Server{Handler: query.RequireToken(queryToken, handler(in.Runner)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// Registered after the runner's: runs first, so that no query is in
	// flight while the runners stop.
	t.Cleanup(func() { _ = srv.Close() })
	return &queryInstance{Instance: in, addr: addr}
}

// queryAnswer is one answer of the query API.
type queryAnswer struct {
	status     int
	retryAfter string
	answeredBy string
	id         string // the record's, on 200
	body       string
}

// get asks qi for prior authorization id, with auth as the Authorization
// header (none when empty) and any extra headers.
func (qi *queryInstance) get(t *testing.T, id, auth string, extra ...string) queryAnswer {
	t.Helper()
	a := qi.getPath(t, "/api/priorauth/"+id, auth, extra...)
	if a.status == http.StatusOK {
		var rec struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(a.body), &rec); err != nil {
			t.Fatalf("GET %s from %s: 200 with %v", id, qi.addr, err)
		}
		a.id = rec.ID
	}
	return a
}

// getPath asks qi for path.
func (qi *queryInstance) getPath(t *testing.T, path, auth string, extra ...string) queryAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+qi.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return queryAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), answeredBy: resp.Header.Get(query.AnsweredByHeader), body: string(b)}
}

// groupSettled reports whether every partition is owned by one of ins,
// each of them owns some and has its state in place, and each one's view
// of the group's query owners gives every partition an owner.
func groupSettled(ins []*queryInstance) bool {
	total := 0
	for _, qi := range ins {
		n := qi.Runner.AssignedPartitions()
		if n == 0 || !qi.Runner.Ready() {
			return false
		}
		total += n
	}
	if total != testPartitions {
		return false
	}
	for _, qi := range ins {
		for p := range int32(testPartitions) {
			if o := qi.Runner.QueryOwner(p); !o.Known || !o.Assigned {
				return false
			}
		}
	}
	return true
}

// owner is the instance of ins that owns id's partition now.
func owner(t *testing.T, ins []*queryInstance, id string) *queryInstance {
	t.Helper()
	for _, qi := range ins {
		if _, owned, _ := qi.Runner.Owner(id); owned {
			return qi
		}
	}
	t.Fatalf("no instance owns the partition of %s", id)
	return nil
}

// Issue 21: with three instances of the orchestrator, each with its own
// query API, every prior authorization is answered by each of the three:
// by the one holding it from its state, by the other two by sending the
// query on to it. The token is checked on forwarded calls too, and a
// query is never sent on twice.
func TestQueriesAnsweredByEveryInstance(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 21, Approve: 0.6, Deny: 0.2, Pend: 0.2})
	ins := []*queryInstance{w.startQueryInstance("pa-q1"), w.startQueryInstance("pa-q2"), w.startQueryInstance("pa-q3")}

	const n = 60
	recs, rxIDs := sim.PriorAuthPrescriptions(21, n)
	ids := make([]string, n)
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	// A documentation request is committed with the record that made
	// it: once every one is, every record is in some instance's state.
	w.awaitKeys(priorauth.TopicDocumentationRequested, ids)
	kafkatest.Eventually(t, 30*time.Second, "three instances owning every partition, each knowing every owner", func() bool { return groupSettled(ins) })

	bearer := "Bearer " + queryToken
	forwarded := make(map[string]int)
	for _, id := range ids {
		own := owner(t, ins, id)
		for _, qi := range ins {
			a := qi.get(t, id, bearer)
			if a.status != http.StatusOK || a.id != id {
				t.Fatalf("GET %s from %s: %d %q (record %q), want 200 with its record", id, qi.addr, a.status, a.body, a.id)
			}
			switch {
			case qi == own && a.answeredBy != "":
				t.Errorf("GET %s from its owner %s was sent on to %s", id, qi.addr, a.answeredBy)
			case qi != own && a.answeredBy != own.addr:
				t.Errorf("GET %s from %s answered by %q, want its owner %s", id, qi.addr, a.answeredBy, own.addr)
			case qi != own:
				forwarded[qi.addr]++
			}
		}
	}
	for _, qi := range ins {
		if forwarded[qi.addr] == 0 {
			t.Errorf("%s sent no query on: every id's owner was itself", qi.addr)
		}
	}

	// The token: a query sent on to the owner is checked there like any
	// other, so a forged forwarded call without it is refused, and the
	// instance a client asks checks it before sending anything on.
	id := ids[0]
	own := owner(t, ins, id)
	var other *queryInstance
	for _, qi := range ins {
		if qi != own {
			other = qi
			break
		}
	}
	for _, tt := range []struct {
		name  string
		to    *queryInstance
		auth  string
		extra []string
		want  int
	}{
		{"a forwarded call without the token, at the owner", own, "", []string{query.ForwardedHeader, other.addr}, http.StatusUnauthorized},
		{"a forwarded call with a wrong token, at the owner", own, "Bearer wrong", []string{query.ForwardedHeader, other.addr}, http.StatusUnauthorized},
		{"a forwarded call with the token, at the owner", own, bearer, []string{query.ForwardedHeader, other.addr}, http.StatusOK},
		{"a call without the token, at another instance", other, "", nil, http.StatusUnauthorized},
		{"a call with the token, at another instance", other, bearer, nil, http.StatusOK},
		// The sender thought the other instance held it: it says to
		// retry rather than send it on a second time.
		{"a forwarded call with the token, at another instance", other, bearer, []string{query.ForwardedHeader, own.addr}, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.to.get(t, id, tt.auth, tt.extra...)
			if a.status != tt.want {
				t.Fatalf("%d %q, want %d", a.status, a.body, tt.want)
			}
			if tt.want == http.StatusServiceUnavailable && a.retryAfter != strconv.Itoa(query.RetryAfter) {
				t.Errorf("Retry-After %q, want %d", a.retryAfter, query.RetryAfter)
			}
			if tt.want == http.StatusServiceUnavailable && a.answeredBy != "" {
				t.Errorf("sent on to %s: a forwarded call went on a second time", a.answeredBy)
			}
		})
	}
}

// Issue 21: while the group rebalances, a query for a partition that is
// moving between instances is told to retry (503 with Retry-After), not
// answered 404. The rebalance is held in the middle: a third instance
// joins, the first round takes the partitions it is to get from their
// owners (cooperative, KIP-429), and the second round, which gives them
// to it, is held at its SyncGroup until the check is done.
func TestQueryDuringRebalanceSaysRetry(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 22, Approve: 1})
	ins := []*queryInstance{w.startQueryInstance("pa-r1"), w.startQueryInstance("pa-r2")}
	recs, rxIDs := sim.PriorAuthPrescriptions(22, 40)
	ids := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	w.awaitKeys(priorauth.TopicDocumentationRequested, ids)
	kafkatest.Eventually(t, 30*time.Second, "two instances owning every partition", func() bool { return groupSettled(ins) })

	// Syncs of a generation after the first one the third instance's
	// join makes wait for release.
	var (
		mu    sync.Mutex
		armed bool
		first int32 = -1
	)
	held := make(chan struct{})
	var heldOnce sync.Once
	release := make(chan struct{})
	var releaseOnce sync.Once
	done := func() { releaseOnce.Do(func() { close(release) }) }
	k := w.cluster.Kafka()
	k.ControlKey(int16(kmsg.SyncGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		r := req.(*kmsg.SyncGroupRequest)
		if r.Group != w.spec.Group {
			return nil, nil, false
		}
		mu.Lock()
		hold := false
		if armed {
			if first < 0 {
				first = r.Generation
			}
			hold = r.Generation > first
		}
		mu.Unlock()
		if hold {
			heldOnce.Do(func() { close(held) })
			k.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	mu.Lock()
	armed = true
	mu.Unlock()
	ins = append(ins, w.startQueryInstance("pa-r3"))
	// Released before the instances stop (cleanups run last first).
	t.Cleanup(done)

	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the rebalance's second round never reached its SyncGroup")
	}
	// The first round has given every member its assignment, and the
	// second is held: the partitions moving to the third instance are
	// no one's in the first instance's view until it is released.
	asker := ins[0]
	var moving []int32
	for p := range int32(testPartitions) {
		if o := asker.Runner.QueryOwner(p); o.Known && !o.Assigned {
			moving = append(moving, p)
		}
	}
	if len(moving) == 0 {
		t.Fatal("the first instance sees no partition moving while the rebalance's second round is held")
	}
	asked := 0
	for _, id := range ids {
		p, _, _ := asker.Runner.Owner(id)
		if p != moving[0] {
			continue
		}
		asked++
		a := asker.get(t, id, "Bearer "+queryToken)
		if a.status != http.StatusServiceUnavailable || a.retryAfter != strconv.Itoa(query.RetryAfter) {
			t.Errorf("GET %s (partition %d, moving) during the rebalance: %d Retry-After %q %q, want 503 with Retry-After %d", id, p, a.status, a.retryAfter, a.body, query.RetryAfter)
		}
	}
	if asked == 0 {
		t.Fatalf("no id of partition %d among %d", moving[0], len(ids))
	}

	// Once the rebalance completes, every instance answers every id.
	done()
	kafkatest.Eventually(t, 30*time.Second, "three instances owning every partition, each knowing every owner", func() bool { return groupSettled(ins) })
	for _, id := range ids {
		for _, qi := range ins {
			if a := qi.get(t, id, "Bearer "+queryToken); a.status != http.StatusOK || a.id != id {
				t.Fatalf("GET %s from %s after the rebalance: %d %q", id, qi.addr, a.status, a.body)
			}
		}
	}
}

// Issue 21, on datasync's read model: with three instances of the
// reconciliation stage, each with its own query API, every patient is
// answered by each of the three, at the version its last validated record
// carries, and the same by all three.
func TestPatientQueriesAnsweredByEveryInstance(t *testing.T) {
	w := newSyncWorld(t)
	recs, _ := sim.DataSyncRecords(21, 600)
	w.start(w.cdcSpec(), "cdc-1")
	w.start(w.validationSpec(), "val-1")
	var ins []*queryInstance
	for _, id := range []string{"rec-1", "rec-2", "rec-3"} {
		ins = append(ins, startQueryRunner(t, w.reconcileSpec(), datasync.QueryHandler,
			pipeline.WithKafka(w.cluster.ClientOpts()...), pipeline.WithCommitInterval(50*time.Millisecond),
			pipeline.WithTransactionTimeout(5*time.Second), pipeline.WithInstanceID(id),
			pipeline.WithLogger(testLogger()), pipeline.WithClock(w.clock)))
	}
	produceAll(t, w.prod, recs)
	w.waitCaughtUp(w.cdcSpec(), w.validationSpec(), w.reconcileSpec())
	kafkatest.Eventually(t, 30*time.Second, "three instances owning every partition, each knowing every owner", func() bool { return groupSettled(ins) })

	// Each patient's last validated version, by its canonical id (the
	// validated record's key).
	want := map[string]int64{}
	for _, r := range w.read(datasync.ValidatedTopic(datasync.Patient)) {
		_, _, version, _, err := w.codec.DecodeValue(r.Value, datasync.Patient)
		if err != nil {
			t.Fatal(err)
		}
		want[string(r.Key)] = max(want[string(r.Key)], version)
	}
	if len(want) < 10 {
		t.Fatalf("%d validated patients, want at least 10 to query", len(want))
	}
	bearer := "Bearer " + queryToken
	forwarded := make(map[string]int)
	for id, version := range want {
		own := owner(t, ins, id)
		var first string
		for _, qi := range ins {
			a := qi.getPath(t, "/api/patients/"+id, bearer)
			var got struct {
				Version int64 `json:"version"`
			}
			if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &got) != nil || got.Version != version {
				t.Fatalf("GET patient %s from %s: %d %q, want 200 at version %d", id, qi.addr, a.status, a.body, version)
			}
			if first == "" {
				first = a.body
			} else if a.body != first {
				t.Errorf("patient %s: %s answers differently from the first instance", id, qi.addr)
			}
			if qi != own {
				if a.answeredBy != own.addr {
					t.Errorf("GET patient %s from %s answered by %q, want its owner %s", id, qi.addr, a.answeredBy, own.addr)
				}
				forwarded[qi.addr]++
			}
		}
		// The generic route goes the same way.
		if a := ins[0].getPath(t, "/api/sync/patient/"+id, bearer); a.status != http.StatusOK || a.body != first {
			t.Errorf("GET /api/sync/patient/%s from %s: %d, want 200 with the patient", id, ins[0].addr, a.status)
		}
	}
	for _, qi := range ins {
		if forwarded[qi.addr] == 0 {
			t.Errorf("%s sent no query on: every patient's owner was itself", qi.addr)
		}
	}
}
