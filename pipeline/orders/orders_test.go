package orders

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// fixedClock is a clock that stands still.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// newHarness runs the processor's Spec, as the runtime does, at now.
func newHarness(t *testing.T, now time.Time) *pipeline.Harness {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.NewHarness(p.Spec(), pipeline.HarnessClock(fixedClock(now)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestProcessed(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 30, 0, 0, time.FixedZone("x", 3600))
	h := newHarness(t, now)
	process := func(value string) ([]*kgo.Record, error) {
		return h.Process(&kgo.Record{Topic: TopicSubmitted, Key: []byte("k"), Value: []byte(value)})
	}
	const at = `"processedAt":"2025-03-01T08:30:00Z"`
	for _, tt := range []struct{ name, in, want string }{
		{"bare", `{"id":"ord-1","patientId":"pat-1","dose":1.50,"status":"SUBMITTED"}`,
			`{"id":"ord-1","patientId":"pat-1","dose":1.50,"status":"PROCESSED",` + at + `}`},
		{"enveloped", `{"metadata":{"correlationId":"c"},"payload":{"id":"ord-2","patientId":"pat-2","route":null}}`,
			`{"id":"ord-2","patientId":"pat-2","route":null,"status":"PROCESSED",` + at + `}`},
		{"nested and escaped kept", ` { "id" : "ord-\u0033", "patientId":"p","tags":["a", {"b":2}],"processedAt":"old"} `,
			`{"id":"ord-3","patientId":"p","tags":["a", {"b":2}],"status":"PROCESSED",` + at + `}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := process(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || out[0].Topic != TopicProcessed || string(out[0].Key) != "k" {
				t.Fatalf("emitted %d records, want one to %s keyed as it came", len(out), TopicProcessed)
			}
			if got := out[0].Value; string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	const marker = "SECRETPATIENT"
	for _, tt := range []struct {
		name, in string
		want     pipeline.ErrorType
	}{
		{"not JSON", marker, pipeline.TypeDecode},
		{"not an object", `["` + marker + `"]`, pipeline.TypeDecode},
		{"truncated", `{"id":"ord-1","patientId":"` + marker, pipeline.TypeDecode},
		{"no id", `{"patientId":"` + marker + `"}`, pipeline.TypeInvalid},
		{"numeric id", `{"id":7,"patientId":"` + marker + `"}`, pipeline.TypeInvalid},
		{"no patient", `{"id":"ord-1"}`, pipeline.TypeInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := process(tt.in)
			var re *pipeline.RecordError
			if !errors.As(err, &re) || re.Type != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error %q quotes the order", err)
			}
		})
	}
}
