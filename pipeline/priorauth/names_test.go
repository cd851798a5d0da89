package priorauth_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// A deployment's names (issue 21): the orchestrator consumes its renamed
// input, re-keys through the repartition topic its app id names, and
// emits to its renamed outputs, while its processing, and the event-type
// headers downstream systems read, keep the built-in names.
func TestRenamedTopicsAndAppID(t *testing.T) {
	names := pipeline.Names{AppID: "staging", Topics: map[string]string{
		priorauth.TopicPrescriptions:          "staging.rx",
		priorauth.TopicDocumentationRequested: "staging.doc.requested",
		priorauth.TopicStatus:                 "staging.status",
	}}
	p, err := priorauth.New(priorauth.WithNames(names))
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec()
	repartition := pipeline.RepartitionTopic("staging-"+priorauth.Group, priorauth.RepartitionByPriorAuth)
	if spec.Group != "staging-"+priorauth.Group || spec.Inputs[0] != "staging.rx" {
		t.Fatalf("group %s, inputs %v", spec.Group, spec.Inputs)
	}
	h, err := pipeline.NewHarness(spec)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := sim.PriorAuthPrescriptions(21, 1)
	rx := recs[0]
	rx.Topic = "staging.rx"
	out, err := h.Process(rx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Topic != repartition {
		t.Fatalf("a prescription keyed by its own id: %s, want one record re-keyed through %s", topics(out), repartition)
	}
	out, err = h.Process(&kgo.Record{Topic: repartition, Key: out[0].Key, Value: out[0].Value, Headers: out[0].Headers})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range out {
		got[r.Topic] = envelope.HeaderValue(r, envelope.HeaderEventType)
	}
	for topic, eventType := range map[string]string{
		"staging.doc.requested": priorauth.TopicDocumentationRequested,
		"staging.status":        priorauth.TopicStatus,
	} {
		if et, ok := got[topic]; !ok || et != eventType {
			t.Errorf("emitted %s; want a record on %s with event-type %s", topics(out), topic, eventType)
		}
	}
	for topic := range got {
		if topic == priorauth.TopicDocumentationRequested || topic == priorauth.TopicStatus {
			t.Errorf("emitted to the built-in %s, renamed in this deployment", topic)
		}
	}
}

func topics(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Topic)
	}
	return out
}
