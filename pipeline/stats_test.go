package pipeline_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// Stats counts every record sent to the error topic in Errors, and those
// of type conflict (updates that lost to newer state, an expected outcome)
// also in Conflicts, so that a summary can show failures and expected
// outcomes apart (issue 23).
func TestStatsCountsConflictsApartFromFailures(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	spec := pipeline.Spec{
		Name: "judge", Group: "judge-group", Inputs: []string{"in"}, Outputs: []string{"out"}, ErrorTopic: "in.errors",
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			switch string(r.Value) {
			case "stale":
				return pipeline.Rejectf(pipeline.TypeConflict, "lost to newer state")
			case "bad":
				return pipeline.Rejectf(pipeline.TypeInvalid, "breaks the contract")
			}
			c.Emit(&kgo.Record{Topic: "out", Key: r.Key, Value: r.Value})
			return nil
		},
	}
	r, stop := w.start(t, spec)
	cl := w.client(t)
	for _, v := range []string{"ok", "stale", "bad", "stale", "ok", "stale"} {
		produce(t, cl, &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte(v)})
	}
	kafkatest.Eventually(t, 20*time.Second, "the four rejected records on the error topic", func() bool { return r.Stats().Errors >= 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if s.Errors != 4 || s.Conflicts != 3 {
		t.Errorf("Errors %d, Conflicts %d; want 4 records on the error topic, 3 of them conflicts", s.Errors, s.Conflicts)
	}
}
