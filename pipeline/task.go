package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A task owns partition p of every consumed topic and of every state store.
// One goroutine processes its queue in order; the poll loop (the runner's
// only other writer) enqueues fetched batches and waits at each commit until
// every batch it enqueued has been processed.
//
// Lock order: runner.mu, then task.mu. task.mu only guards the queue's
// open/closed switch so that stop can drain it without racing a sender.
type task struct {
	r         *Runner
	partition int32
	stores    []*Store
	ctx       Context

	in     chan []*kgo.Record
	stopCh chan struct{} // closed to stop the goroutine
	exited chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool

	restored bool
	current  *kgo.Record          // the record being processed
	kp       kgo.TopicPartitioner // the default key partitioner, goroutine-confined
	keyRec   kgo.Record           // scratch record for kp
	pending  []*kgo.Record        // emits of the record being processed
	marks    []int                // store savepoints of the record being processed
}

func newTask(r *Runner, partition int32) *task {
	t := newIdleTask(r, partition)
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(ctx)
	return t
}

// newIdleTask builds a task and its stores without its goroutine: newTask
// starts one, and a [Harness] calls the task itself.
func newIdleTask(r *Runner, partition int32) *task {
	t := &task{
		r:         r,
		partition: partition,
		in:        make(chan []*kgo.Record, r.cfg.queueBatches),
		stopCh:    make(chan struct{}),
		exited:    make(chan struct{}),
		kp:        kgo.StickyKeyPartitioner(nil).ForTopic(""),
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

// enqueue hands a batch to the task, blocking while its queue is full. It
// reports false, having counted nothing, if the task is stopped.
func (t *task) enqueue(batch []*kgo.Record) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.r.inflight.Add(1)
	select {
	case t.in <- batch:
		return true
	case <-t.exited:
		t.r.inflight.Done()
		return false
	}
}

// stop ends the task and waits for its goroutine. Batches still queued are
// dropped (and released from the commit barrier): they belong to a
// transaction that cannot commit, because a task stops only when its
// partitions are revoked or lost, or the session is torn down.
func (t *task) stop() {
	close(t.stopCh)
	t.cancel()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	<-t.exited
	for {
		select {
		case <-t.in:
			t.r.inflight.Done()
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
	for {
		select {
		case <-t.stopCh:
			return
		case batch := <-t.in:
			t.processBatch(ctx, batch)
			t.r.inflight.Done()
		}
	}
}

func (t *task) processBatch(ctx context.Context, batch []*kgo.Record) {
	if batch == nil {
		t.punctuate(ctx)
		return
	}
	if !t.restored {
		// State is restored lazily, on the first batch, because only
		// then are the group's committed offsets known to be stable: a
		// transaction of a previous owner that wrote this changelog is
		// resolved before the group hands out its offsets.
		if err := t.restore(ctx); err != nil {
			if !t.stopping() {
				t.r.fail(fmt.Errorf("restoring state of partition %d: %w", t.partition, err))
			}
			return
		}
		t.restored = true
	}
	start := time.Now()
	n := 0
	for _, rec := range batch {
		if t.stopping() {
			return
		}
		t.processOne(rec)
		n++
	}
	if n > 0 {
		t.r.m.observeBatch(n, time.Since(start), batch[n-1])
	}
}

func (t *task) processOne(rec *kgo.Record) {
	t.current = rec
	if err := t.atomically(func() error { return t.call(rec) }); err != nil {
		t.sendError(rec, err)
	}
}

// atomically runs fn as one unit of the open transaction: what it emits is
// produced when it succeeds, and when it fails its state writes are rolled
// back and its emits dropped.
func (t *task) atomically(fn func() error) error {
	err := t.attempt(fn)
	if err == nil {
		for _, out := range t.pending {
			t.r.produce(out)
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
				err = Rejectf(ErrOversized, "output to %s of about %d bytes exceeds its max.message.bytes (%d)", out.Topic, size, limit)
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

// punctuate runs the Spec's Punctuate on the task's state; see
// [PunctuateFunc] for when a task that has had no batch restores first.
func (t *task) punctuate(ctx context.Context) {
	if !t.restored {
		stable, err := t.changelogsStable(ctx)
		if err != nil || !stable {
			if err != nil && !t.stopping() {
				t.r.errLog.warn("checking changelogs before punctuating", "partition", t.partition, "error", err)
			}
			return
		}
		if err := t.restore(ctx); err != nil {
			if !t.stopping() {
				t.r.fail(fmt.Errorf("restoring state of partition %d: %w", t.partition, err))
			}
			return
		}
		t.restored = true
	}
	t.current = nil
	if err := t.atomically(t.callPunctuate); err != nil {
		t.r.errLog.warn("punctuation failed; its writes are discarded", "partition", t.partition, "error_type", string(errorTypeOf(err)))
	}
}

func (t *task) callPunctuate() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Rejectf(ErrPanic, "punctuation panicked (%T)", p)
		}
	}()
	return t.r.spec.Punctuate(&t.ctx)
}

// changelogsStable reports whether none of the task's changelog partitions
// has an open transaction (its last stable offset is its end): only then
// is restoring them, ahead of any batch, sure to see everything a previous
// owner will have committed.
func (t *task) changelogsStable(ctx context.Context) (bool, error) {
	for _, s := range t.stores {
		topic := ChangelogTopic(t.r.spec.Group, s.name)
		lso, err := t.r.adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			return false, err
		}
		end, err := t.r.adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = end.Error()
		}
		if err != nil {
			return false, err
		}
		l, _ := lso.Lookup(topic, t.partition)
		e, _ := end.Lookup(topic, t.partition)
		if l.Offset != e.Offset {
			return false, nil
		}
	}
	return true, nil
}

// call runs the processor, turning a panic into a record error.
func (t *task) call(rec *kgo.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// The panic value may quote the record: keep only its type.
			err = Rejectf(ErrPanic, "processor panicked (%T)", p)
		}
	}()
	return t.r.spec.Process(&t.ctx, rec)
}

func (t *task) emit(r *kgo.Record) {
	if _, ok := t.r.outputs[r.Topic]; !ok {
		panic(fmt.Sprintf("pipeline %s: emit to undeclared topic %q", t.r.spec.Name, r.Topic))
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

// sendError writes rec whole to the error topic, with the error's class and
// message and rec's coordinates as headers.
func (t *task) sendError(rec *kgo.Record, err error) {
	typ := errorTypeOf(err)
	t.r.m.errorCounter(typ).Inc()
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+5)
	hs = append(hs, rec.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: "error-type", Value: []byte(typ)},
		kgo.RecordHeader{Key: "error-message", Value: []byte(err.Error())},
		kgo.RecordHeader{Key: "source-topic", Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: "source-partition", Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: "source-offset", Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	value := rec.Value
	if t.r.spec.ErrorValue != nil {
		value = t.r.spec.ErrorValue(rec, typ, err.Error(), t.r.clock.Now())
	}
	t.r.produce(&kgo.Record{
		Topic:     t.r.spec.ErrorTopic,
		Key:       rec.Key,
		Value:     value,
		Headers:   hs,
		Timestamp: rec.Timestamp,
	})
	t.r.errLog.warn("record sent to error topic",
		"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error_type", string(typ))
}

// isLocal reports whether the default partitioner puts key on this task's
// partition.
func (t *task) isLocal(key []byte) bool {
	t.keyRec.Key = key
	return int32(t.kp.Partition(&t.keyRec, int(t.r.numPartitions.Load()))) == t.partition
}

// restore loads every store's partition from its changelog, read_committed,
// up to the last stable offset.
func (t *task) restore(ctx context.Context) error {
	for _, s := range t.stores {
		topic := ChangelogTopic(t.r.spec.Group, s.name)
		targets, err := catchUpTargets(ctx, t.r.adm, topic, []int32{t.partition})
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			continue
		}
		cl, err := kgo.NewClient(append(t.r.clientOpts(),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.partition: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			return err
		}
		n := 0
		err = catchUp(ctx, cl, topic, targets, func(r *kgo.Record) {
			s.restore(string(r.Key), r.Value)
			n++
		})
		cl.Close()
		if err != nil {
			return err
		}
		t.r.log.Info("state restored", "store", s.name,
			"partition", t.partition, "records", n, "keys", s.Len())
	}
	return nil
}
