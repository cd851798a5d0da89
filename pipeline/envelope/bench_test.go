package envelope

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reproduce with: go test ./pipeline/envelope -run '^$' -bench . -benchmem
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, value string }{
		{"envelope", `{"metadata":{"eventId":"evt-0001","eventType":"ObservationCreated","eventSource":"fhir-platform","correlationId":"corr-0001","timestamp":1712338878901},"payload":{"resourceType":"Observation","id":"obs-hr-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/pat-1"},"effectiveDateTime":"2024-04-05T19:41:00+02:00","valueQuantity":{"value":134,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}}`},
		{"bare", `{"resourceType":"Observation","id":"obs-hr-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/pat-1"},"effectiveDateTime":"2024-04-05T19:41:00+02:00","valueQuantity":{"value":134,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`},
	} {
		value := []byte(bc.value)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			for b.Loop() {
				if _, _, err := Parse(value); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkCorrelationID(b *testing.B) {
	r := &kgo.Record{Topic: "fhir.Observation", Partition: 7, Offset: 123456789}
	b.ReportAllocs()
	for b.Loop() {
		_ = CorrelationID(r, Metadata{})
	}
}

// BenchmarkTraceContext is the check of the W3C example trace context
// (Trace Context, W3C Recommendation, section 3.2.3 and "Examples of
// tracestate HTTP Headers"), as the runtime makes it on every input that
// has one.
func BenchmarkTraceContext(b *testing.B) {
	tp := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ts := []byte("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	b.Run("traceparent", func(b *testing.B) {
		for b.Loop() {
			if !ValidTraceparent(tp) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("tracestate", func(b *testing.B) {
		for b.Loop() {
			if !ValidTracestate(ts) {
				b.Fatal("invalid")
			}
		}
	})
}
