package priorauth

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// A prior authorization whose determination was communicated stays in the
// store, and in its timers, until the retention has passed since then; the
// punctuation at that time deletes it from both (a tombstone in each
// changelog) and emits nothing. Without this the store, which every
// instance holds in memory, grows with every prior authorization ever made.
func TestSettledPriorAuthorizationIsPurgedAfterTheRetention(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	clock := sim.NewVirtualClock(t0)
	h, err := pipeline.NewHarness(p.Spec(), pipeline.HarnessClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	process := func(topic, key, value string) {
		t.Helper()
		out, err := h.Process(&kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Timestamp: clock.Now()})
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		// A prescription keyed by its own id comes back re-keyed.
		for _, r := range out {
			if r.Topic == pipeline.RepartitionTopic(Group, RepartitionByPriorAuth) {
				again := *r
				again.Timestamp = clock.Now()
				if _, err := h.Process(&again); err != nil {
					t.Fatalf("%s, re-keyed: %v", topic, err)
				}
			}
		}
	}
	id := PriorAuthID("rx-1")
	process(TopicPrescriptions, "rx-1", `{"prescriptionId":"rx-1","patientId":"pat-1","providerId":"prov-1","medication":{"name":"Atorvastatin","code":"617312","category":"statin"},"payerId":"PAYER003","pharmacyId":"ph-1"}`)
	process(TopicDocumentationAssembled, id, `{"priorAuthId":"`+id+`","documents":[{"type":"lab-results"}]}`)
	process(TopicSubmissionCompleted, id, `{"priorAuthId":"`+id+`","submissionId":"sub-1","submissionDate":"2025-03-01T12:00:00Z","submissionMethod":"FAX","payerId":"PAYER003"}`)
	process(TopicDeterminationReceived, id, `{"priorAuthId":"`+id+`","determinationStatus":"DENIED","determinationDate":"2025-03-01T13:00:00Z"}`)
	settled := clock.Advance(time.Hour)
	process(TopicCommunicationCompleted, id, `{"priorAuthId":"`+id+`","completedChannels":["EHR"]}`)

	stored := func() (rec, timer bool) {
		_, rec = h.Store(StorePriorAuths).Get(id)
		_, timer = h.Store(StoreTimers).Get(id)
		return rec, timer
	}
	b, ok := h.Store(StorePriorAuths).Get(id)
	if !ok {
		t.Fatal("the communicated prior authorization is not stored")
	}
	if rec, err := decodeRecord(b); err != nil || rec.Status != StatusDeterminationCommunicated {
		t.Fatalf("stored %+v, %v; want it communicated", rec, err)
	}

	clock.Set(settled.Add(DefaultConfig().Retention - time.Minute))
	if out, err := h.Punctuate(); err != nil || len(out) != 0 {
		t.Fatalf("punctuation before the retention passed: %d records, %v", len(out), err)
	}
	if rec, timer := stored(); !rec || !timer {
		t.Fatalf("purged early: record %v, timer %v", rec, timer)
	}
	clock.Set(settled.Add(DefaultConfig().Retention))
	if out, err := h.Punctuate(); err != nil || len(out) != 0 {
		t.Fatalf("purging punctuation: %d records, %v", len(out), err)
	}
	if rec, timer := stored(); rec || timer {
		t.Fatalf("after the retention: record %v, timer %v; want both deleted", rec, timer)
	}
	if got := p.purged.Get(); got != 1 {
		t.Fatalf("purged counter %d, want 1", got)
	}
	// A late event for it is now an unknown prior authorization's.
	if _, err := h.Process(&kgo.Record{Topic: TopicCommunicationCompleted, Key: []byte(id), Value: []byte(`{"priorAuthId":"` + id + `"}`), Timestamp: clock.Now()}); err == nil {
		t.Fatal("an event for a purged prior authorization was accepted")
	}
}
