package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger adapts slog to franz-go's logger, at warn and above: franz-go's
// info level narrates every rebalance and transaction.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, msg, append([]any{"component", "kafka"}, keyvals...)...)
}

// limitedLog writes a warning at most once per interval and says how many
// it held back since the last one.
type limitedLog struct {
	l     *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (ll *limitedLog) warn(msg string, args ...any) {
	ll.mu.Lock()
	now := time.Now()
	if now.Sub(ll.last) < ll.every {
		ll.suppressed++
		ll.mu.Unlock()
		return
	}
	n := ll.suppressed
	ll.last, ll.suppressed = now, 0
	ll.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	ll.l.Warn(msg, args...)
}
