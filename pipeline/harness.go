package pipeline

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Harness runs a Spec's Process and Punctuate on one partition without
// Kafka, the way Kafka Streams' TopologyTestDriver runs a topology: for
// unit tests and benchmarks of processors through their real ProcessFunc.
//
// What is real: the harness is a runtime task that no goroutine and no
// session drive, so a record goes through the same code as in a running
// pipeline. The Spec's Process (or Punctuate) runs on a [Context] with the
// partition's stores, behind the same per-call savepoints: a call that
// fails has its state writes rolled back and its emits dropped. Emit and
// Repartition check the Spec's Outputs and Repartitions as the runtime
// does (they panic, and the panic becomes the call's error). A panic is
// recovered into a [TypePanic] [RecordError], whose message names only
// the panic value's type. An emit too large to produce fails the call with
// [TypeOversized]. IsLocal and Partition follow [HarnessPartition], with the
// runtime's partitioner. The Spec is checked by [New] itself.
//
// What is not: there is no transaction, changelog, restore, error topic
// (a failed call returns its error instead; Spec.ErrorValue is not called)
// or metrics (the runtime's are not updated; a processor's own are its
// business). Each call's state writes are committed when it returns, as if
// the call were a transaction alone. Global tables start empty and hold
// what the caller puts in with [Harness.Apply]. Topic limits are not
// known: an emit is checked against the producer's cap (about 1 MB, the
// brokers' default max.message.bytes), which is what the runtime applies
// to a topic whose limit it cannot read or that allows more. A topic
// configured smaller refuses smaller records at run time than here.
//
// A Harness is not safe for concurrent use: like a task, it processes one
// record at a time.
type Harness struct {
	r *Runner
	t *task
	// consumed are the topics the runtime would hand to Process: the
	// Spec's inputs and repartition topics.
	consumed map[string]struct{}
}

// HarnessOption configures a [Harness]. Options are validated once, by
// [NewHarness].
type HarnessOption func(*harnessCfg)

type harnessCfg struct {
	clock      Clock
	partition  int32
	partitions int32
}

// HarnessClock injects the clock processors see through [Context.Now], as
// [WithClock] does for a Runner. Default: the system clock; tests that
// depend on time pass their own (sim.NewVirtualClock, or a fixed one).
func HarnessClock(c Clock) HarnessOption { return func(h *harnessCfg) { h.clock = c } }

// HarnessPartition makes the harness partition p of a pipeline whose
// topics have of partitions: [Context.Partition] returns p, and
// [Context.IsLocal] reports whether the default partitioner puts a key on
// p among of. Default: partition 0 of 1, where every key is local.
func HarnessPartition(p, of int32) HarnessOption {
	return func(h *harnessCfg) { h.partition, h.partitions = p, of }
}

// NewHarness builds a harness for spec. The spec is checked, and the
// runtime's view of it (declared outputs, repartition topics, stores,
// global tables) built, by the same [New] that builds a Runner.
func NewHarness(spec Spec, opts ...HarnessOption) (*Harness, error) {
	c := harnessCfg{clock: SystemClock{}, partition: 0, partitions: 1}
	for _, o := range opts {
		o(&c)
	}
	if c.partitions <= 0 || c.partition < 0 || c.partition >= c.partitions {
		return nil, fmt.Errorf("pipeline %s: harness partition %d of %d is not a partition", spec.Name, c.partition, c.partitions)
	}
	// A fixed instance id: the harness has no transactional producer, and
	// New would otherwise draw a random id for one.
	r, err := New(spec, WithClock(c.clock), WithInstanceID("harness"))
	if err != nil {
		return nil, err
	}
	r.numPartitions.Store(c.partitions)
	// A task that is never activated: nothing restores its stores, which
	// start empty, and the harness calls it itself.
	t := newTask(r, c.partition)
	t.ready.Store(true)
	h := &Harness{r: r, t: t, consumed: make(map[string]struct{})}
	for _, topic := range r.spec.consumedTopics() {
		h.consumed[topic] = struct{}{}
	}
	return h, nil
}

// Process runs the Spec's Process on r as the runtime does for one record
// of the harness's partition. r is passed as given: set its Partition,
// Offset and Timestamp as the broker would where the processor reads them
// (ids and correlation ids derived from coordinates do).
//
// On success the returned records are what the call emitted, outputs and
// repartition records alike, in order; they are what the runtime would
// produce, r's trace context carried to them included (a harness takes
// no [WithCarriedHeaders]: only traceparent and tracestate are carried).
// On error the call's state writes have been rolled back, nothing
// is returned, and the error is the one the runtime would send r to the
// error topic with: a [RecordError] for a rejection, a panic or an
// oversized emit, classified as the error-type header would be (errors.As
// to *RecordError, else [TypeProcessing]), and wrapping what the processor
// wrapped; or a [TransientError], on which the runtime sends nothing to the
// error topic but aborts the transaction and processes r again. A record
// on a topic the Spec does not consume (neither an input
// nor a repartition topic) is refused with an error that is none of these,
// and Process is not called.
//
// The returned slice is valid until the next call of Process or
// Punctuate, which reuses it.
func (h *Harness) Process(r *kgo.Record) ([]*kgo.Record, error) {
	if _, ok := h.consumed[r.Topic]; !ok {
		return nil, fmt.Errorf("pipeline %s: harness: topic %s is not consumed by the Spec", h.r.spec.Name, r.Topic)
	}
	t := h.t
	h.begin()
	t.begin(r)
	return h.end(t.attempt(func() error { return t.call(r) }))
}

// Punctuate runs the Spec's Punctuate once, as a runtime punctuation does,
// at the clock's time. Its results are as for [Harness.Process], except
// that the runtime logs a punctuation's error (and discards its writes and
// emits) where the harness returns it. It is an error if the Spec has no
// Punctuate.
func (h *Harness) Punctuate() ([]*kgo.Record, error) {
	if h.r.spec.Punctuate == nil {
		return nil, fmt.Errorf("pipeline %s: harness: the Spec has no Punctuate", h.r.spec.Name)
	}
	h.begin()
	h.t.begin(nil)
	return h.end(h.t.attempt(h.t.callPunctuate))
}

// begin drops the previous call's emits, which were the caller's until
// now.
func (h *Harness) begin() {
	clear(h.t.pending)
	h.t.pending = h.t.pending[:0]
}

// end commits what the call left in the stores (its writes, or none if it
// failed and was rolled back), so that the undo logs do not grow from call
// to call, and returns its emits.
func (h *Harness) end(err error) ([]*kgo.Record, error) {
	for _, s := range h.t.stores {
		s.commit()
	}
	if err != nil {
		h.begin()
		return nil, err
	}
	return h.t.pending, nil
}

// Apply puts one record of a global table's topic into the table through
// the table's Decode, as the runtime's restore and follow of the topic do:
// a nil value deletes key. A record that Decode refuses leaves the table
// as it was (the runtime counts and skips it); Apply returns that error,
// wrapped. It is an error if topic is not a global table of the Spec.
func (h *Harness) Apply(topic string, key, value []byte) error {
	g := h.r.globals[topic]
	if g == nil {
		return fmt.Errorf("pipeline %s: harness: %s is not a global table of the Spec", h.r.spec.Name, topic)
	}
	if err := g.apply(key, value); err != nil {
		return fmt.Errorf("pipeline %s: global table %s: record skipped: %w", h.r.spec.Name, topic, err)
	}
	return nil
}

// Store returns the harness's partition of the named store, for
// inspection. Like [Context.Store], it panics if the Spec does not
// declare the store. Writes through it are not rolled back by any call.
func (h *Harness) Store(name string) *Store { return h.t.store(name) }
