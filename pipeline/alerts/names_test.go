package alerts_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

// A deployment's names (issue 21): the processor consumes its renamed
// input (a mis-keyed observation on it is re-keyed through the repartition
// topic its app id names), reads its renamed patient table, and emits
// every alert, history record and notification to the renamed outputs.
func TestRenamedTopicsAndAppID(t *testing.T) {
	renamed := map[string]string{
		alerts.TopicObservations: "s.obs", alerts.TopicPatients: "s.patients",
		alerts.TopicAlerts: "s.alerts", alerts.TopicHistory: "s.history",
		alerts.TopicMobile: "s.mobile", alerts.TopicEmail: "s.email", alerts.TopicSMS: "s.sms",
	}
	p, err := alerts.New(alerts.WithRules(rules.Seed()), alerts.WithNames(pipeline.Names{AppID: "s", Topics: renamed}))
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec()
	if spec.GlobalTables[0].Topic != "s.patients" || spec.Inputs[0] != "s.obs" {
		t.Fatalf("spec reads %v and the table %s", spec.Inputs, spec.GlobalTables[0].Topic)
	}
	repartition := pipeline.RepartitionTopic("s-"+alerts.Group, alerts.RepartitionByPatient)
	h, err := pipeline.NewHarness(spec)
	if err != nil {
		t.Fatal(err)
	}
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 21, Patients: 20, AlertFraction: 1, MisKeyedFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]bool{}
	recs, _ := g.NextN(50)
	for _, r := range recs {
		r.Topic = "s.obs"
		out, err := h.Process(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].Topic != repartition {
			t.Fatalf("a mis-keyed observation on the renamed input: %d records, want one to %s", len(out), repartition)
		}
		out, err = h.Process(&kgo.Record{Topic: repartition, Key: out[0].Key, Value: out[0].Value, Headers: out[0].Headers})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			outputs[o.Topic] = true
		}
	}
	for _, want := range []string{"s.alerts", "s.history"} {
		if !outputs[want] {
			t.Errorf("nothing emitted to %s (emitted to %v)", want, outputs)
		}
	}
	for topic := range outputs {
		if _, builtin := renamed[topic]; builtin {
			t.Errorf("emitted to the built-in %s, renamed in this deployment", topic)
		}
	}
}
