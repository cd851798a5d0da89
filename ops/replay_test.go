package ops_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// errorWorld is a cluster where specs' runners have turned n records of
// each spec's input into error records, and stopped.
type errorWorld struct {
	c    *sim.Cluster
	cl   *kgo.Client
	adm  *kadm.Client
	sent map[string][]*kgo.Record // by input topic
}

func newErrorWorld(t *testing.T, n int, specs ...pipeline.Spec) *errorWorld {
	t.Helper()
	c := kafkatest.NewCluster(t)
	cl := kafkatest.Client(t, c.ClientOpts())
	w := &errorWorld{c: c, cl: cl, adm: kadm.NewClient(cl), sent: map[string][]*kgo.Record{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range specs {
		s := &specs[i]
		if err := pipeline.CreateTopics(ctx, w.adm, s, 3, 1); err != nil {
			t.Fatal(err)
		}
		for j := range n {
			w.sent[s.Inputs[0]] = append(w.sent[s.Inputs[0]], &kgo.Record{Topic: s.Inputs[0], Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "%s record %d", s.Name, j)})
		}
		if err := cl.ProduceSync(ctx, w.sent[s.Inputs[0]]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		in := kafkatest.StartRunner(t, *s, pipeline.WithKafka(c.ClientOpts()...), pipeline.WithLogger(slog.New(slog.DiscardHandler)),
			pipeline.WithCommitInterval(20*time.Millisecond))
		kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d error records made by %s", n, s.Name), func() bool { return w.count(t, ctx, *s) >= n })
		if err := in.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// count is how many error records ReadErrors gives for spec.
func (w *errorWorld) count(t *testing.T, ctx context.Context, specs ...pipeline.Spec) int {
	t.Helper()
	n := 0
	if err := ops.ReadErrors(ctx, w.c.ClientOpts(), specs, ops.Filter{}, func(*ops.ErrorRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// copies counts, for each record sent to topic, how often its key and
// value are on topic now (read_committed).
func (w *errorWorld) copies(t *testing.T, ctx context.Context, topic string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range kafkatest.ReadToEnd(ctx, t, w.c.ClientOpts(), topic) {
		n[string(r.Key)+"="+string(r.Value)]++
	}
	return n
}

// Two pipelines writing to one error topic: each reads only the error
// records of what it consumes; both together read every one.
func TestReadErrorsOfASharedErrorTopic(t *testing.T) {
	a, b := rejecting("stage_a"), rejecting("stage_b")
	a.ErrorTopic, b.ErrorTopic = "shared.errors", "shared.errors"
	w := newErrorWorld(t, 20, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if na, nb, both := w.count(t, ctx, a), w.count(t, ctx, b), w.count(t, ctx, a, b); na != 20 || nb != 20 || both != 40 {
		t.Errorf("error records read: %d for a, %d for b, %d for both; want 20, 20, 40", na, nb, both)
	}
}

// Replays run at the same time send each original once between them: the
// one that initialises its producer later fences the other before reading
// the replay log. Whichever way they interleave, one may fail (fenced),
// and what the other finds to do is what the first did not commit.
func TestConcurrentReplaysSendEachOriginalOnce(t *testing.T) {
	spec := rejecting("concurrent")
	const n = 1200 // three transactions each
	w := newErrorWorld(t, n, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 3 {
		var wg sync.WaitGroup
		results := make([]*ops.ReplayResult, 3)
		errs := make([]error, 3)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = ops.Replay(ctx, w.c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, ops.ReplayOptions{})
			}()
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			if err != nil {
				t.Logf("round %d: replay %d failed (fenced, as one may be): %v", round, i, err)
				continue
			}
			ok++
		}
		if ok == 0 {
			t.Fatalf("round %d: every replay failed: %v", round, errs)
		}
	}
	// After three rounds, the log is complete: a last replay has nothing
	// to do, and each original is on its topic twice (sent, replayed once).
	last, err := ops.Replay(ctx, w.c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, ops.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if last.Replayed != 0 || last.AlreadyReplayed != n {
		t.Errorf("a replay after the others: %+v, want none to replay and %d replayed before", last, n)
	}
	copies := w.copies(t, ctx, spec.Inputs[0])
	for _, r := range w.sent[spec.Inputs[0]] {
		if c := copies[string(r.Key)+"="+string(r.Value)]; c != 2 {
			t.Fatalf("%s is on %s %d times, want twice", r.Key, spec.Inputs[0], c)
		}
	}
}

// The interleaving that reading the log before fencing would get wrong: a
// replay reads the log, and before it sends anything another replay runs
// from start to end. The first must then fail, fenced, and send nothing:
// the second sent every original.
func TestAReplayOvertakenAfterReadingTheLogSendsNothing(t *testing.T) {
	spec := rejecting("overtaken")
	const n = 50
	w := newErrorWorld(t, n, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var second *ops.ReplayResult
	var secondErr error
	var o ops.ReplayOptions
	ops.SetAfterLogRead(&o, func() {
		second, secondErr = ops.Replay(ctx, w.c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, ops.ReplayOptions{})
	})
	first, err := ops.Replay(ctx, w.c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, o)
	if secondErr != nil || second.Replayed != n {
		t.Fatalf("the overtaking replay: %+v, %v; want all %d replayed", second, secondErr, n)
	}
	if err == nil {
		t.Errorf("the overtaken replay succeeded (%+v): it was not fenced", first)
	}
	copies := w.copies(t, ctx, spec.Inputs[0])
	for _, r := range w.sent[spec.Inputs[0]] {
		if c := copies[string(r.Key)+"="+string(r.Value)]; c != 2 {
			t.Fatalf("%s is on %s %d times, want twice", r.Key, spec.Inputs[0], c)
		}
	}
}
