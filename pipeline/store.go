package pipeline

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Store is one partition of a keyed state store: an in-memory map made
// durable by a compacted changelog topic that the runner writes inside each
// transaction.
//
// Writes go straight into the map and leave an undo entry, so reads are one
// map lookup. The undo log rolls back one record's writes when its processing
// fails, or a whole transaction's when it aborts; a commit empties it. The
// keys written since the last commit are the changelog records of the next
// one (last write wins, so a key written N times costs one record).
//
// A Store is written only by its task's goroutine. Lookups from other
// goroutines (queries) take the read lock and may see writes of the open
// transaction.
type Store struct {
	name string

	mu   sync.RWMutex
	data map[string][]byte
	undo []undoEntry
	// dirty holds the keys written since the last commit, in first-write
	// order, so changelog records are produced deterministically.
	dirty    []string
	dirtySet map[string]struct{}

	// pos is the changelog offset up to which the map is known to hold
	// the partition's committed state (-1: not known): set by a restore,
	// and moved past the store's own writes when a transaction commits.
	// A task that comes back checks that nothing committed lies past it.
	pos atomic.Int64
	// txnHigh is the highest changelog offset written by the open
	// transaction (-1: none), from the produce promises.
	txnHigh atomic.Int64
}

type undoEntry struct {
	key     string
	prev    []byte
	existed bool
	// newDirty marks the write that made key dirty, so a rollback can
	// forget it.
	newDirty bool
}

func newStore(name string) *Store {
	s := &Store{name: name, data: make(map[string][]byte), dirtySet: make(map[string]struct{})}
	s.pos.Store(-1)
	s.txnHigh.Store(-1)
	return s
}

// Name is the store's name in its Spec.
func (s *Store) Name() string { return s.name }

// Get returns the value held for key.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.RLock()
	v, ok := s.data[key]
	s.mu.RUnlock()
	return v, ok
}

// Put sets key to value. The store keeps value: the caller must not modify it
// afterwards. A nil value is stored as an empty one; use Delete to remove.
func (s *Store) Put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	s.write(key, value, true)
}

// Delete removes key. The changelog records a tombstone.
func (s *Store) Delete(key string) { s.write(key, nil, false) }

func (s *Store) write(key string, value []byte, put bool) {
	s.mu.Lock()
	prev, existed := s.data[key]
	_, wasDirty := s.dirtySet[key]
	s.undo = append(s.undo, undoEntry{key: key, prev: prev, existed: existed, newDirty: !wasDirty})
	if !wasDirty {
		s.dirtySet[key] = struct{}{}
		s.dirty = append(s.dirty, key)
	}
	if put {
		s.data[key] = value
	} else {
		delete(s.data, key)
	}
	s.mu.Unlock()
}

// Len is the number of keys held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}

// Keys returns the keys held, sorted.
func (s *Store) Keys() []string {
	s.mu.RLock()
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	return keys
}

// mark returns a savepoint for rollbackTo.
func (s *Store) mark() int { return len(s.undo) }

// rollbackTo undoes every write after the savepoint, newest first.
func (s *Store) rollbackTo(savepoint int) {
	if len(s.undo) == savepoint {
		return
	}
	s.mu.Lock()
	for i := len(s.undo) - 1; i >= savepoint; i-- {
		u := s.undo[i]
		if u.existed {
			s.data[u.key] = u.prev
		} else {
			delete(s.data, u.key)
		}
		if u.newDirty {
			delete(s.dirtySet, u.key)
			// The write that first dirtied a key is the latest dirty
			// entry still standing, because later first-writes were
			// undone before it.
			s.dirty = s.dirty[:len(s.dirty)-1]
		}
	}
	clear(s.undo[savepoint:])
	s.undo = s.undo[:savepoint]
	s.mu.Unlock()
}

// numChanges is the number of keys written since the last commit.
func (s *Store) numChanges() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.dirty)
}

// changes calls fn for each key written since the last commit with its
// current value (nil when deleted), in first-write order.
func (s *Store) changes(fn func(key string, value []byte, deleted bool)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.dirty {
		v, ok := s.data[k]
		fn(k, v, !ok)
	}
}

// wrote records that the open transaction wrote the store's changelog at
// offset: called from produce promises.
func (s *Store) wrote(offset int64) {
	for {
		h := s.txnHigh.Load()
		if offset <= h || s.txnHigh.CompareAndSwap(h, offset) {
			return
		}
	}
}

// commit forgets the undo log: the writes are durable. The changelog
// position moves past the transaction's last write and its commit marker.
// When anything else landed in between (a fenced zombie's aborted
// records), the true position is further on; a position short of it only
// makes a later check read records it need not, never skip one.
func (s *Store) commit() {
	if h := s.txnHigh.Swap(-1); h >= 0 && s.pos.Load() >= 0 {
		s.pos.Store(h + 2)
	}
	s.mu.Lock()
	s.forgetWritesLocked()
	s.mu.Unlock()
}

// forgetWritesLocked empties the undo log and the dirty keys.
func (s *Store) forgetWritesLocked() {
	clear(s.undo)
	s.undo = s.undo[:0]
	clear(s.dirtySet)
	clear(s.dirty)
	s.dirty = s.dirty[:0]
}

// abort rolls back every write since the last commit.
func (s *Store) abort() {
	s.txnHigh.Store(-1)
	s.rollbackTo(0)
}

// reset empties the store for a restore from the changelog's start.
func (s *Store) reset() {
	s.mu.Lock()
	clear(s.data)
	s.forgetWritesLocked()
	s.mu.Unlock()
	s.pos.Store(-1)
	s.txnHigh.Store(-1)
}

// restore applies one changelog record, outside any transaction.
func (s *Store) restore(key string, value []byte) {
	s.mu.Lock()
	if value == nil {
		delete(s.data, key)
	} else {
		s.data[key] = value
	}
	s.mu.Unlock()
}
