package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A task owns partition p of every consumed topic and of every state store.
//
// A task lives as long as the instance may be given its partition again:
// its stores outlast a rebalance and a rebuilt session, so that a
// partition that comes back is checked against its changelog instead of
// restored from zero. What runs is an activation: one goroutine that first
// prepares the stores (restores them, or checks that nothing was
// committed since they were last current), outside any transaction, and
// then processes the task's queue in order. The poll loop (the runner's
// only other writer) enqueues fetched batches and waits at each commit
// until every batch it enqueued has been processed. halt ends an
// activation; only the poll loop starts one, and only after the
// transaction open when the partition was taken away has ended, so that
// the stores hold committed state when the next activation reads them.
//
// Lock order: runner.mu, then task.mu. task.mu guards the queue's
// open/closed switch, so that halt can drain it without racing a sender,
// and the fetch resume at the end of a preparation, so that a halted
// activation never resumes a partition that was paused again after it.
type task struct {
	r         *Runner
	partition int32
	stores    []*Store
	ctx       Context

	// One activation's channels; replaced by activate, under runner.mu.
	in     chan []*kgo.Record
	stopCh chan struct{} // closed to stop the goroutine
	exited chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc
	s      *session    // the activation's session
	cl     *kgo.Client // the session's client, to resume fetching
	// running is whether an activation runs; guarded by runner.mu.
	running bool

	mu     sync.Mutex
	closed bool

	// ready is set once the activation's stores are prepared: the task
	// then takes batches and punctuations, and answers queries.
	ready atomic.Bool
	// preparing is set while an activation prepares; whoever clears it
	// (the preparation, or halt) takes the task off the restoring count.
	preparing atomic.Bool
	// confirmedAt is when the stores were last known current for an
	// owner (a preparation, or a commit while ready), in Unix nanoseconds.
	confirmedAt atomic.Int64

	current *kgo.Record          // the record being processed
	kp      kgo.TopicPartitioner // the default key partitioner, goroutine-confined
	keyRec  kgo.Record           // scratch record for kp
	pending []*kgo.Record        // emits of the record being processed
	marks   []int                // store savepoints of the record being processed
	carry   []kgo.RecordHeader   // headers its emits carry (carry.go)
}

// newTask builds a halted task and its empty stores: activate starts it,
// and a [Harness] calls the task itself.
func newTask(r *Runner, partition int32) *task {
	t := &task{
		r:         r,
		partition: partition,
		kp:        kgo.StickyKeyPartitioner(nil).ForTopic(""),
		closed:    true,
	}
	t.ctx.t = t
	for _, name := range r.spec.Stores {
		t.stores = append(t.stores, newStore(name))
	}
	t.marks = make([]int, len(t.stores))
	return t
}

func (t *task) store(name string) *Store {
	for _, s := range t.stores {
		if s.name == name {
			return s
		}
	}
	panic(fmt.Sprintf("pipeline %s: store %q is not declared in the Spec", t.r.spec.Name, name))
}

// activate starts an activation in session s: prepare, then process. The
// caller holds runner.mu and the task is halted.
func (t *task) activate(s *session) {
	t.in = make(chan []*kgo.Record, t.r.cfg.queueBatches)
	t.stopCh = make(chan struct{})
	t.exited = make(chan struct{})
	t.s = s
	t.cl = s.gts.Client()
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.ready.Store(false)
	t.preparing.Store(true)
	t.r.restoring.Add(1)
	t.running = true
	t.mu.Lock()
	t.closed = false
	t.mu.Unlock()
	go t.run(ctx)
}

// enqueue hands a batch to the task, blocking while its queue is full. It
// reports false, having counted nothing, if the task is halted.
func (t *task) enqueue(batch []*kgo.Record) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.s.inflight.Add(1)
	select {
	case t.in <- batch:
		return true
	case <-t.exited:
		t.s.inflight.Done()
		return false
	}
}

// halt ends the running activation, if any, and waits for its goroutine.
// The caller holds runner.mu, which serialises halts and activations.
// Batches still queued are dropped (and released from the commit
// barrier): they belong to a transaction that cannot commit, because a
// task halts only when its partition is revoked, lost or assigned anew, or
// the session ends. The stores stay, with whatever the open transaction
// wrote: the poll loop's end of that transaction rolls it back.
func (t *task) halt() {
	if !t.running {
		return
	}
	t.running = false
	// Stop the goroutine first: a sender blocked on a full queue holds
	// t.mu until the goroutine takes its batch or exits.
	close(t.stopCh)
	t.cancel()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	<-t.exited
	t.ready.Store(false)
	if t.preparing.CompareAndSwap(true, false) {
		t.r.restoring.Add(-1)
	}
	for {
		select {
		case <-t.in:
			t.s.inflight.Done()
		default:
			return
		}
	}
}

func (t *task) stopping() bool {
	select {
	case <-t.stopCh:
		return true
	default:
		return false
	}
}

func (t *task) run(ctx context.Context) {
	defer close(t.exited)
	if err := t.prepare(ctx); err != nil {
		if !t.stopping() {
			t.s.fail(fmt.Errorf("preparing the state of partition %d: %w", t.partition, err))
		}
		return
	}
	t.ready.Store(true)
	if t.preparing.CompareAndSwap(true, false) {
		t.r.restoring.Add(-1)
	}
	// Fetching resumes only now: no record of the partition reaches a
	// transaction before its state is in place.
	t.mu.Lock()
	if !t.closed {
		t.cl.ResumeFetchPartitions(t.r.consumedPartition(t.partition))
	}
	t.mu.Unlock()
	for {
		select {
		case <-t.stopCh:
			return
		case batch := <-t.in:
			t.processBatch(batch)
			t.s.inflight.Done()
		}
	}
}

func (t *task) processBatch(batch []*kgo.Record) {
	if batch == nil {
		t.punctuate()
		return
	}
	start := time.Now()
	n := 0
	for _, rec := range batch {
		if t.stopping() {
			return
		}
		n++
		if !t.processOne(rec) {
			break
		}
	}
	if n > 0 {
		t.r.m.observeBatch(n, time.Since(start), batch[n-1])
	}
}

// processOne processes rec, and reports whether the task may go on with the
// batch: not after a transient failure, which ends the session.
func (t *task) processOne(rec *kgo.Record) bool {
	t.beginInput(rec)
	err := t.atomically(func() error { return t.call(rec) })
	var transient *TransientError
	switch {
	case err == nil:
	case errors.As(err, &transient):
		t.r.log.Warn("transient failure; the transaction aborts and the session restarts from the committed offsets",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		t.s.fail(err)
		return false
	default:
		t.sendError(rec, err)
	}
	return true
}

// atomically runs fn as one unit of the open transaction: what it emits is
// produced when it succeeds, and when it fails its state writes are rolled
// back and its emits dropped.
func (t *task) atomically(fn func() error) error {
	err := t.attempt(fn)
	if err == nil {
		for _, out := range t.pending {
			t.s.produce(out)
		}
		t.r.m.recordsOut.Add(len(t.pending))
	}
	clear(t.pending)
	t.pending = t.pending[:0]
	return err
}

// attempt runs fn between store savepoints and leaves what it emitted in
// t.pending. When fn fails, or an emit could never be produced, its state
// writes are rolled back and the error returned; t.pending is then the
// caller's to drop.
func (t *task) attempt(fn func() error) error {
	for i, s := range t.stores {
		t.marks[i] = s.mark()
	}
	t.pending = t.pending[:0]
	err := fn()
	if err == nil {
		for _, out := range t.pending {
			if size, limit, over := t.r.tooLarge(out); over {
				err = Rejectf(TypeOversized, "output to %s of about %d bytes exceeds its max.message.bytes (%d)", out.Topic, size, limit)
				break
			}
		}
	}
	if err != nil {
		for i, s := range t.stores {
			s.rollbackTo(t.marks[i])
		}
	}
	return err
}

// punctuate runs the Spec's Punctuate on the task's state.
func (t *task) punctuate() {
	t.begin(nil)
	if err := t.atomically(t.callPunctuate); err != nil {
		t.r.errLog.warn("punctuation failed; its writes are discarded", "partition", t.partition, "error_type", string(errorTypeOf(err)))
	}
}

func (t *task) callPunctuate() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Rejectf(TypePanic, "punctuation panicked (%T)", p)
		}
	}()
	return t.r.spec.Punctuate(&t.ctx)
}

// call runs the processor, turning a panic into a record error.
func (t *task) call(rec *kgo.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// The panic value may quote the record: keep only its type.
			err = Rejectf(TypePanic, "processor panicked (%T)", p)
		}
	}()
	return t.r.spec.Process(&t.ctx, rec)
}

func (t *task) emit(r *kgo.Record) {
	if _, ok := t.r.outputs[r.Topic]; !ok {
		panic(fmt.Sprintf("pipeline %s: emit to undeclared topic %q", t.r.spec.Name, r.Topic))
	}
	if len(t.carry) > 0 {
		t.carryTo(r)
	}
	t.pending = append(t.pending, r)
}

func (t *task) repartition(name string, key []byte, extra []kgo.RecordHeader) {
	topic, ok := t.r.repartitions[name]
	if !ok {
		panic(fmt.Sprintf("pipeline %s: repartition %q is not declared in the Spec", t.r.spec.Name, name))
	}
	src := t.current
	if src == nil {
		panic(fmt.Sprintf("pipeline %s: Repartition called from Punctuate", t.r.spec.Name))
	}
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+len(extra))
	hs = append(hs, src.Headers...)
	hs = append(hs, extra...)
	t.pending = append(t.pending, &kgo.Record{
		Topic:     topic,
		Key:       key,
		Value:     src.Value,
		Headers:   hs,
		Timestamp: src.Timestamp,
	})
}

// sendError writes the error record of rec to the error topic: rec whole,
// with the error's class and message and rec's coordinates as headers, or,
// when that would not fit the error topic, truncated (see [TypeTruncated]).
// Either way it fits, so the transaction can commit and the partition moves
// on.
func (t *task) sendError(rec *kgo.Record, err error) {
	typ := errorTypeOf(err)
	t.r.m.errorCounter(typ).Inc()
	out, truncated := t.errorRecord(rec, typ, err.Error())
	t.s.produce(out)
	if truncated {
		t.r.m.truncatedErrors.Inc()
		t.r.errLog.warn("record sent to error topic truncated: its error record would exceed the error topic's limit",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error_type", string(typ),
			"value_bytes", len(rec.Value), "head_bytes", len(out.Value), "limit", t.r.errorLimit())
		return
	}
	if typ == TypeConflict {
		// A stale update is an expected outcome of conflict resolution,
		// kept on the error topic by contract and counted there: not a
		// warning (the demo made a run look like a failure of them).
		t.r.log.Debug("record sent to error topic",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error_type", string(typ))
		return
	}
	t.r.errLog.warn("record sent to error topic",
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error_type", string(typ))
}

// isLocal reports whether the default partitioner puts key on this task's
// partition.
func (t *task) isLocal(key []byte) bool {
	t.keyRec.Key = key
	return int32(t.kp.Partition(&t.keyRec, int(t.r.numPartitions.Load()))) == t.partition
}
