package datasync

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// A source record's metadata.correlationId that is over the bound or not
// text counts as absent, as a correlation-id header does: the canonical
// change carries the id derived from the record's coordinates instead.
func TestCDCReplacesAnInvalidMetadataCorrelationID(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	cdc, err := NewCDC(WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.NewHarness(cdc.Spec())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, corr, want string }{
		{"valid", "corr-77", "corr-77"},
		{"oversized", strings.Repeat("x", envelope.MaxCorrelationIDBytes+1), ""},
		{"control character", `corr\r\nx`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &kgo.Record{Topic: "source.ehr.patient", Partition: 0, Offset: 9, Key: []byte("p1"),
				Value: []byte(`{"metadata":{"correlationId":"` + tc.corr + `"},"payload":{"id":"p1","firstName":"Ann","lastUpdated":"2025-03-01T10:00:00Z"}}`)}
			out, err := h.Process(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 {
				t.Fatalf("emitted %d records, want 1", len(out))
			}
			want := tc.want
			if want == "" {
				want = envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
			}
			if got := envelope.HeaderValue(out[0], envelope.HeaderCorrelationID); got != want {
				t.Errorf("correlation-id header %.40q, want %.40q", got, want)
			}
			var ev Event[PatientRecord]
			if err := codec.Decode(out[0].Value, Patient, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Metadata.CorrelationID != want {
				t.Errorf("metadata correlationId %.40q, want %.40q", ev.Metadata.CorrelationID, want)
			}
		})
	}
}
