//go:build !linux

package loadgen

import "time"

// cpuTime and rss are read from Linux's interfaces; elsewhere the report
// says they are unknown.
func cpuTime() time.Duration { return 0 }

func rss() int64 { return 0 }
