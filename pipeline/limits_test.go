package pipeline

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// An emit is refused when it cannot fit a batch: its topic's
// max.message.bytes when known and smaller, else the producer's cap. A
// topic that allows more than the cap, or whose limit could not be read,
// must not let through what the producer would refuse (each such record
// aborted every transaction, forever).
func TestTooLargeNeverAboveTheBatchCap(t *testing.T) {
	r := &Runner{maxBytes: map[string]int{"big": 4 << 20, "small": 64 << 10}}
	for _, tc := range []struct {
		topic string
		value int
		over  bool
	}{
		{"big", 2 << 20, true},
		{"big", 500 << 10, false},
		{"small", 100 << 10, true},
		{"small", 10 << 10, false},
		{"unknown", 2 << 20, true},
		{"unknown", 10 << 10, false},
	} {
		_, limit, over := r.tooLarge(&kgo.Record{Topic: tc.topic, Value: make([]byte, tc.value)})
		if over != tc.over {
			t.Errorf("%s, %d bytes: over = %v (limit %d), want %v", tc.topic, tc.value, over, limit, tc.over)
		}
	}
}
