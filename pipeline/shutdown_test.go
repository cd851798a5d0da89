package pipeline_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// deadlineContext is a context whose deadline the test decides is reached:
// Done closes when passed is called and Err is then DeadlineExceeded, as a
// context.WithTimeout's is once its time is up. It lets the test end the
// context exactly when the runner is idle in its session, with no timer
// racing the start-up.
type deadlineContext struct {
	context.Context
	done chan struct{}
}

func newDeadlineContext() *deadlineContext {
	return &deadlineContext{Context: context.Background(), done: make(chan struct{})}
}

func (c *deadlineContext) Done() <-chan struct{} { return c.done }

func (c *deadlineContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *deadlineContext) passed() { close(c.done) }

// Regression (issue 23): a context that ends by its deadline (carepipe
// run --duration) is a requested stop like a cancel. An idle runner, with
// no transaction open, returned the context's error from its session and
// logged it as "shut down with an error: context deadline exceeded".
func TestRunnerStoppedByDeadlineReturnsNilWithoutWarning(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := pipeline.New(countSpec(), pipeline.WithKafka(w.opts...), pipeline.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx := newDeadlineContext()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	kafkatest.Eventually(t, 20*time.Second, "ready", r.Ready)
	before := len(logs.String())
	ctx.passed()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of its context's end")
	}
	for _, line := range strings.Split(logs.String()[before:], "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("a stop by deadline logged: %s", line)
		}
	}
}
