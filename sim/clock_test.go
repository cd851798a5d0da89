package sim

import (
	"testing"
	"time"
)

func TestVirtualClock(t *testing.T) {
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	c := NewVirtualClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	if got := c.Advance(90 * time.Minute); !got.Equal(start.Add(90*time.Minute)) || !c.Now().Equal(got) {
		t.Errorf("after Advance: %v, %v", got, c.Now())
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("after Set: %v", c.Now())
	}
}
