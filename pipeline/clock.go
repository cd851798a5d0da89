package pipeline

import "time"

// Clock is the only source of time a processor sees. Production uses the
// system clock; the simulation drives a virtual one.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns time.Now.
func (SystemClock) Now() time.Time { return time.Now() }
