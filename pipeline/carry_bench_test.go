package pipeline

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkCarriedHeaders is the runtime's cost per record of carrying
// headers, through the harness as in BenchmarkHarnessProcess (one store
// write, one emit that sets its own correlation-id): an input without
// headers, one with a correlation-id only (nothing to carry), and one with
// the W3C example trace context (two headers checked and carried, one
// allocation for the emit's headers).
//
//	go test ./pipeline -run '^$' -bench 'HarnessProcess|CarriedHeaders' -benchmem
func BenchmarkCarriedHeaders(b *testing.B) {
	value := []byte("v")
	own := []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-0001")}}
	for _, bc := range []struct {
		name    string
		headers []kgo.RecordHeader
	}{
		{"none", nil},
		{"correlation-id", own},
		{"trace-context", []kgo.RecordHeader{own[0], hdr("traceparent", w3cTraceparent), hdr("tracestate", w3cTracestate)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			emit := &kgo.Record{Topic: "out", Key: []byte("k"), Value: value}
			spec := harnessSpec()
			spec.Process = func(c *Context, r *kgo.Record) error {
				c.Store("counts").Put("k", value)
				emit.Headers = own
				c.Emit(emit)
				return nil
			}
			h, err := NewHarness(spec, HarnessClock(fixedClock(hTime)))
			if err != nil {
				b.Fatal(err)
			}
			in := &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: value, Headers: bc.headers}
			b.ReportAllocs()
			for b.Loop() {
				if out, err := h.Process(in); err != nil || len(out) != 1 {
					b.Fatal(out, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
