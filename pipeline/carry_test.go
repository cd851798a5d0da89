package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/envelope"
)

// The W3C's example traceparent and tracestate (Trace Context, W3C
// Recommendation, https://www.w3.org/TR/trace-context/, section 3.2.3
// "Examples of HTTP traceparent Headers" and "Examples of tracestate HTTP
// Headers").
const (
	w3cTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	w3cTracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// headerValues are r's values of header key, in order.
func headerValues(r *kgo.Record, key string) []string {
	var vs []string
	for _, h := range r.Headers {
		if h.Key == key {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

// Every record emitted while an input is processed carries its trace
// context; the repartitioned copy carries it as one of the input's
// headers, once.
func TestCarriedTraceContextReachesEveryEmit(t *testing.T) {
	h := newHarness(t, harnessSpec())
	in := &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: []byte("fanout"), Headers: []kgo.RecordHeader{
		hdr("traceparent", w3cTraceparent), hdr("tracestate", w3cTracestate), hdr("other", "not carried"),
	}}
	out, err := h.Process(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 { // a, the repartitioned copy, b
		t.Fatalf("emits %q, want 3", emitted(out))
	}
	for _, r := range out {
		if got := headerValues(r, "traceparent"); !slices.Equal(got, []string{w3cTraceparent}) {
			t.Errorf("%s %s: traceparent %q, want [%s]", r.Topic, r.Value, got, w3cTraceparent)
		}
		if got := headerValues(r, "tracestate"); !slices.Equal(got, []string{w3cTracestate}) {
			t.Errorf("%s %s: tracestate %q, want [%s]", r.Topic, r.Value, got, w3cTracestate)
		}
		repartitioned := r.Topic == RepartitionTopic(hGroup, "by-key")
		if got := headerValues(r, "other"); repartitioned != (len(got) == 1) {
			t.Errorf("%s %s: header other %q; only the repartitioned copy has it", r.Topic, r.Value, got)
		}
	}
	// The input's headers are not changed.
	if len(in.Headers) != 3 {
		t.Errorf("input headers changed: %v", in.Headers)
	}

	// The next record, without trace context, carries none: nothing is
	// left over from the previous one, nor from a punctuation.
	for _, r := range process(t, h, "k", "x") {
		if len(r.Headers) != 0 {
			t.Errorf("%s %s: headers %v, want none", r.Topic, r.Value, r.Headers)
		}
	}
	if _, err := h.Process(in); err != nil {
		t.Fatal(err)
	}
	ticks, err := h.Punctuate()
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 1 || len(ticks[0].Headers) != 0 {
		t.Errorf("punctuation emits %v with headers; a punctuation has no input to carry from", ticks)
	}
}

// An emit that sets a carried header keeps its own value; its other
// headers are not appended to in place (their array may be shared).
func TestCarriedHeaderSetByTheProcessorWins(t *testing.T) {
	spec := harnessSpec()
	shared := make([]kgo.RecordHeader, 1, 4)
	shared[0] = hdr("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	spec.Process = func(c *Context, r *kgo.Record) error {
		c.Emit(&kgo.Record{Topic: "out", Value: []byte("own"), Headers: shared})
		c.Emit(&kgo.Record{Topic: "out", Value: []byte("shared"), Headers: shared[:0]})
		return nil
	}
	h := newHarness(t, spec)
	out, err := h.Process(&kgo.Record{Topic: hTopic, Headers: []kgo.RecordHeader{
		hdr("traceparent", w3cTraceparent), hdr("tracestate", w3cTracestate),
	}})
	if err != nil {
		t.Fatal(err)
	}
	own, second := out[0], out[1]
	if got := headerValues(own, "traceparent"); !slices.Equal(got, []string{string(shared[0].Value)}) {
		t.Errorf("own traceparent replaced or doubled: %q", got)
	}
	if got := headerValues(own, "tracestate"); !slices.Equal(got, []string{w3cTracestate}) {
		t.Errorf("tracestate %q, want the input's", got)
	}
	if got := headerValues(second, "traceparent"); !slices.Equal(got, []string{w3cTraceparent}) {
		t.Errorf("second emit's traceparent %q, want the input's", got)
	}
	if shared[:2][1].Key != "" {
		t.Errorf("the processor's header array was appended to in place: %v", shared[:2])
	}
}

// Invalid trace context is dropped, following the Recommendation's
// processing model: an invalid traceparent takes its tracestate with it,
// an invalid tracestate goes alone, a tracestate without traceparent is
// discarded. Each input that brought one is counted once per header
// class; the repartitioned copy, which comes back, is not counted again.
func TestInvalidCarriedHeadersDroppedAndCounted(t *testing.T) {
	long := strings.Repeat("c", envelope.MaxCorrelationIDBytes+1)
	tests := []struct {
		name      string
		headers   []kgo.RecordHeader
		carried   []string // key=value carried to the output
		invalid   []string // header labels counted
		repartPre bool     // the input comes from the repartition topic
	}{
		{
			name:    "valid",
			headers: []kgo.RecordHeader{hdr("traceparent", w3cTraceparent), hdr("tracestate", w3cTracestate), hdr("baggage", "userId=alice")},
			carried: []string{"baggage=userId=alice", "traceparent=" + w3cTraceparent, "tracestate=" + w3cTracestate},
		},
		{
			name:    "traceparent of all-zero trace-id",
			headers: []kgo.RecordHeader{hdr("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), hdr("tracestate", w3cTracestate)},
			invalid: []string{"traceparent", "tracestate"},
		},
		{
			name:    "two traceparents",
			headers: []kgo.RecordHeader{hdr("traceparent", w3cTraceparent), hdr("traceparent", w3cTraceparent)},
			invalid: []string{"traceparent"},
		},
		{
			name:    "tracestate without traceparent",
			headers: []kgo.RecordHeader{hdr("tracestate", w3cTracestate)},
			invalid: []string{"tracestate"},
		},
		{
			name:    "invalid tracestate alone",
			headers: []kgo.RecordHeader{hdr("traceparent", w3cTraceparent), hdr("tracestate", "a="+strings.Repeat("v", 600))},
			carried: []string{"traceparent=" + w3cTraceparent},
			invalid: []string{"tracestate"},
		},
		{
			name:    "tracestate in two headers is one list",
			headers: []kgo.RecordHeader{hdr("traceparent", w3cTraceparent), hdr("tracestate", "rojo=00f067aa0ba902b7"), hdr("tracestate", "congo=t61rcWkgMzE")},
			carried: []string{"traceparent=" + w3cTraceparent, "tracestate=" + w3cTracestate},
		},
		{
			name:    "carried header not text, first one decides",
			headers: []kgo.RecordHeader{hdr("baggage", "a\x00b"), hdr("baggage", "ok")},
			invalid: []string{"other"},
		},
		{
			name:    "carried header too long",
			headers: []kgo.RecordHeader{hdr("baggage", strings.Repeat("b", maxCarriedHeaderBytes+1))},
			invalid: []string{"other"},
		},
		{
			name:    "oversized correlation-id",
			headers: []kgo.RecordHeader{hdr("correlation-id", long)},
			invalid: []string{"correlation-id"},
		},
		{
			name:    "correlation-id with a newline",
			headers: []kgo.RecordHeader{hdr("correlation-id", "c1\nforged")},
			invalid: []string{"correlation-id"},
		},
		{
			name:      "repartitioned copy not counted again",
			headers:   []kgo.RecordHeader{hdr("correlation-id", long), hdr("traceparent", "garbage")},
			repartPre: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := harnessSpec()
			spec.Process = func(c *Context, r *kgo.Record) error {
				c.Emit(&kgo.Record{Topic: "out"})
				return nil
			}
			h := newHarness(t, spec)
			WithCarriedHeaders("baggage")(&h.r.cfg)
			in := &kgo.Record{Topic: hTopic, Headers: tt.headers}
			if tt.repartPre {
				in.Topic = RepartitionTopic(hGroup, "by-key")
			}
			// As the runtime begins an input: the harness does not count.
			h.begin()
			h.t.beginInput(in)
			out, err := h.end(h.t.attempt(func() error { return h.t.call(in) }))
			if err != nil {
				t.Fatal(err)
			}
			var carried []string
			for _, hd := range out[0].Headers {
				carried = append(carried, hd.Key+"="+string(hd.Value))
			}
			if !slices.Equal(carried, tt.carried) {
				t.Errorf("carried %q, want %q", carried, tt.carried)
			}
			for i, label := range invalidHeaderLabels {
				want := uint64(0)
				if slices.Contains(tt.invalid, label) {
					want = 1
				}
				if got := h.r.m.invalidHeaders[i].Get(); got != want {
					t.Errorf("carepipe_invalid_headers_total{header=%q} = %d, want %d", label, got, want)
				}
			}
		})
	}
}

func TestCheckCarriedHeaders(t *testing.T) {
	many := make([]string, maxCarriedHeaderKeys+1)
	for i := range many {
		many[i] = "h" + strings.Repeat("x", i)
	}
	tests := []struct {
		name    string
		keys    []string
		wantErr string
	}{
		{name: "none"},
		{name: "baggage", keys: []string{"baggage", "x-request-id"}},
		{name: "trace context named again", keys: []string{"traceparent", "tracestate"}},
		{name: "at the bound", keys: many[:maxCarriedHeaderKeys]},
		{name: "too many", keys: many, wantErr: "at most 16"},
		{name: "set by every output", keys: []string{"event-type"}, wantErr: `"event-type": every output sets its own`},
		{name: "empty", keys: []string{""}, wantErr: "empty key"},
		{name: "space", keys: []string{"x request"}, wantErr: "printable ASCII without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCarriedHeaders(tt.keys...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(harnessSpec(), WithInstanceID("x"), WithCarriedHeaders(tt.keys...)); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := New(harnessSpec(), WithInstanceID("x"), WithCarriedHeaders(tt.keys...)); err == nil {
				t.Error("New accepted the keys")
			}
		})
	}
}
