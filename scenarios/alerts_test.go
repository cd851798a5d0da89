package scenarios

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

func workload(t *testing.T, seed int64, poison float64) *sim.Alerts {
	t.Helper()
	g, err := sim.NewAlerts(sim.AlertsWorkload{
		Seed:             seed,
		Patients:         300,
		AlertFraction:    0.2,
		PoisonFraction:   poison,
		EnvelopeFraction: 0.5,
		MisKeyedFraction: 0.2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Scenario 1: 10,000 seeded observations in, exactly the expected alerts
// out, compared as a multiset by alert id.
func TestAlertsExactlyTheExpectedAlerts(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 1, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(10000)
	in := w.start("")
	w.produce(recs)
	w.waitIdle(60 * time.Second)

	want := sim.ExpectedAlertIDs(truths)
	if len(want) < 1000 {
		t.Fatalf("workload has only %d expected alerts", len(want))
	}
	got := decodeAlerts(t, w.readAll(alerts.TopicAlerts))
	diffMultiset(t, got, want)
	if errs := w.readAll(w.spec.ErrorTopic); len(errs) != 0 {
		t.Errorf("%d records in the error topic, want none", len(errs))
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Scenario 2: the process dies between produce and commit: its EndTxn never
// reaches the broker. A restarted instance with the same instance id fences
// it, its open transaction is aborted, and every expected alert is still
// committed exactly once.
func TestAlertsCrashBetweenProduceAndCommit(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 2, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(4000)

	// The fault: hold the first committing EndTxn until the successor has
	// fenced the zombie, then drop the connection it came on.
	crashed, release, fenced := crashFault(w.cluster.Kafka())

	zombie := w.start("node-1")
	w.produce(recs[:2000])
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the crash fault never fired")
	}
	// The zombie is stuck before its commit. Kill it (its Run returns once
	// its EndTxn fails) and start its successor, which fences it.
	zombie.Cancel()
	successor := w.start("node-1")
	select {
	case <-fenced:
	case <-time.After(20 * time.Second):
		t.Fatal("the successor never initialised its producer")
	}
	close(release)
	if err := zombie.Stop(); err != nil {
		t.Fatalf("zombie: %v", err)
	}
	w.produce(recs[2000:])
	w.waitIdle(60 * time.Second)

	want := sim.ExpectedAlertIDs(truths)
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), want)
	// The zombie's alerts of its doomed transaction are in the log, aborted:
	// the crash came after produce, and read_committed never saw them.
	if n := len(w.readUncommitted(alerts.TopicAlerts)); n <= len(want) {
		t.Errorf("log holds %d alerts with aborted ones, want more than the %d committed: the crash did not come after produce", n, len(want))
	}
	if err := successor.Stop(); err != nil {
		t.Fatal(err)
	}
}

// errClosedByTest makes kfake close the connection the held EndTxn came on,
// as a dying process's would be.
var errClosedByTest = kerr.NetworkException

// Scenario 3: two instances in one group, the second joining mid-stream:
// a rebalance while records are in flight loses and duplicates nothing.
func TestAlertsRebalanceMidStream(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 3, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(10000)

	a := w.start("")
	w.produce(recs[:5000])
	// Join while the first half is being processed.
	kafkatest.Eventually(t, 30*time.Second, "the first instance consuming", func() bool {
		return a.Runner.Stats().RecordsIn > 0
	})
	b := w.start("")
	w.produce(recs[5000:])
	w.waitIdle(90 * time.Second)

	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), sim.ExpectedAlertIDs(truths))
	sa, sb := a.Runner.Stats(), b.Runner.Stats()
	if sa.RecordsIn == 0 || sb.RecordsIn == 0 {
		t.Errorf("both instances must have processed records: a=%d b=%d", sa.RecordsIn, sb.RecordsIn)
	}
	if sa.Aborts+sb.Aborts == 0 {
		t.Logf("the rebalance landed between transactions (no abort)")
	}
	for _, in := range []*kafkatest.Instance{a, b} {
		if err := in.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// Scenario 4: poison records land in the error topic byte-identical, with
// their coordinates, and the good records around them are processed.
func TestAlertsPoisonRecordsLandWholeInErrorTopic(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 4, 0.05)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(3000)
	in := w.start("")
	w.produce(recs)
	w.waitIdle(60 * time.Second)

	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), sim.ExpectedAlertIDs(truths))

	type src struct {
		partition int32
		offset    int64
	}
	errs := map[src]*kgo.Record{}
	for _, r := range w.readAll(w.spec.ErrorTopic) {
		h := headerMap(r)
		if h["source-topic"] != alerts.TopicObservations {
			t.Errorf("error record from %q; poison is produced to %s", h["source-topic"], alerts.TopicObservations)
			continue
		}
		p, _ := strconv.Atoi(h["source-partition"])
		o, _ := strconv.ParseInt(h["source-offset"], 10, 64)
		errs[src{int32(p), o}] = r
		if h["error-type"] == "" || h["error-message"] == "" {
			t.Errorf("error record without error-type or error-message: %v", h)
		}
	}
	kinds := map[string]int{}
	poison := 0
	for i, tr := range truths {
		if tr.Poison == "" {
			continue
		}
		poison++
		kinds[tr.Poison]++
		r := recs[i]
		e, ok := errs[src{r.Partition, r.Offset}]
		if !ok {
			t.Errorf("poison %s at %d/%d is not in the error topic", tr.Poison, r.Partition, r.Offset)
			continue
		}
		if !bytes.Equal(e.Value, r.Value) || !bytes.Equal(e.Key, r.Key) {
			t.Errorf("poison %s at %d/%d: error record differs from the input", tr.Poison, r.Partition, r.Offset)
		}
		for _, h := range r.Headers {
			if headerMap(e)[h.Key] != string(h.Value) {
				t.Errorf("poison %s: header %q lost", tr.Poison, h.Key)
			}
		}
	}
	if len(errs) != poison {
		t.Errorf("error topic holds %d records, want %d (one per poison record)", len(errs), poison)
	}
	for _, k := range sim.PoisonKinds() {
		if kinds[k] == 0 {
			t.Errorf("workload produced no %s poison; the scenario proves nothing for it", k)
		}
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// Scenario 5: after a restart, the patient table is restored before
// processing resumes (the first alert processed is enriched) and the
// patient-alerts store continues from its changelog (each patient's alert
// sequence runs 1..n across the restart, with no restart at 1).
func TestAlertsRestoreAfterRestart(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 5, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(6000)

	first := w.start("node-1")
	w.produce(recs[:3000])
	w.waitIdle(60 * time.Second)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	before := len(w.readAll(alerts.TopicAlerts))

	w.produce(recs[3000:])
	second := w.start("node-1")
	w.waitIdle(60 * time.Second)

	all := decodeAlerts(t, w.readAll(alerts.TopicAlerts))
	diffMultiset(t, all, sim.ExpectedAlertIDs(truths))
	after := all[before:]
	if len(after) == 0 {
		t.Fatal("no alerts after the restart")
	}
	for _, a := range after {
		if a.PatientName == "" || a.PatientMRN == "" {
			t.Fatalf("alert %s after the restart is not enriched: the patient table was not restored before processing", a.AlertID)
		}
	}

	seqs := map[string][]int64{}
	for _, r := range w.readAll(alerts.TopicHistory) {
		var h alerts.HistoryRecord
		if err := json.Unmarshal(r.Value, &h); err != nil {
			t.Fatal(err)
		}
		seqs[h.PatientID] = append(seqs[h.PatientID], h.Sequence)
	}
	spanning := 0
	for p, s := range seqs {
		for i, n := range s {
			if n != int64(i+1) {
				t.Fatalf("patient %s: alert sequence %v, want 1..%d: store state lost across the restart", p, s, len(s))
			}
		}
		if len(s) > 1 {
			spanning++
		}
	}
	if spanning == 0 {
		t.Fatal("no patient has more than one alert; the scenario proves nothing")
	}
	if v, ok := second.Runner.Lookup("patient-alerts", all[0].PatientID); !ok || len(v) == 0 {
		t.Errorf("patient-alerts store has nothing for a patient alerted before the restart")
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
}
