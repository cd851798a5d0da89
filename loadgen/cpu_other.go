//go:build !unix

package loadgen

import "time"

// ProcessCPU is not measured here: reports then say the CPU time is
// unknown.
func ProcessCPU() time.Duration { return 0 }
