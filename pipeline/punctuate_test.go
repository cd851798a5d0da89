package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// timerSpec keeps a timer per key: an input record's value is its due time
// (unix seconds), acknowledged on "set"; each punctuation emits "<key>" on
// "fired" for every timer due at the clock's time, and deletes it.
func timerSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:       "timers",
		Group:      "timers-group",
		Inputs:     []string{"timers.in"},
		Outputs:    []string{"set", "fired"},
		ErrorTopic: "timers.errors",
		Stores:     []string{"timers"},
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			c.Store("timers").Put(string(r.Key), r.Value)
			c.Emit(&kgo.Record{Topic: "set", Key: r.Key, Value: r.Value})
			return nil
		},
		PunctuateEvery: 20 * time.Millisecond,
		Punctuate: func(c *pipeline.Context) error {
			s := c.Store("timers")
			for _, k := range s.Keys() {
				v, _ := s.Get(k)
				due, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil || c.Now().Unix() < due {
					continue
				}
				s.Delete(k)
				c.Emit(&kgo.Record{Topic: "fired", Key: []byte(k)})
			}
			return nil
		},
	}
}

// TestPunctuationFiresTimersOnceAcrossRestart: timers kept in a store fire
// from punctuations driven by the injected clock, inside transactions,
// exactly once; after a restart, those of partitions that receive no more
// input fire too (their state is restored for the punctuation).
func TestPunctuationFiresTimersOnceAcrossRestart(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 4, "timers.in", "set", "fired", "timers.errors")
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := sim.NewVirtualClock(t0)
	prod := w.client(t)
	timers := func(prefix string, n int, due time.Time) []*kgo.Record {
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: "timers.in", Key: []byte(fmt.Sprintf("%s%02d", prefix, i)), Value: []byte(strconv.FormatInt(due.Unix(), 10))})
		}
		return recs
	}
	fired := w.client(t, kgo.ConsumeTopics("fired"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	// await reads "fired" until every key in want has fired, failing the
	// test after a deadline; it counts every firing it reads.
	await := func(want []*kgo.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			all := true
			for _, r := range want {
				if seen[string(r.Key)] == 0 {
					all = false
				}
			}
			if all {
				return
			}
			fs := fired.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("timers did not fire before the deadline; fired so far: %v", seen)
			}
			for _, r := range fs.Records() {
				seen[string(r.Key)]++
			}
		}
	}

	_, stop := w.start(t, timerSpec(), pipeline.WithClock(clock))
	first := timers("a", 20, t0.Add(10*time.Second))
	later := timers("z", 8, t0.Add(time.Hour)) // set before the restart, due after it
	produce(t, prod, append(first, later...)...)
	kafkatest.ReadN(t.Context(), t, w.opts, len(first)+len(later), "set")
	clock.Set(t0.Add(10 * time.Second))
	await(first)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// No input reaches the z timers' partitions after the restart: their
	// state is restored for the punctuation alone.
	_, stop = w.start(t, timerSpec(), pipeline.WithClock(clock))
	clock.Set(t0.Add(time.Hour))
	await(later)
	// A sentinel set and fired after everything else: once it is read,
	// any repeat of an earlier firing would have been read before it.
	sentinel := timers("s", 1, t0.Add(2*time.Hour))
	produce(t, prod, sentinel...)
	kafkatest.ReadN(t.Context(), t, w.opts, len(first)+len(later)+1, "set")
	clock.Set(t0.Add(2 * time.Hour))
	await(sentinel)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("timer %s fired %d times, want once", k, n)
		}
	}
	if len(seen) != len(first)+len(later)+1 {
		t.Errorf("%d timers fired, want %d", len(seen), len(first)+len(later)+1)
	}
}

// TestStopAbortsATransactionOfTimersOnly: a transaction that holds only a
// punctuation's work (timers fired, no records polled) and is still open
// when the runner stops is aborted, not committed. Its commit would carry
// no offsets, which franz-go follows with a half-second hold that the
// group leave then waits out; the abort loses nothing, because the
// firings and the timers' deletion roll back together, and the
// partition's next owner fires the timers again from the committed
// state: once, not twice.
func TestStopAbortsATransactionOfTimersOnly(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "timers.in", "set", "fired", "timers.errors")
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := sim.NewVirtualClock(t0)
	spec := timerSpec()
	firedOne := make(chan struct{}, 1)
	punctuate := spec.Punctuate
	spec.Punctuate = func(c *pipeline.Context) error {
		before := c.Store("timers").Len()
		err := punctuate(c)
		if c.Store("timers").Len() < before {
			select {
			case firedOne <- struct{}{}:
			default:
			}
		}
		return err
	}
	// A record commits at once (the record cap is 1); a transaction that
	// only punctuations opened stays open until the stop, the commit
	// interval being far longer than the test.
	r, stop := w.start(t, spec, pipeline.WithClock(clock),
		pipeline.WithCommitRecords(1), pipeline.WithCommitInterval(time.Minute), pipeline.WithTransactionTimeout(2*time.Minute))
	produce(t, w.client(t), &kgo.Record{Topic: "timers.in", Key: []byte("k"), Value: []byte(strconv.FormatInt(t0.Add(10*time.Second).Unix(), 10))})
	kafkatest.ReadN(t.Context(), t, w.opts, 1, "set")
	clock.Set(t0.Add(10 * time.Second))
	select {
	case <-firedOne:
	case <-time.After(30 * time.Second):
		t.Fatal("the timer did not fire")
	}
	aborts := r.Stats().Aborts
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().Aborts; got != aborts+1 {
		t.Errorf("aborts at the stop: %d, want 1", got-aborts)
	}
	if fired := kafkatest.ReadToEnd(t.Context(), t, w.opts, "fired"); len(fired) != 0 {
		t.Fatalf("%d firings committed by the stop, want none: the transaction holding them aborts", len(fired))
	}

	// The next owner fires the timer from the committed state, once.
	_, stop = w.start(t, timerSpec(), pipeline.WithClock(clock))
	kafkatest.ReadN(t.Context(), t, w.opts, 1, "fired")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fired := kafkatest.ReadToEnd(t.Context(), t, w.opts, "fired"); len(fired) != 1 {
		t.Errorf("the timer fired %d times, want once", len(fired))
	}
}

// TestPunctuationWaitingForRoomHoldsNoLock: a punctuation that waits for
// room in a task's full queue must not hold the runner's lock, which
// queries, Health and the rebalance callbacks take: while one slow record
// is processed, they would all wait for it.
func TestPunctuationWaitingForRoomHoldsNoLock(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "timers.in", "set", "fired", "timers.errors")
	spec := timerSpec()
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseSlow := func() { releaseOnce.Do(func() { close(release) }) }
	process := spec.Process
	spec.Process = func(c *pipeline.Context, r *kgo.Record) error {
		if string(r.Key) == "slow" {
			close(entered)
			<-release
		}
		return process(c, r)
	}
	// A queue of one batch, and a transaction that stays open: the poll
	// loop goes on handing out a punctuation every 20 ms rather than
	// waiting at a commit for the slow record.
	r, stop := w.start(t, spec, pipeline.WithQueueBatches(1), pipeline.WithCommitInterval(time.Minute), pipeline.WithTransactionTimeout(2*time.Minute))
	t.Cleanup(releaseSlow) // before stop, which waits for the task
	produce(t, w.client(t), &kgo.Record{Topic: "timers.in", Key: []byte("slow"), Value: []byte("0")})
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow record was not processed")
	}

	// The next punctuation fills the queue and the one after waits for
	// room; over 50 punctuation periods every query must answer.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for until := time.Now().Add(time.Second); time.Now().Before(until); <-tick.C {
			r.AssignedPartitions()
			r.Lookup("timers", "slow")
			r.Health()
		}
	}()
	select {
	case <-answered:
	case <-time.After(15 * time.Second):
		releaseSlow()
		<-answered
		t.Fatal("queries waited for the runner's lock while a punctuation waited for room in a full queue")
	}
	releaseSlow()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if set := kafkatest.ReadToEnd(t.Context(), t, w.opts, "set"); len(set) != 1 {
		t.Errorf("%d records committed on set, want the slow one's", len(set))
	}
}
