package kafkatest_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// txnProduce writes values to topic's partition 0 in one transaction of a
// fresh transactional producer and commits or aborts it.
func txnProduce(t *testing.T, kopts []kgo.Opt, topic string, commit bool, values ...string) {
	t.Helper()
	cl := kafkatest.Client(t, kopts, kgo.TransactionalID(fmt.Sprintf("txn-%s-%v-%s", topic, commit, values[0])),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := t.Context()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

func values(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

func createTopic(t *testing.T, kopts []kgo.Opt, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, kopts))
	resps, err := adm.CreateTopics(t.Context(), partitions, 1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// ReadToEnd returns the committed records and stops at the end although
// that end is an abort marker; read_uncommitted returns the aborted
// records too.
func TestReadToEndStopsAtATransactionMarker(t *testing.T) {
	c := kafkatest.NewCluster(t)
	kopts := c.ClientOpts()
	createTopic(t, kopts, 2, "t")
	if got := kafkatest.ReadToEnd(t.Context(), t, kopts, "t"); len(got) != 0 {
		t.Fatalf("empty topic: read %v", values(got))
	}
	txnProduce(t, kopts, "t", true, "c1", "c2")
	txnProduce(t, kopts, "t", false, "a1")

	if got, want := values(kafkatest.ReadToEnd(t.Context(), t, kopts, "t")), []string{"c1", "c2"}; !slices.Equal(got, want) {
		t.Errorf("read_committed: %v, want %v", got, want)
	}
	if got, want := values(kafkatest.ReadToEndAt(t.Context(), t, kopts, kgo.ReadUncommitted(), "t")), []string{"c1", "c2", "a1"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted: %v, want %v", got, want)
	}
	if got := kafkatest.ReadN(t.Context(), t, kopts, 2, "t"); len(got) != 2 {
		t.Errorf("ReadN(2): %v", values(got))
	}
}

// A group is caught up on a transactional topic when it committed past the
// last data record, although the end offset is one past the commit marker;
// not when it committed short of that record, nor without commits.
func TestCaughtUpOnATransactionalTopic(t *testing.T) {
	c := kafkatest.NewCluster(t)
	kopts := c.ClientOpts()
	createTopic(t, kopts, 1, "t", "empty")
	txnProduce(t, kopts, "t", true, "c1", "c2") // offsets 0, 1; marker at 2
	adm := kadm.NewClient(kafkatest.Client(t, kopts))
	ctx := t.Context()

	check := func(what string, want bool, topics ...string) {
		t.Helper()
		got, err := kafkatest.CaughtUp(ctx, kopts, "g", topics...)
		if got != want {
			t.Errorf("%s: caught up %v (%v), want %v", what, got, err, want)
		}
	}
	check("no commits, empty topic", true, "empty")
	check("no commits", false, "t")
	commit := func(at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		offs.AddOffset("t", 0, at, -1)
		if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
			t.Fatal(err)
		}
	}
	commit(1)
	check("committed at the last record", false, "t", "empty")
	commit(2)
	check("committed past the last record", true, "t", "empty")
}

// StartRunner runs a runner until Stop, which returns Run's error (nil
// after a clean stop, again when called twice);
// WaitCaughtUp returns once the group committed every input, and then
// every output is readable.
func TestStartRunnerAndWaitCaughtUp(t *testing.T) {
	c := kafkatest.NewCluster(t)
	kopts := c.ClientOpts()
	spec := pipeline.Spec{
		Name: "copy", Group: "copy-group",
		Inputs: []string{"in"}, Outputs: []string{"out"}, ErrorTopic: "in.errors",
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			c.Emit(&kgo.Record{Topic: "out", Key: r.Key, Value: r.Value})
			return nil
		},
	}
	if err := pipeline.CreateTopics(t.Context(), kadm.NewClient(kafkatest.Client(t, kopts)), &spec, 3, 1); err != nil {
		t.Fatal(err)
	}
	in := kafkatest.StartRunner(t, spec, pipeline.WithKafka(kopts...), pipeline.WithCommitInterval(20*time.Millisecond),
		pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	prod := kafkatest.Client(t, kopts)
	const n = 50
	for i := range n {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kafkatest.WaitCaughtUp(ctx, t, kopts, spec)
	if got := kafkatest.ReadToEnd(ctx, t, kopts, "out"); len(got) != n {
		t.Errorf("caught up with %d outputs, want %d", len(got), n)
	}
	if err := in.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := in.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// A runner whose input is missing fails at start, on its own: Done
	// closes and Stop returns Run's error.
	missing := spec
	missing.Inputs = []string{"no-such-topic"}
	bad := kafkatest.StartRunner(t, missing, pipeline.WithKafka(kopts...), pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	select {
	case <-bad.Done():
	case <-ctx.Done():
		t.Fatal("a runner with a missing input still runs")
	}
	if err := bad.Stop(); err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Errorf("Stop of a runner with a missing input: %v, want Run's error naming the topic", err)
	}
}
