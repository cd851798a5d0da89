package scenarios

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// punctuations records, per partition, the latest clock time a
// punctuation of the orchestrator has finished at: a barrier that shows
// the timers were looked at, at a time, without sleeping.
type punctuations struct {
	mu   sync.Mutex
	seen map[int32]time.Time
}

// wrap makes spec's punctuation record into p.
func (p *punctuations) wrap(spec *pipeline.Spec) {
	p.seen = map[int32]time.Time{}
	punctuate := spec.Punctuate
	spec.Punctuate = func(c *pipeline.Context) error {
		now := c.Now()
		err := punctuate(c)
		p.mu.Lock()
		defer p.mu.Unlock()
		if now.After(p.seen[c.Partition()]) {
			p.seen[c.Partition()] = now
		}
		return err
	}
}

// await waits until every partition has finished a punctuation at at or
// later.
func (p *punctuations) await(t *testing.T, at time.Time) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, "every partition punctuated at "+at.Format(time.RFC3339), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i := int32(0); i < testPartitions; i++ {
			if p.seen[i].Before(at) {
				return false
			}
		}
		return true
	})
}

// Issue 18: a payer in New York writes determinationDate with a colonless
// offset and the approval's expirationDate as a date alone, as X12 278 and
// FHIR ClaimResponse.preAuthPeriod give it. Every approval completes its
// workflow (none goes to the error topic), and expires at the end of that
// date in the payer's zone: not one second earlier, on the virtual clock.
// Late events afterwards are counted and recorded, never errors; a
// reversal dated after the decision still is one.
func TestPriorAuthDateOnlyExpiration(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 19, Approve: 1, ExpireAfter: 30 * 24 * time.Hour,
		PayerTimeZone: ny, DateOnlyExpiration: true})
	cfg := priorauth.DefaultConfig()
	cfg.PayerTimeZone = ny
	set := metrics.NewSet()
	p, err := priorauth.New(priorauth.WithConfig(cfg), priorauth.WithMetrics(set))
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec()
	var punct punctuations
	punct.wrap(&spec)
	in := w.startSpec("pa-1", spec)

	recs, rxIDs := sim.PriorAuthPrescriptions(9, 24)
	ids := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	w.awaitKeys(priorauth.TopicWorkflowCompleted, ids)

	// The clock reads 2025-03-01T09:00Z (04:00 EST): the payer dates the
	// approvals 2025-03-01T04:00:00-0500 and writes 2025-03-31, thirty
	// days on, as their expiration. That day ends at midnight EDT.
	end := time.Date(2025, 4, 1, 4, 0, 0, 0, time.UTC)
	for _, r := range w.readToEnd(priorauth.TopicDeterminationReceived) {
		var d struct{ DeterminationDate, ExpirationDate string }
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		if d.DeterminationDate != "2025-03-01T04:00:00-0500" || d.ExpirationDate != "2025-03-31" {
			t.Fatalf("the payer wrote %+v: the scenario tests nothing", d)
		}
	}

	// One second before the end of the day, and after its end in UTC:
	// every partition looks at its timers, and nothing may expire.
	w.clock.Set(end.Add(-time.Second))
	punct.await(t, end.Add(-time.Second))
	w.clock.Set(end)
	w.awaitStatus(ids, func(s string, _ map[string]any) bool { return s == string(priorauth.StatusExpired) })

	// Each expired once, at the end of the day: an expiry that had fired
	// at the earlier punctuation would carry that time.
	n := map[string]int{}
	for _, r := range w.readToEnd(priorauth.TopicStatus) {
		var v struct{ Status, Timestamp, Reason string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status != string(priorauth.StatusExpired) {
			continue
		}
		n[string(r.Key)]++
		if v.Timestamp != "2025-04-01T04:00:00Z" || !strings.Contains(v.Reason, "(expirationDate 2025-03-31)") {
			t.Errorf("%s expired at %s (%s), want 2025-04-01T04:00:00Z, the end of 2025-03-31 in New York", r.Key, v.Timestamp, v.Reason)
		}
	}
	for _, id := range ids {
		if n[id] != 1 {
			t.Errorf("%s expired %d times, want once", id, n[id])
		}
	}

	// Late events: a PENDED dated by day before the approval, a DENIED
	// dated before it, and a communication report again (a repeat). Then
	// a DENIED dated after the approval, which would reverse it.
	late := func(id, status, date string) *kgo.Record {
		v := fmt.Sprintf(`{"priorAuthId":%q,"determinationStatus":%q,"determinationDate":%q}`, id, status, date)
		return &kgo.Record{Topic: priorauth.TopicDeterminationReceived, Key: []byte(id), Value: []byte(v)}
	}
	produceAll(t, w.prod, []*kgo.Record{
		late(ids[0], "PENDED", "2025-02-28"),
		late(ids[1], "DENIED", "2025-03-01T03:59:00-0500"),
		{Topic: priorauth.TopicCommunicationCompleted, Key: []byte(ids[2]), Value: []byte(`{"priorAuthId":"` + ids[2] + `","completedChannels":["EHR"]}`)},
		late(ids[3], "DENIED", "2025-03-02T09:00:00+0000"),
	})
	stale := set.GetOrCreateCounter(`carepipe_priorauth_stale_events_total{pipeline="priorauth",kind="determination"}`)
	kafkatest.Eventually(t, 30*time.Second, "two stale determinations counted", func() bool { return stale.Get() == 2 })
	w.waitIdle(60 * time.Second)
	if d := set.GetOrCreateCounter(`carepipe_priorauth_duplicates_total{pipeline="priorauth"}`).Get(); d < 1 {
		t.Errorf("duplicates %d: the repeated communication report was not counted as one", d)
	}
	// The record as the query API answers it from the runner's state.
	resp := httptest.NewRecorder()
	priorauth.QueryHandler(in.Runner).ServeHTTP(resp, httptest.NewRequest(http.MethodGet, "/api/priorauth/"+ids[0], nil))
	if resp.Code != http.StatusOK {
		t.Fatalf("GET /api/priorauth/%s: %d %s", ids[0], resp.Code, resp.Body)
	}
	var rec struct {
		Status        priorauth.Status `json:"status"`
		StatusHistory []struct {
			Status priorauth.Status `json:"status"`
			Reason string           `json:"reason"`
			Late   bool             `json:"late"`
		} `json:"statusHistory"`
	}
	if err := json.Unmarshal(resp.Body.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.StatusHistory) == 0 {
		t.Fatalf("%s has no status history", ids[0])
	}
	last := rec.StatusHistory[len(rec.StatusHistory)-1]
	if rec.Status != priorauth.StatusExpired || !last.Late || !strings.Contains(last.Reason, "PENDED") {
		t.Errorf("%s: status %s, history ends %+v; want EXPIRED and the late PENDED recorded", ids[0], rec.Status, last)
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	errs := w.readToEnd(priorauth.TopicErrors)
	if len(errs) != 1 || string(errs[0].Key) != ids[3] {
		t.Fatalf("%d records in the error topic, want the reversal of %s alone", len(errs), ids[3])
	}
}
