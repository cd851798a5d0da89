package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/sim/check"
)

// Issue 6: exactly-once under faults. Each test runs the orders pipeline
// (medication.order.submitted -> medication.order.processed, poison records
// to medication.order.errors) through one kind of broker fault, proves the
// fault fired, and has sim/check account for every input: one processed
// order or one faithful error record each, none lost, none twice, in order
// per key.

const (
	// faultOrders is the workload of each fault test.
	faultOrders = 3000
	// poisonEvery makes every poisonEvery-th order poison (not JSON), so
	// the error path is under the same faults as the happy one.
	poisonEvery = 50
	// faultWait bounds every wait for a fault or for progress.
	faultWait = 30 * time.Second
)

// ordersWorld is a cluster with the orders pipeline's topics, a producer
// and an admin client.
type ordersWorld struct {
	t        *testing.T
	cluster  *sim.Cluster
	k        *kfake.Cluster
	spec     pipeline.Spec
	prod     *kgo.Client
	adm      *kadm.Client
	produced int
}

func newOrdersWorld(t *testing.T, opts ...sim.ClusterOption) *ordersWorld {
	t.Helper()
	c := kafkatest.NewCluster(t, opts...)
	w := &ordersWorld{t: t, cluster: c, k: c.Kafka(), spec: stageSpec(t, catalog.Settings{}, orders.Name, orders.Name)}
	w.prod = w.client()
	w.adm = kadm.NewClient(w.client())
	if err := pipeline.CreateTopics(context.Background(), w.adm, &w.spec, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *ordersWorld) client(opts ...kgo.Opt) *kgo.Client {
	w.t.Helper()
	return kafkatest.Client(w.t, w.cluster.ClientOpts(), opts...)
}

// start runs an orders instance as the binary builds it; opts come after
// the scenario defaults and override them.
func (w *ordersWorld) start(opts ...pipeline.Option) *kafkatest.Instance {
	w.t.Helper()
	base := []pipeline.Option{
		pipeline.WithKafka(w.cluster.ClientOpts()...),
		pipeline.WithCommitInterval(50 * time.Millisecond),
		pipeline.WithTransactionTimeout(5 * time.Second),
		pipeline.WithLogger(testLogger()),
	}
	return kafkatest.StartRunner(w.t, stageSpec(w.t, catalog.Settings{}, orders.Name, orders.Name), append(base, opts...)...)
}

func (w *ordersWorld) produce(recs []*kgo.Record) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	if err := sim.Produce(ctx, w.prod, recs); err != nil {
		w.t.Fatal(err)
	}
	w.produced += len(recs)
}

// committed is how many input records the group has committed: the sum of
// its committed offsets on the input topic (offsets start at 0 and the
// input is not transactional). Only committed transactions count; kfake
// applies transactional offsets when the transaction commits.
func (w *ordersWorld) committed() int64 {
	gi := w.k.GroupInfo(orders.Group)
	if gi == nil {
		return 0
	}
	var n int64
	for _, c := range gi.Commits[orders.TopicSubmitted] {
		n += c.Offset
	}
	return n
}

func (w *ordersWorld) waitCommitted(n int64, what string) {
	w.t.Helper()
	kafkatest.Eventually(w.t, faultWait, what, func() bool { return w.committed() >= n })
}

// waitCaughtUp waits until every record produced so far is committed.
func (w *ordersWorld) waitCaughtUp() {
	w.t.Helper()
	w.waitCommitted(int64(w.produced), fmt.Sprintf("all %d orders committed", w.produced))
}

// requireExactlyOnce reads the three topics back read_committed and has
// sim/check account for every input.
func (w *ordersWorld) requireExactlyOnce() check.Report {
	w.t.Helper()
	read := func(topic string) []*kgo.Record {
		return kafkatest.ReadToEnd(context.Background(), w.t, w.cluster.ClientOpts(), topic)
	}
	ins := read(orders.TopicSubmitted)
	rep := check.Account(ins, read(orders.TopicProcessed), read(orders.TopicErrors), ordersExpect)
	w.t.Logf("accounting: %v", rep)
	if len(ins) != w.produced {
		w.t.Errorf("read %d inputs back, produced %d", len(ins), w.produced)
	}
	if !rep.OK() || rep.Lost != 0 || rep.Duplicated != 0 || rep.Outputs+rep.Errors != rep.Inputs {
		w.t.Errorf("not exactly once: %v", rep)
	}
	if want := w.produced / poisonEvery; rep.Errors != want {
		w.t.Errorf("%d error records, want %d (one per poison order)", rep.Errors, want)
	}
	return rep
}

// orderWorkload is n seeded medication orders, every poisonEvery-th one
// poison, each with a correlation-id header (which error records must
// carry first).
func orderWorkload(seed int64, n int) []*kgo.Record {
	recs, _ := sim.MedicationOrders(seed, n)
	for i, r := range recs {
		if i%poisonEvery == poisonEvery-1 {
			r.Value = []byte("poison order " + strconv.Itoa(i))
		}
		r.Headers = []kgo.RecordHeader{{Key: "correlation-id", Value: []byte(fmt.Sprintf("corr-%d-%d", seed, i))}}
	}
	return recs
}

// ordersExpect accounts for the orders pipeline: an order and its processed
// form share their id; poison orders have none.
var ordersExpect = check.Expect{
	InputID: func(in *kgo.Record) string { return orderID(in.Value) },
	OutputID: func(out *kgo.Record) (string, bool) {
		return orderID(out.Value), out.Topic == orders.TopicProcessed
	},
}

func orderID(v []byte) string {
	var o struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(v, &o) != nil {
		return ""
	}
	return o.ID
}

// firings counts a fault's firings and announces each on a channel.
type firings struct {
	n  atomic.Int32
	ch chan struct{}
}

func newFirings(max int) *firings { return &firings{ch: make(chan struct{}, max)} }

func (f *firings) fire() {
	f.n.Add(1)
	select {
	case f.ch <- struct{}{}:
	default:
	}
}

func (f *firings) count() int { return int(f.n.Load()) }

// await waits for one more announced firing.
func (f *firings) await(t *testing.T, what string) {
	t.Helper()
	select {
	case <-f.ch:
	case <-time.After(faultWait):
		t.Fatalf("%s: the fault did not fire within %v (fired %d times)", what, faultWait, f.count())
	}
}

// countRequests counts the requests of one key the cluster receives,
// without touching them. Install it before any control that handles the
// same key: controls run in the order added, and one that handles a
// request hides it from the rest.
func countRequests(k *kfake.Cluster, key kmsg.Key) *atomic.Int64 {
	var n atomic.Int64
	k.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// initsOf counts the InitProducerID requests for txnID (the test's own
// idempotent producer sends others) and closes the returned channel at the
// n-th of them: a producer (re-)initialised, which fences and aborts the
// transaction id's open transaction.
func initsOf(k *kfake.Cluster, txnID string, n int64) (*atomic.Int64, <-chan struct{}) {
	var seen atomic.Int64
	ch := make(chan struct{})
	k.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if id := req.(*kmsg.InitProducerIDRequest).TransactionalID; id != nil && *id == txnID && seen.Add(1) == n {
			close(ch)
		}
		return nil, nil, false
	})
	return &seen, ch
}

// quitChan is closed when the test ends, so that a control parked on it
// (SleepControl) never outlives the test.
func quitChan(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// separateCoordinators rehashes until the group and the transactional id
// have different coordinators, so that holding one's requests (which park
// the whole connection) does not hold the other's: heartbeats keep flowing
// while an EndTxn is held. Call it before any client caches a coordinator.
func separateCoordinators(t *testing.T, k *kfake.Cluster, group, txnID string) {
	t.Helper()
	for range 100 {
		if k.CoordinatorFor(group) != k.CoordinatorFor(txnID) {
			return
		}
		k.RehashCoordinators()
	}
	t.Fatal("group and transaction coordinators stay on one broker")
}

// txnIDOf is the transactional id of an instance with a stable id.
func txnIDOf(instanceID string) string { return orders.Group + "-" + instanceID }

// Row a: a committing EndTxn that fails (an error code, a dropped
// connection, no answer at all, or an answer lost after the broker
// committed) is never taken for a commit that did not happen, nor does a
// commit that did happen get its records processed again.
func TestFaultEndTxn(t *testing.T) {
	const instanceID = "orders-1"
	txnID := txnIDOf(instanceID)
	tests := []struct {
		name    string
		brokers int
		faults  int
		// install adds the fault; it calls f.fire() each time it fires.
		install func(t *testing.T, w *ordersWorld, f *firings)
		opts    []pipeline.Option
		// surfaced: the failure reaches the runner (outcome unknown
		// or failed), which must rebuild its session from the
		// committed state rather than go on.
		surfaced bool
		// aborted: the failed transaction's outputs were written and
		// then aborted, so the log holds more processed records than
		// read_committed shows: proof that the broker never committed
		// what the runner did not take for committed.
		aborted bool
	}{
		{
			// A retriable code that franz-go hands back for EndTxn
			// (it retries only coordinator errors there): the broker
			// did nothing, so a runner that took it for a commit
			// would lose the transaction's records.
			name: "retriable error reaches the runner", brokers: 1, faults: 3, surfaced: true, aborted: true,
			install: func(_ *testing.T, w *ordersWorld, f *firings) {
				failCommits(w.k, f, 3, kerr.RequestTimedOut)
			},
		},
		{
			// A retriable coordinator error, which franz-go retries
			// itself within the same End.
			name: "coordinator error retried by the client", brokers: 1, faults: 3,
			install: func(_ *testing.T, w *ordersWorld, f *firings) {
				failCommits(w.k, f, 3, kerr.CoordinatorNotAvailable)
			},
		},
		{
			// The connection drops before the broker acts; franz-go
			// retries on a new connection.
			name: "connection dropped, retried by the client", brokers: 1, faults: 3,
			install: func(_ *testing.T, w *ordersWorld, f *firings) {
				k := w.k
				k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
					if !req.(*kmsg.EndTxnRequest).Commit {
						return nil, nil, false
					}
					f.fire()
					if f.count() >= 3 {
						k.DropControl()
					} else {
						k.KeepControl()
					}
					return nil, errClosedByTest, true
				})
			},
		},
		{
			// No answer within the runner's close timeout: the
			// outcome is unknown. The request is then dropped
			// unprocessed once the runner's next session has
			// re-initialised the producer (which aborts the open
			// transaction).
			name: "no answer, connection dropped", brokers: 3, faults: 1, surfaced: true, aborted: true,
			opts: []pipeline.Option{pipeline.WithCloseTimeout(time.Second)},
			install: func(t *testing.T, w *ordersWorld, f *firings) {
				k := w.k
				separateCoordinators(t, k, orders.Group, txnID)
				_, reinit := initsOf(k, txnID, 2)
				quit := quitChan(t)
				var held atomic.Bool
				k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
					if !req.(*kmsg.EndTxnRequest).Commit || held.Load() {
						return nil, nil, false
					}
					held.Store(true)
					f.fire()
					k.SleepControl(func() {
						select {
						case <-reinit:
						case <-quit:
						}
					})
					return nil, errClosedByTest, true
				})
			},
		},
		{
			// The broker commits, but the answer is an error: the
			// client cannot know it committed. Its records must not
			// be processed again.
			name: "committed, answer lost", brokers: 1, faults: 2, surfaced: true,
			install: func(t *testing.T, w *ordersWorld, f *firings) {
				commitThenFail(t, w, f, 2)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newOrdersWorld(t, sim.Brokers(tt.brokers))
			f := newFirings(tt.faults)
			tt.install(t, w, f)
			in := w.start(append([]pipeline.Option{pipeline.WithInstanceID(instanceID)}, tt.opts...)...)

			// One chunk per firing, so that a fault that commits
			// (committed, answer lost) has records for its next
			// firing, then the rest.
			recs := orderWorkload(1, faultOrders)
			chunk := len(recs) / (tt.faults + 1)
			for i := range tt.faults {
				w.produce(recs[i*chunk : (i+1)*chunk])
				f.await(t, tt.name)
			}
			w.produce(recs[tt.faults*chunk:])
			w.waitCaughtUp()
			stats := in.Runner.Stats()
			if err := in.Stop(); err != nil {
				t.Fatal(err)
			}
			if got := f.count(); got != tt.faults {
				t.Errorf("fault fired %d times, want %d", got, tt.faults)
			}
			t.Logf("runner: %d commits, %d aborts, %d session restarts", stats.Commits, stats.Aborts, stats.SessionRestarts)
			if tt.surfaced && stats.SessionRestarts == 0 {
				t.Error("the failed commit reached the runner, yet it never rebuilt its session")
			}
			rep := w.requireExactlyOnce()
			if tt.aborted {
				all := kafkatest.ReadToEndAt(context.Background(), t, w.cluster.ClientOpts(), kgo.ReadUncommitted(), orders.TopicProcessed)
				if len(all) <= rep.Outputs {
					t.Errorf("the log holds %d processed records, aborted ones included, no more than the %d committed: the failed transaction wrote nothing", len(all), rep.Outputs)
				}
			}
		})
	}
}

// failCommits answers the first n committing EndTxn requests with code,
// without the broker acting on them.
func failCommits(k *kfake.Cluster, f *firings, n int, code *kerr.Error) {
	k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit {
			return nil, nil, false
		}
		f.fire()
		if f.count() >= n {
			k.DropControl()
		} else {
			k.KeepControl()
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code.Code
		return resp, nil, true
	})
}

// commitThenFail makes the first n committing EndTxn requests commit on the
// broker, then answers them REQUEST_TIMED_OUT. The commit is done by a
// second client sending the same EndTxn while the original is parked: a
// control runs before the broker acts and cannot act after it.
func commitThenFail(t *testing.T, w *ordersWorld, f *firings, n int) {
	k := w.k
	side := w.client()
	var behind atomic.Bool // the side client's EndTxn is in flight
	var failures atomic.Int32
	t.Cleanup(func() {
		if n := failures.Load(); n > 0 {
			t.Errorf("the side commit failed %d times", n)
		}
	})
	k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit || behind.Load() {
			return nil, nil, false
		}
		if f.count() >= n {
			k.DropControl()
			return nil, nil, false
		}
		k.KeepControl()
		var err error
		k.SleepControl(func() {
			behind.Store(true)
			defer behind.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			same := kmsg.NewPtrEndTxnRequest()
			same.TransactionalID, same.ProducerID, same.ProducerEpoch, same.Commit = r.TransactionalID, r.ProducerID, r.ProducerEpoch, true
			var resp *kmsg.EndTxnResponse
			if resp, err = same.RequestWith(ctx, side); err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
		})
		if err != nil {
			failures.Add(1)
			return nil, nil, false
		}
		f.fire()
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.RequestTimedOut.Code
		return resp, nil, true
	})
}

// Row b: every partition leader moves to another broker, the group and
// transaction coordinators move, and then a broker that leads partitions is
// removed, all while orders flow: processing resumes after each, and
// nothing is lost or repeated.
//
// kfake keeps no leader-epoch cache: it answers OffsetForLeaderEpoch from
// the epochs of the batches in the log. Right after a leader change, before
// anything is written at the new epoch, it answers a consumer validating its
// position at the old epoch with UNDEFINED_EPOCH (-1, -1) instead of the old
// epoch's end (a real broker records the new epoch's start offset at the
// election). franz-go then reports ErrDataLoss and resets the partition to
// ConsumeResetOffset, the start of the log: every record is consumed again.
// That is the fixture's fault, not the runner's, so the test holds the
// runner's OffsetForLeaderEpoch requests (epochGate) until every input
// partition has a batch at its new epoch, which makes kfake's answer the
// one a real broker gives.
func TestFaultLeaderAndCoordinatorMoves(t *testing.T) {
	const instanceID = "orders-1"
	w := newOrdersWorld(t, sim.Brokers(3))
	k := w.k
	gate := newEpochGate(t, k)
	in := w.start(pipeline.WithInstanceID(instanceID))
	recs := orderWorkload(2, faultOrders)
	third := len(recs) / 3
	topics := []string{orders.TopicSubmitted, orders.TopicProcessed, orders.TopicErrors}
	brokers := []int32{0, 1, 2}

	w.produce(recs[:third])
	w.waitCommitted(int64(third)/2, "progress before the moves")

	// Leaders and coordinators move while the runner is mid-stream; the
	// next third is written at the new epochs.
	gate.close()
	moved := 0
	for _, topic := range topics {
		for p := range int32(testPartitions) {
			from := k.LeaderFor(topic, p)
			to := brokers[(slices.Index(brokers, from)+1)%len(brokers)]
			if err := k.MoveTopicPartition(topic, p, to); err != nil {
				t.Fatal(err)
			}
			if got := k.LeaderFor(topic, p); got != to {
				t.Fatalf("%s/%d: leader %d after moving it from %d to %d", topic, p, got, from, to)
			}
			moved++
		}
	}
	groupCoord, txnCoord := k.CoordinatorFor(orders.Group), k.CoordinatorFor(txnIDOf(instanceID))
	rehashes := 0
	for ; rehashes < 100; rehashes++ {
		if k.CoordinatorFor(orders.Group) != groupCoord && k.CoordinatorFor(txnIDOf(instanceID)) != txnCoord {
			break
		}
		k.RehashCoordinators()
	}
	if k.CoordinatorFor(orders.Group) == groupCoord || k.CoordinatorFor(txnIDOf(instanceID)) == txnCoord {
		t.Fatalf("coordinators did not move in %d rehashes", rehashes)
	}
	t.Logf("moved %d partition leaders; group coordinator %d -> %d, transaction coordinator %d -> %d (%d rehashes)",
		moved, groupCoord, k.CoordinatorFor(orders.Group), txnCoord, k.CoordinatorFor(txnIDOf(instanceID)), rehashes)
	w.produceAtNewEpochs(recs[third : 2*third])
	gate.open()
	w.waitCommitted(int64(2*third), "progress after the moves")

	// Remove the broker leading the most partitions; kfake re-elects a
	// leader for every partition among the others.
	led := map[int32]int{}
	for _, topic := range topics {
		for p := range int32(testPartitions) {
			led[k.LeaderFor(topic, p)]++
		}
	}
	victim := brokers[0]
	for _, b := range brokers {
		if led[b] > led[victim] {
			victim = b
		}
	}
	if led[victim] == 0 {
		t.Fatal("no broker leads a partition")
	}
	gate.close()
	if err := k.RemoveNode(victim); err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		for p := range int32(testPartitions) {
			if l := k.LeaderFor(topic, p); l == victim || l < 0 {
				t.Fatalf("%s/%d still led by %d after removing broker %d", topic, p, l, victim)
			}
		}
	}
	t.Logf("removed broker %d, which led %d partitions", victim, led[victim])
	w.produceAtNewEpochs(recs[2*third:])
	gate.open()
	w.waitCaughtUp()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := gate.held.Load(); n == 0 {
		t.Log("no OffsetForLeaderEpoch request was held: the runner validated no position across the moves")
	} else {
		t.Logf("%d OffsetForLeaderEpoch requests held until the new epochs had batches", n)
	}
	w.requireExactlyOnce()
}

// produceAtNewEpochs produces recs and fails unless every input partition
// received some: each then has a batch at its current leader epoch.
func (w *ordersWorld) produceAtNewEpochs(recs []*kgo.Record) {
	w.t.Helper()
	before := map[int32]int64{}
	for _, pi := range w.k.PartitionInfos(orders.TopicSubmitted) {
		before[pi.Partition] = pi.HighWatermark
	}
	w.produce(recs)
	for _, pi := range w.k.PartitionInfos(orders.TopicSubmitted) {
		if pi.HighWatermark == before[pi.Partition] {
			w.t.Fatalf("partition %d received none of %d orders: it has no batch at epoch %d", pi.Partition, len(recs), pi.Epoch)
		}
	}
}

// epochGate parks OffsetForLeaderEpoch requests while closed: see
// TestFaultLeaderAndCoordinatorMoves.
type epochGate struct {
	mu     sync.Mutex
	opened chan struct{} // nil while open
	held   atomic.Int64
}

func newEpochGate(t *testing.T, k *kfake.Cluster) *epochGate {
	g := &epochGate{}
	quit := quitChan(t)
	k.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(kmsg.Request) (kmsg.Response, error, bool) {
		g.mu.Lock()
		opened := g.opened
		g.mu.Unlock()
		if opened != nil {
			g.held.Add(1)
			k.SleepControl(func() {
				select {
				case <-opened:
				case <-quit:
				}
			})
		}
		return nil, nil, false
	})
	t.Cleanup(g.open)
	return g
}

func (g *epochGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened == nil {
		g.opened = make(chan struct{})
	}
}

func (g *epochGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened != nil {
		close(g.opened)
		g.opened = nil
	}
}

// Row c: a transaction outlives the transaction timeout (its committing
// EndTxn is held until the broker has aborted it and bumped the epoch).
// The late commit is refused, the runner re-initialises its producer, and
// the aborted records are processed once, by a later transaction.
func TestFaultTransactionTimeout(t *testing.T) {
	const instanceID = "orders-1"
	txnID := txnIDOf(instanceID)
	w := newOrdersWorld(t, sim.Brokers(3))
	k := w.k
	separateCoordinators(t, k, orders.Group, txnID)
	inits, _ := initsOf(k, txnID, 0)
	quit := quitChan(t)
	f := newFirings(1)
	timedOut := make(chan struct{})
	side := kadm.NewClient(w.client())
	var held atomic.Bool
	k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit || held.Load() {
			return nil, nil, false
		}
		held.Store(true)
		k.DropControl()
		f.fire()
		// Park the commit until the broker reports the transaction
		// aborted at a later epoch: its timeout fired.
		k.SleepControl(func() {
			if txnTimedOut(side, txnID, r.ProducerEpoch, quit) {
				close(timedOut)
			}
		})
		return nil, nil, false // now let the broker answer the stale commit
	})
	in := w.start(pipeline.WithInstanceID(instanceID), pipeline.WithTransactionTimeout(time.Second))
	recs := orderWorkload(3, faultOrders)
	half := len(recs) / 2
	w.produce(recs[:half])
	f.await(t, "held commit")
	select {
	case <-timedOut:
	case <-time.After(faultWait):
		t.Fatal("the held transaction never timed out on the broker")
	}
	w.produce(recs[half:])
	w.waitCaughtUp()
	stats := in.Runner.Stats()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("InitProducerID requests for the instance: %d; runner: %d commits, %d aborts, %d session restarts",
		inits.Load(), stats.Commits, stats.Aborts, stats.SessionRestarts)
	if inits.Load() < 2 {
		t.Errorf("%d InitProducerID requests for %s: the producer was never re-initialised after the timeout", inits.Load(), txnID)
	}
	w.requireExactlyOnce()
}

// txnTimedOut polls the broker until txnID's transaction is no longer
// ongoing and its epoch has moved past epoch (the timeout's abort bumps
// it), for at most faultWait. It runs inside a parked control, so it
// reports rather than failing the test.
func txnTimedOut(adm *kadm.Client, txnID string, epoch int16, quit <-chan struct{}) bool {
	deadline := time.Now().Add(faultWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ds, err := adm.DescribeTransactions(ctx, txnID)
		cancel()
		if d, ok := ds[txnID]; err == nil && ok && d.Err == nil && d.State != "Ongoing" && d.ProducerEpoch > epoch {
			return true
		}
		select {
		case <-tick.C:
		case <-quit:
			return false
		}
	}
	return false
}

// Row d: a slow downstream (the runner's produce requests held for longer,
// in all, than the session timeout) slows the pipeline but costs it neither
// its group membership nor a record, and the lag recovers.
func TestFaultSlowDownstream(t *testing.T) {
	const (
		slowed = 4
		delay  = 800 * time.Millisecond
	)
	w := newOrdersWorld(t)
	k := w.k
	joins := countRequests(k, kmsg.JoinGroup)
	quit := quitChan(t)
	f := newFirings(slowed)
	var armed atomic.Bool
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		if !armed.Load() || r.TransactionID == nil {
			return nil, nil, false
		}
		if f.count() >= slowed {
			k.DropControl()
			return nil, nil, false
		}
		f.fire()
		k.SleepControl(func() {
			select {
			case <-time.After(delay): // the fault: a slow broker
			case <-quit:
			}
		})
		return nil, nil, false
	})

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in := w.start()
	recs := orderWorkload(4, faultOrders)
	w.produce(recs[:500])
	w.waitCaughtUp()
	gi := k.GroupInfo(orders.Group)
	if gi == nil || gi.State != "Stable" || len(gi.Members) != 1 {
		t.Fatalf("group not stable with one member before the fault: %+v", gi)
	}
	member, generation, joinsBefore := gi.Members[0].MemberID, gi.Epoch, joins.Load()

	// One chunk per slowed request: the runner produces each chunk's
	// outputs in a later transaction, so every chunk meets a slow broker.
	armed.Store(true)
	start := time.Now()
	var peakHeap uint64
	var peakLag int64
	sample := func() int64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peakHeap = max(peakHeap, m.HeapAlloc)
		lag := int64(w.produced) - w.committed()
		peakLag = max(peakLag, lag)
		return lag
	}
	rest := recs[500:]
	chunk := len(rest) / slowed
	for i := range slowed {
		end := (i + 1) * chunk
		if i == slowed-1 {
			end = len(rest)
		}
		w.produce(rest[i*chunk : end])
		sample()
		f.await(t, "slow produce")
		sample()
	}
	kafkatest.Eventually(t, faultWait, "lag recovered", func() bool { return sample() == 0 })
	recovered := time.Since(start)
	if got := f.count(); got != slowed {
		t.Errorf("%d produce requests slowed, want %d", got, slowed)
	}
	gi = k.GroupInfo(orders.Group)
	switch {
	case joins.Load() != joinsBefore:
		t.Errorf("%d JoinGroup requests during the slowdown: the group rebalanced", joins.Load()-joinsBefore)
	case gi == nil || len(gi.Members) != 1 || gi.Members[0].MemberID != member || gi.Epoch != generation:
		t.Errorf("membership changed during the slowdown: before member %s generation %d, after %+v", member, generation, gi)
	case gi.Members[0].NumAssigned() != testPartitions:
		t.Errorf("the instance holds %d partitions after the slowdown, want %d", gi.Members[0].NumAssigned(), testPartitions)
	}
	stats := in.Runner.Stats()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d produce requests slowed by %v: peak lag %d orders, recovered in %v; heap before %d KiB, peak %d KiB, after %d KiB; runner: %d commits, %d aborts, %d session restarts",
		slowed, delay, peakLag, recovered.Round(time.Millisecond), before.HeapAlloc>>10, peakHeap>>10, after.HeapAlloc>>10,
		stats.Commits, stats.Aborts, stats.SessionRestarts)
	if peakLag == 0 {
		t.Error("no lag was ever seen: the downstream was not slow")
	}
	w.requireExactlyOnce()
}

// Row e: SIGTERM (main cancels Run's context) while orders flow: Run
// returns within a bound, leaves no transaction open, and a new instance
// (a new process, so a new transactional id) finishes the work exactly
// once.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	const (
		total    = faultOrders + 1000
		rate     = 2500 // orders/s: the feed lasts about 1.6 s
		shutdown = 10 * time.Second
	)
	w := newOrdersWorld(t)
	k := w.k
	leaves := countRequests(k, kmsg.LeaveGroup)
	first := w.start()
	kafkatest.Eventually(t, faultWait, "group stable", func() bool {
		gi := k.GroupInfo(orders.Group)
		return gi != nil && gi.State == "Stable" && gi.NumAssigned() == testPartitions
	})

	recs := orderWorkload(5, total)
	var handed atomic.Int64
	fed := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fed <- sim.Feed(ctx, w.prod, func() *kgo.Record {
			i := handed.Load()
			if i >= int64(len(recs)) {
				return nil
			}
			handed.Add(1)
			return recs[i]
		}, rate, len(recs))
	}()
	t.Cleanup(wg.Wait)

	w.waitCommitted(500, "progress before SIGTERM")
	handedAtSignal := handed.Load()
	lagAtSignal := handedAtSignal - w.committed()
	feeding := handedAtSignal < int64(len(recs))
	signalled := time.Now()
	// What signal.NotifyContext does on SIGTERM: cancel Run's context.
	stopped := make(chan error, 1)
	go func() { stopped <- first.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(shutdown):
		t.Fatalf("Run did not return within %v of SIGTERM", shutdown)
	}
	took := time.Since(signalled)
	// Under load: orders were still being produced when the signal came
	// (the lag at that instant is logged, not asserted: a sample taken just
	// after a commit may legitimately see none).
	if !feeding {
		t.Fatalf("not under load at SIGTERM: all %d orders were already produced", len(recs))
	}
	if leaves.Load() == 0 {
		t.Error("the stopped instance never left the group")
	}
	lctx, lcancel := context.WithTimeout(context.Background(), faultWait)
	open, err := w.adm.ListTransactions(lctx, nil, []string{"Ongoing"})
	lcancel()
	if err != nil {
		t.Fatal(err)
	}
	for id := range open {
		t.Errorf("transaction %s left open by the stopped instance", id)
	}

	second := w.start()
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	w.produced = len(recs)
	w.waitCaughtUp()
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM with %d orders in flight (%d of %d handed to the producer): Run returned in %v",
		lagAtSignal, handedAtSignal, len(recs), took.Round(time.Millisecond))
	w.requireExactlyOnce()
}
