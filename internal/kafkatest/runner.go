package kafkatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/carepipe/carepipe/pipeline"
)

// stopWait bounds how long [Instance.Stop] waits for Run to return. A
// graceful stop ends an open transaction and leaves the group: well under
// a second on kfake.
const stopWait = 30 * time.Second

// Instance is one running pipeline.Runner: one "process" of a pipeline.
type Instance struct {
	// Runner is the running runner, for its queries and stats.
	Runner *pipeline.Runner

	cancel context.CancelFunc
	exited chan struct{} // closed when Run returned, runErr set
	runErr error
	once   sync.Once
	err    error
}

// StartRunner builds a runner of spec with opts (pipeline.New) and runs it
// in a goroutine until [Instance.Stop]. The test's cleanup stops an
// instance the test did not stop and fails the test if Run returned an
// error; a test that expects one calls Stop itself and checks it.
func StartRunner(t testing.TB, spec pipeline.Spec, opts ...pipeline.Option) *Instance {
	t.Helper()
	r, err := pipeline.New(spec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instance{Runner: r, cancel: cancel, exited: make(chan struct{})}
	go func() {
		in.runErr = r.Run(ctx)
		close(in.exited)
	}()
	t.Cleanup(func() {
		stopped := false
		in.once.Do(func() { in.err, stopped = in.wait(), true })
		if stopped && in.err != nil {
			t.Errorf("%s: %v", spec.Name, in.err)
		}
	})
	return in
}

// Cancel asks the instance to stop and returns at once: a process told to
// exit, whose end the test awaits later with Stop.
func (in *Instance) Cancel() { in.cancel() }

// Done is closed when Run has returned, on its own or after Cancel or
// Stop; Stop then returns Run's error at once. For a test that waits for
// whichever of several instances fails first.
func (in *Instance) Done() <-chan struct{} { return in.exited }

// Stop cancels the instance, waits for Run to return and returns its error
// (nil after a clean stop). Calling it again returns the same error.
func (in *Instance) Stop() error {
	in.once.Do(func() { in.err = in.wait() })
	return in.err
}

func (in *Instance) wait() error {
	in.cancel()
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-in.exited:
		return in.runErr
	case <-t.C:
		return fmt.Errorf("runner did not stop within %v", stopWait)
	}
}
