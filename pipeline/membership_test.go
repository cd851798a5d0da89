package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// Issue 19: with an instance id the runner is a static member of its group
// (KIP-345). An instance that stops does not leave: the group keeps its
// membership and assignment for the session timeout, so the other instance
// goes on with its own partitions and a restart under the same id takes the
// stopped one's back. (Before, the stop left the group and the other
// instance took every partition, and the restart moved half of them back:
// two rebalances.) Whether the rejoin itself rebalances is the broker's
// call: Kafka keeps a static member's assignment when its subscription is
// unchanged, while kfake also compares the join metadata's generation and
// rebalances when the stopped member had rejoined since its first join;
// exactly once holds either way.
func TestRunnerStaticMemberStopsWithoutLeaving(t *testing.T) {
	w := newCountWorld(t, 4)
	keys, out := w.keys, w.out
	as := func(id string) []pipeline.Option {
		return []pipeline.Option{
			pipeline.WithInstanceID(id), pipeline.WithKafka(kgo.ClientID(id)),
			// Long enough that the group never times the stopped
			// member out during the test.
			pipeline.WithKafka(kgo.SessionTimeout(20 * time.Second)),
		}
	}
	a, _ := w.start(t, countSpec(), as("inst-1")...)
	_, stopB := w.start(t, countSpec(), as("inst-2")...)
	w.send(t, keys...)
	out.await(4)
	// Which half each takes depends on which joined first (the balancer
	// is sticky): take what a holds once both hold two.
	var mine []int
	kafkatest.Eventually(t, 20*time.Second, "a holds two partitions", func() bool {
		mine = claims(a, keys)
		return len(mine) == 2
	})
	var theirs []int
	for i := range keys {
		if !slices.Contains(mine, i) {
			theirs = append(theirs, i)
		}
	}

	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	groups, err := kadm.NewClient(w.client(t)).DescribeGroups(context.Background(), "count-group")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range groups["count-group"].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	if !slices.Equal(ids, []string{"inst-1", "inst-2"}) {
		t.Fatalf("after inst-2 stopped the group's static members are %v, want [inst-1 inst-2]: the stop left the group", ids)
	}
	if !owns(a, keys, mine...) {
		t.Errorf("a owns the partitions of keys %v after b stopped, want %v", claims(a, keys), mine)
	}

	b2, _ := w.start(t, countSpec(), as("inst-2")...)
	kafkatest.Eventually(t, 15*time.Second, "the restarted b owns its partitions again", func() bool { return owns(b2, keys, theirs...) })
	w.send(t, keys...)
	out.await(8)
	out.countsOnce(keys, 2)
}

// Issue 19: two live processes with one instance id took it from each
// other for ever, each new session fencing the other. Now the group fences
// one of them and its Run returns a DuplicateInstanceError naming the id,
// while the other goes on processing.
func TestRunnerDuplicateInstanceIDStopsOne(t *testing.T) {
	w := newCountWorld(t, 2)
	keys, out := w.keys, w.out
	run := func() (*pipeline.Runner, chan error) {
		r, err := pipeline.New(countSpec(), pipeline.WithKafka(w.opts...), pipeline.WithCommitInterval(20*time.Millisecond),
			pipeline.WithLogger(testLogger(t)), pipeline.WithInstanceID("same"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done, finished := make(chan error, 1), make(chan struct{})
		go func() {
			defer close(finished)
			done <- r.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			select {
			case <-finished:
			case <-time.After(30 * time.Second):
				t.Error("a runner did not stop")
			}
		})
		return r, done
	}
	first, firstDone := run()
	w.send(t, keys...)
	out.await(2)
	second, secondDone := run()

	var err error
	survivor := first
	select {
	case err = <-firstDone:
		survivor = second
	case err = <-secondDone:
	case <-time.After(30 * time.Second):
		t.Fatal("both runners still run with one instance id")
	}
	var dup *pipeline.DuplicateInstanceError
	if !errors.As(err, &dup) || dup.InstanceID != "same" {
		t.Fatalf("Run returned %v, want a DuplicateInstanceError for \"same\"", err)
	}
	kafkatest.Eventually(t, 30*time.Second, "the survivor owns both partitions", func() bool { return owns(survivor, keys, 0, 1) })
	w.send(t, keys...)
	out.await(4)
	out.countsOnce(keys, 2)
}
