package pipeline_test

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// refuseProduceTo makes the broker refuse every produce to topic with a
// non-retriable error while refusing is set: each transaction that writes
// there aborts, and the same records come back.
func refuseProduceTo(t *testing.T, w *world, topic string, refusing *atomic.Bool) {
	id := topicID(t, w, topic)
	w.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if !refusing.Load() {
			return nil, nil, false
		}
		hit := false
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, pt := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = pt.Topic, pt.TopicID
			for _, p := range pt.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				if pt.Topic == topic || pt.TopicID == id {
					hit = true
					rp.ErrorCode = kerr.MessageTooLarge.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if !hit {
			return nil, nil, false
		}
		// Refuse the whole request: a partial answer would be a second
		// broker's behaviour, and the point is only that nothing commits.
		return resp, nil, true
	})
}

// Issue 19, health that tells the truth: a partition whose transactions
// all abort (here its output is refused, as an oversized error record was
// before issue 19) used to leave /readyz ready and the lag gauge at 0,
// since the fetch position ran ahead. Now the runner says it is stalled,
// with a reason, its lag counts from the committed offset, and it is ready
// again once commits resume.
func TestRunnerHealthSaysStalledWhileNothingCommits(t *testing.T) {
	w := newCountWorld(t, 1)
	r, _ := w.start(t, countSpec())
	w.send(t, w.keys...)
	w.out.await(1)
	kafkatest.Eventually(t, 10*time.Second, "ready", r.Ready)

	var refusing atomic.Bool
	refusing.Store(true)
	refuseProduceTo(t, w.world, "out", &refusing)
	w.send(t, w.keys[0], w.keys[0], w.keys[0])
	var reason string
	kafkatest.Eventually(t, 20*time.Second, "not ready while nothing commits", func() bool {
		var ok bool
		ok, reason = r.Health()
		return !ok
	})
	if !strings.Contains(reason, "no commit for") {
		t.Errorf("reason %q, want it to say no commit", reason)
	}
	if lag := r.Stats().Lag; lag != 3 {
		t.Errorf("lag %d while nothing commits, want 3 (the records waiting)", lag)
	}

	refusing.Store(false)
	w.out.await(4)
	kafkatest.Eventually(t, 10*time.Second, "ready once commits resume", r.Ready)
	kafkatest.Eventually(t, 10*time.Second, "lag back to 0", func() bool { return r.Stats().Lag == 0 })
}

// A session that keeps failing (every commit refused as if fenced) makes
// the runner not ready, saying so, until a commit goes through.
func TestRunnerHealthSaysSessionFailing(t *testing.T) {
	w := newCountWorld(t, 1)
	r, _ := w.start(t, countSpec())
	w.send(t, w.keys...)
	w.out.await(1)

	var refusing atomic.Bool
	refusing.Store(true)
	w.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		if !refusing.Load() || !req.(*kmsg.EndTxnRequest).Commit {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.ProducerFenced.Code
		return resp, nil, true
	})
	w.send(t, w.keys...)
	// Between failures it prepares its partition again, which is a reason
	// too: wait for the one this test is about.
	kafkatest.Eventually(t, 20*time.Second, "not ready, saying the session keeps failing", func() bool {
		ok, reason := r.Health()
		return !ok && strings.Contains(reason, "session failed")
	})
	refusing.Store(false)
	w.out.await(2)
	kafkatest.Eventually(t, 20*time.Second, "ready once a commit goes through", r.Ready)
}

// A partition that moves to another instance drops its lag series here,
// so that two instances never both report it.
func TestRunnerLagSeriesLeaveWithTheirPartition(t *testing.T) {
	w := newCountWorld(t, 2)
	keys := w.keys
	set := metrics.NewSet()
	a, _ := w.start(t, countSpec(), pipeline.WithMetrics(set), pipeline.WithKafka(kgo.ClientID("inst-1")))
	w.send(t, keys...)
	w.out.await(2)
	series := func() string {
		var b bytes.Buffer
		set.WritePrometheus(&b)
		var lines []string
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "carepipe_consumer_lag_records{") {
				lines = append(lines, l[:strings.LastIndexByte(l, ' ')])
			}
		}
		return strings.Join(lines, "\n")
	}
	// Each consumed topic's partition has a series from its assignment:
	// the input's and the repartition topic's.
	const rp = "count-group-by-key-repartition"
	want := `carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="` + rp + `",partition="0"}` + "\n" +
		`carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="` + rp + `",partition="1"}` + "\n" +
		`carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="in",partition="0"}` + "\n" +
		`carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="in",partition="1"}`
	if got := series(); got != want {
		t.Fatalf("lag series\n%s\nwant\n%s", got, want)
	}
	w.start(t, countSpec(), pipeline.WithKafka(kgo.ClientID("inst-2")))
	kafkatest.Eventually(t, 20*time.Second, "a keeps partition 0 only", func() bool { return owns(a, keys, 0) })
	w.send(t, keys...)
	w.out.await(4)
	want = `carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="` + rp + `",partition="0"}` + "\n" +
		`carepipe_consumer_lag_records{pipeline="count",group="count-group",topic="in",partition="0"}`
	if got := series(); got != want {
		t.Errorf("lag series after partition 1 moved away\n%s\nwant\n%s", got, want)
	}
}

// A stall that its partitions take away with them ends. Instance a's
// transactions abort while partition 1's records wait (its output is
// refused), so a is not ready; then b joins and takes partition 1, and
// the broker takes outputs again. Nothing waits on a any more: its own
// partition has no lag, and it must be ready although it has not committed
// since (before, it stayed not ready until its next commit, which an idle
// partition never makes).
func TestRunnerStallEndsWhenItsPartitionMovesAway(t *testing.T) {
	w := newCountWorld(t, 2)
	keys, out := w.keys, w.out
	a, _ := w.start(t, countSpec(), pipeline.WithKafka(kgo.ClientID("inst-1")))
	w.send(t, keys...)
	out.await(2)

	var refusing atomic.Bool
	refusing.Store(true)
	refuseProduceTo(t, w.world, "out", &refusing)
	w.send(t, keys[1], keys[1])
	kafkatest.Eventually(t, 20*time.Second, "a stalled on partition 1", func() bool {
		ok, why := a.Health()
		return !ok && strings.Contains(why, "no commit for")
	})

	b, _ := w.start(t, countSpec(), pipeline.WithKafka(kgo.ClientID("inst-2")))
	// The balancer is sticky: a keeps the partition it lists first.
	kafkatest.Eventually(t, 20*time.Second, "b takes partition 1", func() bool {
		return owns(b, keys, 1) && len(claims(a, keys)) <= 1 && !slices.Contains(claims(a, keys), 1)
	})
	refusing.Store(false)
	out.await(4)
	kafkatest.Eventually(t, 20*time.Second, "a ready with nothing waiting on it", a.Ready)
}

// A runner whose session has not had its first assignment has not joined
// its group: it is not ready, and says so, however quickly it got there.
// It was ready before (as soon as its session existed), so a probe could
// pass while it owned nothing and the assigned-partitions gauge read 0.
func TestRunnerNotReadyUntilItsFirstAssignment(t *testing.T) {
	w := newCountWorld(t, 2)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.cluster.ControlKey(int16(kmsg.SyncGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		once.Do(func() { close(held) })
		w.cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})
	var released sync.Once
	defer released.Do(func() { close(release) })

	r, _ := w.start(t, countSpec())
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the runner never synced with its group")
	}
	// The session may still be starting when its sync arrives: it is
	// joining the group once it is up, and never ready while the sync is
	// held.
	var why string
	kafkatest.Eventually(t, 20*time.Second, "joining the consumer group", func() bool {
		var ok bool
		ok, why = r.Health()
		if ok {
			t.Fatalf("ready while the first sync is held")
		}
		return strings.Contains(why, "joining the consumer group")
	})
	released.Do(func() { close(release) })
	kafkatest.Eventually(t, 20*time.Second, "ready after the first assignment", r.Ready)
	if n := r.AssignedPartitions(); n != 2 {
		t.Errorf("ready with %d partitions assigned, want 2", n)
	}
}
