package priorauth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

func TestDecode(t *testing.T) {
	const rx = `{"prescriptionId":"rx-9","patientId":"pat-1","providerId":"prov-1","medication":{"name":"Insulin glargine","code":"261551","category":"insulin"},"payerId":"PAYER002","pharmacyId":"ph-1"}`
	recTime := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	rec := func(v string) *kgo.Record {
		return &kgo.Record{Topic: "t", Partition: 1, Offset: 7, Value: []byte(v), Timestamp: recTime}
	}
	t.Run("bare prescription", func(t *testing.T) {
		ev, err := decode(rec(rx), TopicPrescriptions)
		if err != nil {
			t.Fatal(err)
		}
		if ev.PriorAuthID != PriorAuthID("rx-9") || ev.Prescription.Medication.Category != "insulin" || !ev.At.Equal(recTime) || ev.CorrelationID == "" {
			t.Errorf("event %+v", ev)
		}
	})
	t.Run("enveloped prescription", func(t *testing.T) {
		ev, err := decode(rec(`{"metadata":{"correlationId":"c-1","timestamp":1740819600000},"payload":`+rx+`}`), TopicPrescriptions)
		if err != nil {
			t.Fatal(err)
		}
		if ev.CorrelationID != "c-1" || !ev.At.Equal(time.UnixMilli(1740819600000).UTC()) {
			t.Errorf("event %+v", ev)
		}
	})
	t.Run("documents kept as sent", func(t *testing.T) {
		ev, err := decode(rec(`{"priorAuthId":"pa-1","documents":[{"type":"lab-results","documentId":"doc-1"}]}`), TopicDocumentationAssembled)
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Documents) != `[{"type":"lab-results","documentId":"doc-1"}]` {
			t.Errorf("documents %s", ev.Documents)
		}
	})
	t.Run("determination date is the event time", func(t *testing.T) {
		ev, err := decode(rec(`{"priorAuthId":"pa-1","determinationStatus":"APPROVED","determinationDate":"2025-03-02T10:00:00Z","expirationDate":"2025-06-01T00:00:00Z"}`), TopicDeterminationReceived)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Determination.Status != StatusApproved || !ev.At.Equal(time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("event %+v", ev)
		}
	})
	const marker = "SECRETPATIENT"
	for _, tt := range []struct {
		name, topic, value string
		want               pipeline.ErrorType
	}{
		{"not JSON", TopicPrescriptions, marker, pipeline.TypeDecode},
		{"wrong shape", TopicSubmissionCompleted, `{"priorAuthId":["` + marker + `"]}`, pipeline.TypeDecode},
		{"no prescription id", TopicPrescriptions, strings.Replace(rx, `"rx-9"`, `""`, 1), pipeline.TypeInvalid},
		{"no payer", TopicPrescriptions, strings.Replace(rx, `"PAYER002"`, `""`, 1), pipeline.TypeInvalid},
		{"no prior-auth id", TopicDocumentationAssembled, `{"documents":[]}`, pipeline.TypeInvalid},
		{"unknown determination", TopicDeterminationReceived, `{"priorAuthId":"pa-1","determinationStatus":"MAYBE` + marker + `"}`, pipeline.TypeInvalid},
		{"bad determination date", TopicDeterminationReceived, `{"priorAuthId":"pa-1","determinationStatus":"DENIED","determinationDate":"` + marker + `"}`, pipeline.TypeInvalid},
		{"submission without id", TopicSubmissionCompleted, `{"priorAuthId":"pa-1","submissionMethod":"FAX"}`, pipeline.TypeInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(rec(tt.value), tt.topic)
			var re *pipeline.RecordError
			if !errors.As(err, &re) || re.Type != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error %q quotes the record", err)
			}
		})
	}
}

// decode decodes r as the event its topic carries, reading dates in UTC
// where they need a time zone.
func decode(r *kgo.Record, topic string) (event, error) {
	return decodeIn(r, topic, time.UTC)
}
