package envelope

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The traceparent values are the W3C's: the example of Trace Context (W3C
// Recommendation, https://www.w3.org/TR/trace-context/, section 3.2.3
// "Examples of HTTP traceparent Headers"), and the cases of the
// Recommendation's test suite (github.com/w3c/trace-context,
// test/test.py, the test_traceparent_* functions named), each with the
// outcome that suite expects: kept (the same trace-id comes back) or
// invalid (a new trace is started).
func TestValidTraceparent(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
	}{
		{"3.2.3 example, sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"3.2.3 example, not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"included", "00-12345678901234567890123456789012-1234567890123456-01", true},
		{"version_0x00 trailing dot", "00-12345678901234567890123456789012-1234567890123456-01.", false},
		{"version_0x00 trailing fields", "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like", false},
		{"version_0xcc", "cc-12345678901234567890123456789012-1234567890123456-01", true},
		{"version_0xcc future fields", "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like", true},
		{"version_0xcc no dash after flags", "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like", false},
		{"version_0xff", "ff-12345678901234567890123456789012-1234567890123456-01", false},
		{"version illegal characters 1", ".0-12345678901234567890123456789012-1234567890123456-01", false},
		{"version illegal characters 2", "0.-12345678901234567890123456789012-1234567890123456-01", false},
		{"version too long 1", "000-12345678901234567890123456789012-1234567890123456-01", false},
		{"version too long 2", "0000-12345678901234567890123456789012-1234567890123456-01", false},
		{"version too short", "0-12345678901234567890123456789012-1234567890123456-01", false},
		{"trace_id all zero", "00-00000000000000000000000000000000-1234567890123456-01", false},
		{"trace_id illegal characters 1", "00-.2345678901234567890123456789012-1234567890123456-01", false},
		{"trace_id illegal characters 2", "00-1234567890123456789012345678901.-1234567890123456-01", false},
		{"trace_id too long", "00-123456789012345678901234567890123-1234567890123456-01", false},
		{"trace_id too short", "00-1234567890123456789012345678901-1234567890123456-01", false},
		{"parent_id all zero", "00-12345678901234567890123456789012-0000000000000000-01", false},
		{"parent_id illegal characters 1", "00-12345678901234567890123456789012-.234567890123456-01", false},
		{"parent_id illegal characters 2", "00-12345678901234567890123456789012-123456789012345.-01", false},
		{"parent_id too long", "00-12345678901234567890123456789012-12345678901234567-01", false},
		{"parent_id too short", "00-12345678901234567890123456789012-123456789012345-01", false},
		{"trace_flags illegal characters 1", "00-12345678901234567890123456789012-1234567890123456-.0", false},
		{"trace_flags illegal characters 2", "00-12345678901234567890123456789012-1234567890123456-0.", false},
		{"trace_flags too long", "00-12345678901234567890123456789012-1234567890123456-001", false},
		{"trace_flags too short", "00-12345678901234567890123456789012-1234567890123456-1", false},
		// Ours: HEXDIGLC is lowercase only ("traceparent Header Field
		// Values"); a Kafka header has no optional whitespace to strip;
		// a future version is bounded.
		{"uppercase trace-id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"leading space", " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"future version too long", "cc-12345678901234567890123456789012-1234567890123456-01-" + strings.Repeat("x", 300), false},
		{"future version with a control character", "cc-12345678901234567890123456789012-1234567890123456-01-\x07", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTraceparent([]byte(tt.value)); got != tt.want {
				t.Errorf("ValidTraceparent(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

// The valid tracestate values named after a section are the examples of
// Trace Context (W3C Recommendation, https://www.w3.org/TR/trace-context/,
// that section); the others are ours, each keeping or breaking a rule of
// its grammar ("tracestate Header Field Values") or limits.
func TestValidTracestate(t *testing.T) {
	member := func(i int) string { return "k" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + "=v" }
	var members []string
	for i := range 33 {
		members = append(members, member(i))
	}
	tests := []struct {
		name, value string
		want        bool
	}{
		{"Relationship Between the Headers", "congo=t61rcWkgMzE", true},
		{"Examples of tracestate HTTP Headers, single", "rojo=00f067aa0ba902b7", true},
		{"Examples of tracestate HTTP Headers, multiple", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"Combined Header Value", "vendorname1=opaqueValue1,vendorname2=opaqueValue2", true},
		{"key with @ and /", "tenant1@vendor/x=v", true},
		{"optional whitespace and empty members", " congo=t61rcWkgMzE , ,\trojo=00f067aa0ba902b7", true},
		{"empty", "", true},
		{"32 members", strings.Join(members[:32], ","), true},
		{"33 members", strings.Join(members, ","), false},
		{"over 512 bytes", "a=" + strings.Repeat("v", 511), false},
		{"uppercase key", "Congo=t61rcWkgMzE", false},
		{"key starting with a dash", "-congo=x", false},
		{"no value", "congo=", false},
		{"no equals sign", "congo", false},
		{"equals sign in value", "congo=a=b", false},
		{"value ending in a space inside the list", "congo=ab ,rojo=x", true},
		{"control character in value", "congo=a\x01b", false},
		{"non-ASCII value", "congo=caf\u00e9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTracestate([]byte(tt.value)); got != tt.want {
				t.Errorf("ValidTracestate(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestValidText(t *testing.T) {
	tests := []struct {
		name, value string
		max         int
		want        bool
	}{
		{"ASCII", "corr-0001", 256, true},
		{"UTF-8", "Überweisung-\u00e9-\u4e2d", 256, true},
		{"empty", "", 256, true},
		{"at the bound", strings.Repeat("a", 256), 256, true},
		{"over the bound", strings.Repeat("a", 257), 256, false},
		{"newline", "corr\n0001", 256, false},
		{"NUL", "corr\x000001", 256, false},
		{"DEL", "corr\x7f", 256, false},
		{"C1 control", "corr\u0085", 256, false},
		{"invalid UTF-8", "corr\xff\xfe", 256, false},
		{"truncated UTF-8", "corr\xe4\xb8", 256, false},
		{"ANSI escape", "\x1b[31mred", 256, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidText(tt.value, tt.max); got != tt.want {
				t.Errorf("ValidText(%q) = %v, want %v", tt.value, got, tt.want)
			}
			if got := ValidText([]byte(tt.value), tt.max); got != tt.want {
				t.Errorf("ValidText([]byte(%q)) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

// An invalid correlation id, in a header or the metadata, counts as
// absent: the next source is used, and the derived id when none is left.
func TestCorrelationIDInvalidReplaced(t *testing.T) {
	rec := func(headers ...kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: "fhir.Observation", Partition: 3, Offset: 42, Headers: headers}
	}
	corr := func(v string) kgo.RecordHeader { return kgo.RecordHeader{Key: HeaderCorrelationID, Value: []byte(v)} }
	derived := DerivedCorrelationID("fhir.Observation", 3, 42)
	long := strings.Repeat("c", MaxCorrelationIDBytes+1)
	tests := []struct {
		name string
		r    *kgo.Record
		meta Metadata
		want string
	}{
		{name: "oversized header", r: rec(corr(long)), want: derived},
		{name: "header at the bound", r: rec(corr(long[1:])), want: long[1:]},
		{name: "header with a newline", r: rec(corr("c1\nforged log line")), want: derived},
		{name: "header not UTF-8", r: rec(corr("c1\xff")), want: derived},
		{name: "invalid header, metadata used", r: rec(corr(long)), meta: Metadata{CorrelationID: "m1"}, want: "m1"},
		{name: "invalid header, later valid header", r: rec(corr("c1\x00"), corr("h2")), want: "h2"},
		{name: "oversized metadata", r: rec(), meta: Metadata{CorrelationID: long}, want: derived},
		{name: "metadata with a control character", r: rec(), meta: Metadata{CorrelationID: "m1\x1b[2J"}, want: derived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CorrelationID(tt.r, tt.meta); got != tt.want {
				t.Errorf("CorrelationID = %q, want %q", got, tt.want)
			}
		})
	}
}
