package pipeline_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// On a broker: an input's trace context and configured headers reach its
// output; an input that fails reaches the error topic with its headers
// whole, trace context included; an input with an oversized correlation-id
// and an invalid traceparent has the traceparent dropped, and both are
// counted.
func TestRunnerCarriesHeadersAndCountsInvalidOnes(t *testing.T) {
	// The W3C's example (Trace Context, W3C Recommendation,
	// https://www.w3.org/TR/trace-context/, section 3.2.3 "Examples of HTTP
	// traceparent Headers" and "Examples of tracestate HTTP Headers").
	const (
		traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		tracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	)
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	r, stop := w.start(t, countSpec(), pipeline.WithCarriedHeaders("baggage"))
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	produce(t, w.client(t),
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok"), Headers: []kgo.RecordHeader{
			h("traceparent", traceparent), h("tracestate", tracestate), h("baggage", "userId=alice"),
		}},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("boom"), Headers: []kgo.RecordHeader{
			h("traceparent", traceparent), h("tracestate", "Not Valid"),
		}},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok"), Headers: []kgo.RecordHeader{
			h("correlation-id", strings.Repeat("c", 300)), h("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
		}},
	)
	out := kafkatest.ReadN(t.Context(), t, w.opts, 2, "out")
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 1, "in.errors")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := headers(out[0]); got["traceparent"] != traceparent || got["tracestate"] != tracestate || got["baggage"] != "userId=alice" {
		t.Errorf("first output headers %v, want the input's trace context and baggage", got)
	}
	if got := headers(out[1]); len(got) != 0 {
		t.Errorf("third input's output headers %v, want none: its traceparent is invalid", got)
	}
	// The error record is its input whole: even the tracestate that would
	// not have been carried.
	if got := headers(errs[0]); got["traceparent"] != traceparent || got["tracestate"] != "Not Valid" || got["error-type"] != "invalid" {
		t.Errorf("error record headers %v, want the input's and the error's", got)
	}
	// An input processed again after an abort is counted again.
	for header, atLeast := range map[string]float64{"correlation-id": 1, "traceparent": 1, "tracestate": 1, "other": 0} {
		v := metricValue(r.Metrics(), `carepipe_invalid_headers_total{pipeline="count",header="`+header+`"}`)
		if v < atLeast || (atLeast == 0 && v != 0) {
			t.Errorf("carepipe_invalid_headers_total{header=%q} = %v, want at least %v", header, v, atLeast)
		}
	}
}
