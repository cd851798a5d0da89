package alerts

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// newProcessor builds a Processor with its own metrics set, failing the test
// on a construction error.
func newProcessor(t testing.TB, opts ...Option) *Processor {
	t.Helper()
	p, err := New(append([]Option{WithMetrics(metrics.NewSet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
