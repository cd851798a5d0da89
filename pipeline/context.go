package pipeline

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Context is what a [ProcessFunc] sees of the runtime for one record: its
// task's state, the global tables, the clock, and the way out (Emit). One
// Context per task is reused for every record; do not keep it.
type Context struct {
	t *task
}

// Now is the injected clock's time. Processors never read the wall clock.
func (c *Context) Now() time.Time { return c.t.r.clock.Now() }

// Partition is the partition number of the task processing the record; state
// in c.Store is this partition's.
func (c *Context) Partition() int32 { return c.t.partition }

// Store returns this task's partition of the named store. It panics if the
// Spec does not declare the store: that is a programming error, not a record
// error.
func (c *Context) Store(name string) *Store { return c.t.store(name) }

// Global returns the global table of topic, or nil if the Spec has none.
func (c *Context) Global(topic string) *GlobalTable { return c.t.r.globals[topic] }

// Emit produces r inside the current transaction. r.Topic must be one of the
// Spec's Outputs. The runtime owns r from now on. Records emitted by a call
// that then fails are discarded.
func (c *Context) Emit(r *kgo.Record) { c.t.emit(r) }

// IsLocal reports whether key's state lives in this task's partition, i.e.
// whether a record keyed by key would be partitioned here by the default
// (murmur2) partitioner. A record whose key is not its state key, or that
// an upstream producer partitioned differently, is not local and must be
// re-keyed with Repartition before it touches state.
func (c *Context) IsLocal(key []byte) bool {
	return c.t.isLocal(key)
}

// Repartition re-sends the record being processed (value and headers as
// received, plus extra headers) under key to the named repartition topic of
// the Spec, inside the current transaction. It comes back to Process from
// that topic, on the partition that owns key. Processors add in extra what
// they derived from the original coordinates (a correlation id), since the
// re-sent record has new ones.
func (c *Context) Repartition(name string, key []byte, extra ...kgo.RecordHeader) {
	c.t.repartition(name, key, extra)
}
