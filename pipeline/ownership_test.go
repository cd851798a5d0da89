package pipeline_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// keysByPartition returns one key per partition of n, each placed by the
// default partitioner on its partition.
func keysByPartition(n int) []string {
	keys := make([]string, n)
	part := kgo.StickyKeyPartitioner(nil).ForTopic("")
	found := 0
	for i := 0; found < n; i++ {
		k := "key" + strconv.Itoa(i)
		p := part.Partition(&kgo.Record{Key: []byte(k)}, n)
		if keys[p] == "" {
			keys[p] = k
			found++
		}
	}
	return keys
}

// claims reports which of keys' partitions r owns with its state in
// place, as indexes into keys.
func claims(r *pipeline.Runner, keys []string) []int {
	var mine []int
	for i, k := range keys {
		if _, _, ready := r.Owner(k); ready {
			mine = append(mine, i)
		}
	}
	return mine
}

// owns reports whether r owns exactly the partitions of keys[i] for i in
// want.
func owns(r *pipeline.Runner, keys []string, want ...int) bool {
	return slices.Equal(claims(r, keys), want)
}

// outputs reads "out" until it holds n records and returns their values.
type outputReader struct {
	t    *testing.T
	cl   *kgo.Client
	seen []string
}

func newOutputReader(t *testing.T, w *world) *outputReader {
	return &outputReader{t: t, cl: w.client(t, append([]kgo.Opt{kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted())}, pipeline.FetchLimits(12)...)...)}
}

func (o *outputReader) await(n int) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(o.seen) < n {
		fs := o.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			o.t.Fatalf("read %d of %d outputs before the deadline: %v", len(o.seen), n, o.seen)
		}
		fs.EachRecord(func(r *kgo.Record) { o.seen = append(o.seen, string(r.Value)) })
	}
}

// countsOnce checks that the outputs read are every key's counts from 1 to
// n, each once.
func (o *outputReader) countsOnce(keys []string, n int) {
	o.t.Helper()
	count := make(map[string]int)
	for _, v := range o.seen {
		count[v]++
	}
	for _, k := range keys {
		for i := 1; i <= n; i++ {
			if v := k + ":" + strconv.Itoa(i); count[v] != 1 {
				o.t.Errorf("%s seen %d times, want once (outputs %v)", v, count[v], o.seen)
			}
		}
	}
}

// countWorld is a world for countSpec with n partitions: one key placed on
// each, a producer, and a reader of "out".
type countWorld struct {
	*world
	keys []string
	prod *kgo.Client
	out  *outputReader
}

func newCountWorld(t *testing.T, n int) *countWorld {
	t.Helper()
	w := newWorld(t)
	w.createTopics(t, int32(n), "in", "out", "in.errors")
	return &countWorld{world: w, keys: keysByPartition(n), prod: w.client(t), out: newOutputReader(t, w)}
}

// send produces one record for each of keys.
func (cw *countWorld) send(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		produce(t, cw.prod, &kgo.Record{Topic: "in", Key: []byte(k), Value: []byte("v")})
	}
}

// Regression for hole 1 of issue 16. GroupTransactSession passes on only
// the first revoke between two transaction ends. An idle instance (no
// timers, so no transaction) that sees two rebalances in a row missed the
// second revoke, and the runner, which counted revokes, kept a task for a
// partition it no longer owned; when the partition came back after another
// member had processed it, the stale task counted on from its old state
// (key:3 again where key:4 is right). Now ownership is the assignment each
// sync gives (see copartitioned), whatever the callbacks pass on. The
// balancer is sticky: a member that stays keeps the partitions it lists
// first, and a newcomer takes the rest.
func TestRunnerPartitionThatComesBackIsRestored(t *testing.T) {
	w := newCountWorld(t, 4)
	keys, out := w.keys, w.out
	round := func() { w.send(t, keys...) }
	as := func(id string) pipeline.Option { return pipeline.WithKafka(kgo.ClientID(id)) }

	a, _ := w.start(t, countSpec(), as("inst-2"))
	round()
	out.await(4)

	// Two rebalances while a is idle: a revoke is swallowed.
	b, stopB := w.start(t, countSpec(), as("inst-1"))
	// The balancer is sticky: a keeps the half it lists first.
	kafkatest.Eventually(t, 20*time.Second, "b takes partitions 2 and 3", func() bool {
		return owns(b, keys, 2, 3) && owns(a, keys, 0, 1)
	})
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 20*time.Second, "a takes every partition back", func() bool { return owns(a, keys, 0, 1, 2, 3) })
	round()
	out.await(8)

	// Partitions 2 and 3 move to c, which counts on, and come back.
	c, stopC := w.start(t, countSpec(), as("inst-3"))
	kafkatest.Eventually(t, 20*time.Second, "c takes partitions 2 and 3", func() bool {
		_, _, a0 := a.Owner(keys[0])
		_, _, a1 := a.Owner(keys[1])
		return owns(c, keys, 2, 3) && a0 && a1
	})
	if got := claims(a, keys); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("a claims the partitions of keys %v, want [0 1]: c owns 2 and 3", got)
	}
	round()
	out.await(12)
	if err := stopC(); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 20*time.Second, "a takes every partition back", func() bool { return owns(a, keys, 0, 1, 2, 3) })
	round()
	out.await(16)

	out.countsOnce(keys, 4)
}

// topicID returns topic's id, which fetch requests name topics by.
func topicID(t *testing.T, w *world, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(w.client(t)).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: %v", topic, d.Err)
	}
	return d.ID
}

// fetches reports whether req fetches partition p of the topic named name
// or with id id.
func fetches(req *kmsg.FetchRequest, name string, id [16]byte, p int32) bool {
	for _, ft := range req.Topics {
		if ft.Topic != name && ft.TopicID != id {
			continue
		}
		for _, fp := range ft.Partitions {
			if fp.Partition == p {
				return true
			}
		}
	}
	return false
}

// Regression for hole 2 of issue 16. A task restored its state lazily,
// inside its first batch, with the transaction open; the transaction could
// not end until the restore did, so a slow restore of one partition held
// back every other partition's outputs, and one longer than the
// transaction timeout made the broker abort, over and over. Now a
// partition's state is prepared when it is assigned, with its fetching
// paused, and other partitions commit meanwhile. The test holds the
// restore of partition 0's changelog until partition 1's new output is
// committed.
func TestRunnerRestoreRunsOutsideTransactions(t *testing.T) {
	w := newCountWorld(t, 2)
	keys, out := w.keys, w.out

	_, stop := w.start(t, countSpec())
	w.send(t, keys...)
	out.await(2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	changelog := pipeline.ChangelogTopic("count-group", "counts")
	id := topicID(t, w.world, changelog)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		w.cluster.KeepControl()
		if fetches(req.(*kmsg.FetchRequest), changelog, id, 0) {
			once.Do(func() { close(held) })
			w.cluster.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	r, _ := w.start(t, countSpec(), pipeline.WithTransactionTimeout(time.Second))
	w.send(t, keys[0])
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("partition 0's state was never restored")
	}
	w.send(t, keys[1])
	out.await(3)
	if got, want := out.seen[2], keys[1]+":2"; got != want {
		t.Fatalf("while partition 0 restored, output %q, want %q", got, want)
	}
	if r.Ready() {
		t.Error("ready while partition 0's state is being restored")
	}
	close(release)
	out.await(4)
	if got, want := out.seen[3], keys[0]+":2"; got != want {
		t.Errorf("after the restore, output %q, want %q", got, want)
	}
	kafkatest.Eventually(t, 10*time.Second, "ready once restored", r.Ready)
	if s := r.Stats(); s.Aborts != 0 || s.SessionRestarts != 0 {
		t.Errorf("%d aborts and %d session restarts, want none", s.Aborts, s.SessionRestarts)
	}
}

// Item 2 of issue 16, second half: a session that ends (here its commit
// is refused as if the producer were fenced, so the outcome is unknown and
// the session is rebuilt) keeps the state of the partitions it gets back.
// The new session checks each store against its changelog: what lies past
// the store's position is the unknown transaction's, aborted when the new
// session initialised its producer, so nothing is read again from zero;
// and the records of that transaction are counted once, not twice.
func TestRunnerRebuiltSessionKeepsState(t *testing.T) {
	w := newCountWorld(t, 2)
	keys, out := w.keys, w.out

	r, _ := w.start(t, countSpec())
	round := func() { w.send(t, keys...) }
	round()
	out.await(2)
	if s := r.Stats(); s.FullRestores != 2 {
		t.Fatalf("%d full restores at start, want 2 (one per partition)", s.FullRestores)
	}

	var fenced sync.Once
	fired := make(chan struct{})
	w.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !req.(*kmsg.EndTxnRequest).Commit {
			w.cluster.KeepControl()
			return nil, nil, false
		}
		fenced.Do(func() { close(fired) })
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.ProducerFenced.Code
		return resp, nil, true
	})
	round()
	select {
	case <-fired:
	case <-time.After(20 * time.Second):
		t.Fatal("no commit was refused")
	}
	out.await(4)
	kafkatest.Eventually(t, 20*time.Second, "the session is rebuilt", func() bool { return r.Stats().SessionRestarts >= 1 })

	s := r.Stats()
	if s.FullRestores != 2 {
		t.Errorf("%d full restores, want still 2: the rebuilt session kept its state", s.FullRestores)
	}
	if s.Kept+s.CaughtUp < 2 {
		t.Errorf("%d stores kept and %d caught up, want 2 in all", s.Kept, s.CaughtUp)
	}
	round()
	out.await(6)
	out.countsOnce(keys, 3)
}

// Issue 19: rebalances are incremental. A member joining takes partitions
// from the one already there, and that one goes on processing those it
// keeps: their tasks are never halted and their stores never prepared
// again (under the eager protocol every partition was revoked and
// prepared again at each rebalance, and nothing was processed meanwhile).
func TestRunnerKeptPartitionsKeepTheirTasksThroughARebalance(t *testing.T) {
	w := newCountWorld(t, 4)
	keys, out := w.keys, w.out
	a, _ := w.start(t, countSpec(), pipeline.WithKafka(kgo.ClientID("inst-1")))
	w.send(t, keys...)
	out.await(4)
	before := a.Stats()
	if got := before.Kept + before.CaughtUp + before.FullRestores; got != 4 {
		t.Fatalf("a prepared %d stores at start, want 4", got)
	}

	b, _ := w.start(t, countSpec(), pipeline.WithKafka(kgo.ClientID("inst-2")))
	kafkatest.Eventually(t, 20*time.Second, "b takes partitions 2 and 3", func() bool {
		return owns(b, keys, 2, 3) && owns(a, keys, 0, 1)
	})
	w.send(t, keys...)
	out.await(8)
	out.countsOnce(keys, 2)
	after := a.Stats()
	if n := (after.Kept + after.CaughtUp + after.FullRestores) - (before.Kept + before.CaughtUp + before.FullRestores); n != 0 {
		t.Errorf("a prepared %d stores again when b joined, want none: the partitions it kept were stopped", n)
	}
}
