//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time this process has used so far, user and
// system; 0 if unreadable. The benchmarks read it too.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
