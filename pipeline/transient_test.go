package pipeline_test

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// A transient failure (an outside system that does not answer) never sends
// the record to the error topic: the transaction aborts, the session
// restarts from the committed offsets and state, and the record is
// processed again; every record's effect lands exactly once.
func TestRunnerTransientFailureRetriesTheRecord(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	var failures atomic.Int64
	spec := countSpec()
	count := spec.Process
	spec.Process = func(c *pipeline.Context, r *kgo.Record) error {
		if string(r.Value) == "flaky" && failures.Load() < 2 {
			failures.Add(1)
			return pipeline.Transient(errors.New("registry unavailable"))
		}
		return count(c, r)
	}
	prod := w.client(t)
	_, stop := w.start(t, spec)
	produce(t, prod,
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok")},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("flaky")},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok")},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("boom")},
	)
	out := kafkatest.ReadN(t.Context(), t, w.opts, 3, "out")
	// The error topic's first record is the one that is bad; the flaky
	// one never lands there.
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 1, "in.errors")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := failures.Load(); n != 2 {
		t.Fatalf("the transient failure fired %d times, want 2", n)
	}
	for i, r := range out {
		if want := "a:" + strconv.Itoa(i+1); string(r.Value) != want {
			t.Errorf("output %d is %q, want %q", i, r.Value, want)
		}
	}
	if string(errs[0].Value) != "boom" {
		t.Fatalf("error topic's first record is %q, want the rejected one", errs[0].Value)
	}
}
