package scenarios

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

// outputsByKey is a topic's records as a multiset of key and value.
func outputsByKey(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key) + "\x00" + string(r.Value)
	}
	slices.Sort(out)
	return out
}

// Issue 21: a reset followed by a reprocess gives the same outputs. The
// alerts pipeline (a repartition topic, a changelog, a global table)
// processes a workload (poison records included); a reset refuses while its instance runs; once it
// is stopped, a reset to the earliest offsets deletes its internal topics
// and rewinds its group, and a new instance makes every alert, history
// record and notification again, the same bytes under the same keys. Had
// the changelog been kept, the patients' open alerts would have
// suppressed the alerts the second time.
func TestResetThenReprocessGivesTheSameOutputs(t *testing.T) {
	w := newAlertsWorld(t)
	// Every observation keyed by its patient: a record re-keyed through
	// the repartition topic can meet the patient's next one in either
	// order, and the history's per-patient sequence numbers with it, in
	// any run.
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 22, Patients: 300, AlertFraction: 0.2, PoisonFraction: 0.01, EnvelopeFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	w.produce(g.PatientRecords())
	recs, _ := g.NextN(3000)
	w.produce(recs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	specs := []pipeline.Spec{w.spec}

	first := w.start("")
	w.waitIdle(60 * time.Second)
	var active *ops.ActiveMembersError
	if _, err := ops.PlanReset(ctx, w.adm, specs, ops.ResetTo{}); !errors.As(err, &active) {
		t.Fatalf("reset while an instance runs: %v, want it refused for its active members", err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	before := map[string][]*kgo.Record{}
	for _, topic := range w.spec.Outputs {
		before[topic] = w.readAll(topic)
	}
	errsBefore := w.readAll(w.spec.ErrorTopic)
	if len(before[alerts.TopicAlerts]) == 0 || len(errsBefore) == 0 {
		t.Fatalf("the first run made %d alerts and %d error records: nothing to compare", len(before[alerts.TopicAlerts]), len(errsBefore))
	}

	plans, err := ops.PlanReset(ctx, w.adm, specs, ops.ResetTo{})
	if err != nil {
		t.Fatal(err)
	}
	internal := []string{
		pipeline.ChangelogTopic(w.spec.Group, alerts.StorePatientAlerts),
		pipeline.RepartitionTopic(w.spec.Group, alerts.RepartitionByPatient),
	}
	if len(plans) != 1 || !slices.Equal(plans[0].DeleteTopics, internal) || len(plans[0].Offsets) != testPartitions {
		t.Fatalf("plan %+v: want %d input partitions reset and %v deleted", plans, testPartitions, internal)
	}
	for _, o := range plans[0].Offsets {
		if o.To != 0 || o.Committed <= 0 {
			t.Errorf("plan for %s[%d]: %d -> %d, want the committed offset back to 0", o.Topic, o.Partition, o.Committed, o.To)
		}
	}
	if err := ops.ApplyReset(ctx, w.adm, plans); err != nil {
		t.Fatal(err)
	}
	details, err := w.adm.ListTopics(ctx, internal...)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range internal {
		if d, ok := details[topic]; ok && d.Err == nil {
			t.Errorf("internal topic %s still exists after the reset", topic)
		}
	}
	committed, err := w.adm.FetchOffsets(ctx, w.spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic != alerts.TopicObservations || o.At != 0 {
			t.Errorf("after the reset the group has %s[%d] at %d, want only its input, at 0", o.Topic, o.Partition, o.At)
		}
	})

	second := w.start("")
	w.waitIdle(60 * time.Second)
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, topic := range w.spec.Outputs {
		// Each record of the first run, and each exactly once again.
		all := w.readAll(topic)
		if got, want := outputsByKey(all), outputsByKey(append(slices.Clone(before[topic]), before[topic]...)); !slices.Equal(got, want) {
			t.Errorf("%s: %d records after the reprocess, want the first run's %d twice, the same bytes", topic, len(got), len(before[topic]))
		}
	}
	if n := len(w.readAll(w.spec.ErrorTopic)); n != 2*len(errsBefore) {
		t.Errorf("%d error records after the reprocess, want the first run's %d twice", n, len(errsBefore))
	}
}
