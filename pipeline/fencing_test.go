package pipeline_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// Regression for hole 3 of issue 16. A transaction that only fires timers
// commits no offsets, so no TxnOffsetCommit checks the group generation,
// and transactional ids are random, so the partitions' new owner does not
// fence the old one either. Instance a heartbeats every 40 s: when b
// joins, a does not rejoin within the rebalance timeout, the group drops
// it and gives b every partition, and a does not know. When the timers
// fall due, both fire them; a's firings must not commit.
func TestRunnerEvictedInstanceCommitsNoTimers(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 2, "timers.in", "set", "fired", "timers.errors")
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := sim.NewVirtualClock(t0)
	due := t0.Add(10 * time.Second)
	keys := keysByPartition(2)
	var timers []*kgo.Record
	for i := range 8 {
		k := fmt.Sprintf("%s-%d", keys[i%2], i)
		timers = append(timers, &kgo.Record{Topic: "timers.in", Key: []byte(k), Value: []byte(strconv.FormatInt(due.Unix(), 10))})
	}

	// A cooperative member heartbeats once 500 ms into its session (to
	// see a rejoin that follows its own quickly), then at its interval
	// (its transactions' ends force heartbeats too, but a commits none
	// after its first records). b joins after that quick heartbeat, so
	// that a hears of the rebalance only 40 s later. The controls run on
	// the cluster's goroutine, one at a time.
	var (
		synced    time.Time
		firstBeat sync.Once
	)
	beaten := make(chan struct{})
	w.cluster.ControlKey(int16(kmsg.SyncGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		if strings.HasPrefix(req.(*kmsg.SyncGroupRequest).MemberID, "inst-a") {
			synced = time.Now()
		}
		return nil, nil, false
	})
	w.cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		if strings.HasPrefix(req.(*kmsg.HeartbeatRequest).MemberID, "inst-a") && !synced.IsZero() && time.Since(synced) >= 500*time.Millisecond {
			firstBeat.Do(func() { close(beaten) })
		}
		return nil, nil, false
	})
	a, _ := w.start(t, timerSpec(), pipeline.WithClock(clock), pipeline.WithKafka(
		kgo.ClientID("inst-a"), kgo.HeartbeatInterval(40*time.Second), kgo.SessionTimeout(120*time.Second),
		kgo.RebalanceTimeout(2*time.Second)))
	produce(t, w.client(t), timers...)
	kafkatest.ReadN(t.Context(), t, w.opts, len(timers), "set")
	select {
	case <-beaten:
	case <-time.After(20 * time.Second):
		t.Fatal("a never heartbeat")
	}

	b, _ := w.start(t, timerSpec(), pipeline.WithClock(clock), pipeline.WithKafka(
		kgo.ClientID("inst-b"), kgo.RebalanceTimeout(2*time.Second)))
	kafkatest.Eventually(t, 20*time.Second, "b owns both partitions with a evicted", func() bool {
		return owns(b, keys, 0, 1)
	})
	if !owns(a, keys, 0, 1) {
		t.Fatal("a no longer claims its partitions: it learnt of its eviction, and the test shows nothing")
	}

	clock.Set(due)
	kafkatest.Eventually(t, 20*time.Second, "a's timer transaction fails the membership check", func() bool {
		return a.Stats().MembershipCheckFailures >= 1
	})
	fired := make(map[string]int)
	kafkatest.Eventually(t, 20*time.Second, "every timer fires", func() bool {
		clear(fired)
		for _, r := range kafkatest.ReadToEnd(t.Context(), t, w.opts, "fired") {
			fired[string(r.Key)]++
		}
		return len(fired) == len(timers)
	})
	for _, r := range timers {
		if n := fired[string(r.Key)]; n != 1 {
			t.Errorf("timer %s fired %d times, want once", r.Key, n)
		}
	}

	// The failed check rebuilt a's session, and a rejoined: it gets one
	// partition back (the balancer is sticky: b keeps the one it lists
	// first) with the store it kept, whose timers b has since fired and
	// deleted. The store must be caught up from its changelog position,
	// not kept as it was.
	kafkatest.Eventually(t, 20*time.Second, "a rejoins and owns a partition", func() bool { return len(claims(a, keys)) == 1 })
	if s := a.Stats(); s.CaughtUp == 0 {
		t.Errorf("a's kept store was not caught up (stats %+v)", s)
	}
	for _, r := range timers {
		if _, found := a.Lookup("timers", string(r.Key)); found {
			t.Errorf("a's store still holds timer %s, which b fired", r.Key)
		}
	}
}
