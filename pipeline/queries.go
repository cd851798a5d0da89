package pipeline

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
)

// AssignedPartitions is how many partitions the group has assigned this
// instance (of each consumed topic: they are co-partitioned).
func (r *Runner) AssignedPartitions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.assignedLocked())
}

// Lookup reads key from partition-local state held by this instance: the
// store partitions of the tasks it owns now, once prepared. It may see
// writes of the open transaction. found is false when the key is absent or
// its partition is not owned here.
func (r *Runner) Lookup(store, key string) (value []byte, found bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if !t.ready.Load() {
			continue
		}
		for _, s := range t.stores {
			if s.name == store {
				if v, ok := s.Get(key); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

// Scan calls fn for every key and value of store held by this instance (the
// partitions it owns now), until fn returns false. Like Lookup, it may see
// writes of the open transaction. Keys come partition by partition, sorted
// within each.
func (r *Runner) Scan(store string, fn func(key string, value []byte) bool) {
	// The stores are collected under the runner's lock and read without
	// it (each store takes its own read lock): a long scan must not hold
	// up assignments or commits.
	r.mu.Lock()
	parts := make([]int32, 0, len(r.tasks))
	for p, t := range r.tasks {
		if t.ready.Load() {
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var stores []*Store
	for _, p := range parts {
		for _, s := range r.tasks[p].stores {
			if s.name == store {
				stores = append(stores, s)
			}
		}
	}
	r.mu.Unlock()
	for _, s := range stores {
		for _, k := range s.Keys() {
			if v, ok := s.Get(k); ok && !fn(k, v) {
				return
			}
		}
	}
}

// Owner reports the partition that holds key's state, by the default
// partitioner; whether this instance owns it now (the group assigned it
// here); and whether its state is in place (prepared: queries answer from
// it). Before the first session has learned the partition count, partition
// is -1.
func (r *Runner) Owner(key string) (partition int32, owned, ready bool) {
	n := r.numPartitions.Load()
	if n <= 0 {
		return -1, false, false
	}
	rec := kgo.Record{Key: []byte(key)}
	partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&rec, int(n)))
	r.mu.Lock()
	defer r.mu.Unlock()
	_, owned = r.assignedLocked()[partition]
	t := r.tasks[partition]
	return partition, owned, owned && t != nil && t.ready.Load()
}

// Global returns the runner's global table for topic, or nil.
func (r *Runner) Global(topic string) *GlobalTable { return r.globals[topic] }
