package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Regression (issue 23): a run that ends because its --duration passed is
// a requested stop, like SIGTERM: Run returns nil and logs no warning. A
// pipeline idle at that moment logged "shut down with an error: context
// deadline exceeded". The orders demo sends no bad records, so any WARN
// or ERROR line here is the shutdown's.
func TestRunWithDurationStopsWithoutWarning(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Pipelines: []string{"orders"}, Duration: 2 * time.Second, SummaryEvery: -1, Logger: log})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v, want nil after its duration", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return within a minute of a 2 s run")
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("a clean --duration exit logged: %s", line)
		}
	}
}
