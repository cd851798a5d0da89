package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on a machine without a zone database

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

// startAlertsIn runs an alerts instance whose site time zone is site (nil:
// none configured, as by default).
func (w *alertsWorld) startAlertsIn(site *time.Location) *kafkatest.Instance {
	w.t.Helper()
	set := metrics.NewSet()
	proc, err := alerts.New(alerts.WithMetrics(set), alerts.WithRules(w.rules), alerts.WithSiteTimeZone(site))
	if err != nil {
		w.t.Fatal(err)
	}
	return kafkatest.StartRunner(w.t, proc.Spec(),
		pipeline.WithKafka(w.cluster.ClientOpts()...),
		pipeline.WithMetrics(set),
		pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithLogger(testLogger()),
	)
}

// withLocalTime rewrites an observation's effectiveDateTime, which sim
// writes in UTC with a Z, to the same instant as local time in loc without
// an offset: what a hospital interface that sends local times sends. FHIR
// R4 says such a dateTime is invalid ("If hours and minutes are specified,
// a time zone SHALL be populated", http://hl7.org/fhir/R4/datatypes.html#dateTime),
// and carepipe rejects it unless a site time zone is configured.
func withLocalTime(t *testing.T, value []byte, at time.Time, loc *time.Location) []byte {
	t.Helper()
	from := []byte(`"effectiveDateTime":"` + at.UTC().Format(time.RFC3339) + `"`)
	to := []byte(`"effectiveDateTime":"` + at.In(loc).Format("2006-01-02T15:04:05") + `"`)
	if !bytes.Contains(value, from) {
		t.Fatalf("observation has no %s", from)
	}
	return bytes.Replace(value, from, to, 1)
}

// recordBytes is what byte for byte means for a replayed record: its key,
// value and headers, in order.
func recordBytes(r *kgo.Record) string {
	b, _ := json.Marshal(struct {
		K, V []byte
		H    []kgo.RecordHeader
	}{r.Key, r.Value, r.Headers})
	return string(b)
}

// Issue 21: a replay, run twice, delivers each original once, after a fix
// that makes the originals process. A tenth of the observations carry
// local times without an offset; with no site time zone configured they
// are invalid and go to clinical.alerts.errors. The fix: the site time
// zone (Europe/Berlin, the zone those local times are in). Before the
// replay, a replay that died mid-transaction (the same transactional id,
// an open transaction holding half of the originals and their log
// entries) is left behind: the replay fences it, and its records stay
// aborted. After the replay and a second one, every expected alert is
// there exactly once, the input topic holds each original's bytes twice
// (sent, replayed) and no more, and no new error record was made.
func TestReplayAfterFixDeliversEachOriginalOnce(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	w := newAlertsWorld(t)
	g := workload(t, 21, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(3000)
	base := g.Config().BaseTime
	var local []*kgo.Record
	for i, r := range recs {
		if i%10 == 0 {
			r.Value = withLocalTime(t, r.Value, base.Add(time.Duration(truths[i].Index)*time.Second), berlin)
			local = append(local, r)
		}
	}
	want := sim.ExpectedAlertIDs(truths)
	var wantBefore []string
	for i, tr := range truths {
		if i%10 != 0 {
			wantBefore = append(wantBefore, sim.ExpectedAlertIDs([]sim.ObservationTruth{tr})...)
		}
	}
	if len(wantBefore) == len(want) {
		t.Fatal("no local-time observation trips a rule: the replay would show nothing")
	}

	before := w.startAlertsIn(nil)
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := before.Stop(); err != nil {
		t.Fatal(err)
	}
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), wantBefore)
	errs := w.readAll(alerts.TopicErrors)
	if len(errs) != len(local) {
		t.Fatalf("%d error records, want the %d local-time observations", len(errs), len(local))
	}

	// A replay that died with its transaction open.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	zombie := w.client(kgo.TransactionalID(ops.ReplayTransactionalID(alerts.TopicErrors)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range local[:len(local)/2] {
		if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	fixed := w.startAlertsIn(berlin)
	specs := []pipeline.Spec{w.spec}
	f := ops.Filter{ErrorType: string(pipeline.TypeInvalid), SourceTopic: alerts.TopicObservations}
	dry, err := ops.Replay(ctx, w.cluster.ClientOpts(), specs, f, ops.ReplayOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Replayed != len(local) || dry.Selected != len(local) {
		t.Fatalf("dry run: %+v, want %d to replay", dry, len(local))
	}
	first, err := ops.Replay(ctx, w.cluster.ClientOpts(), specs, f, ops.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ops.Replay(ctx, w.cluster.ClientOpts(), specs, f, ops.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed != len(local) || first.AlreadyReplayed != 0 {
		t.Errorf("first replay: %+v, want %d replayed", first, len(local))
	}
	if second.Replayed != 0 || second.AlreadyReplayed != len(local) {
		t.Errorf("second replay: %+v, want none replayed, %d replayed before", second, len(local))
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the dead replay's transaction committed after the replay: it was not fenced")
	}

	w.waitIdle(60 * time.Second)
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), want)
	if n := len(w.readAll(alerts.TopicErrors)); n != len(local) {
		t.Errorf("%d error records after the replay, want the %d from before", n, len(local))
	}
	count := map[string]int{}
	for _, r := range w.readAll(alerts.TopicObservations) {
		count[recordBytes(r)]++
	}
	for _, r := range local {
		if n := count[recordBytes(r)]; n != 2 {
			t.Fatalf("an original is on %s %d times, want twice (sent, replayed once, byte for byte)", alerts.TopicObservations, n)
		}
	}
	if err := fixed.Stop(); err != nil {
		t.Fatal(err)
	}
	// The log names every error record once.
	var keys []string
	for _, r := range w.readAll(ops.ReplayLogTopic(alerts.TopicErrors)) {
		keys = append(keys, string(r.Key))
	}
	slices.Sort(keys)
	if len(keys) != len(local) || len(slices.Compact(keys)) != len(local) {
		t.Errorf("replay log has %d entries, want one for each of %d error records", len(keys), len(local))
	}
}
