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
