//go:build !linux

package loadgen

// rss is read from Linux's /proc; elsewhere the report says it is
// unknown.
func rss() int64 { return 0 }
