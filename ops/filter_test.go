package ops

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFilterMatch(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	e := &ErrorRecord{Type: "invalid", SourceTopic: "fhir.Observation", SourcePartition: 3, SourceOffset: 100, Timestamp: at}
	off := func(v int64) *int64 { return &v }
	for _, tt := range []struct {
		name string
		f    Filter
		want bool
	}{
		{"zero filter", Filter{}, true},
		{"type", Filter{ErrorType: "invalid"}, true},
		{"other type", Filter{ErrorType: "decode"}, false},
		{"source topic", Filter{SourceTopic: "fhir.Observation"}, true},
		{"other source topic", Filter{SourceTopic: "fhir.Patient"}, false},
		{"partition", Filter{Partitions: []int32{1, 3}}, true},
		{"other partition", Filter{Partitions: []int32{1}}, false},
		{"offsets, bounds included", Filter{FromOffset: off(100), ToOffset: off(100)}, true},
		{"offset below", Filter{FromOffset: off(101)}, false},
		{"offset above", Filter{ToOffset: off(99)}, false},
		{"since, included", Filter{Since: at}, true},
		{"since later", Filter{Since: at.Add(time.Millisecond)}, false},
		{"until, excluded", Filter{Until: at}, false},
		{"until later", Filter{Until: at.Add(time.Millisecond)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(e); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 1000)
	p.set(500)
	p.set(1000)
	p.finish()
	want := "\rreplayed 500/1000 [" + strings.Repeat("=", 15) + strings.Repeat(" ", 15) + "]  50%" +
		"\rreplayed 1000/1000 [" + strings.Repeat("=", 30) + "] 100%\n"
	if b.String() != want {
		t.Errorf("drew %q, want %q", b.String(), want)
	}
}
