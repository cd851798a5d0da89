package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// change is one changelog record as Store.changes gives it.
type change struct {
	key, value string
	deleted    bool
}

func changesOf(s *Store) []change {
	var cs []change
	s.changes(func(key string, value []byte, deleted bool) {
		cs = append(cs, change{key, string(value), deleted})
	})
	return cs
}

// contents is the store's map as strings.
func contents(s *Store) map[string]string {
	m := make(map[string]string)
	for _, k := range s.Keys() {
		v, _ := s.Get(k)
		m[k] = string(v)
	}
	return m
}

// newCommittedStore is a store holding kv as committed state.
func newCommittedStore(t *testing.T, kv ...string) *Store {
	t.Helper()
	s := newStore("s")
	for i := 0; i+1 < len(kv); i += 2 {
		s.Put(kv[i], []byte(kv[i+1]))
	}
	s.commit()
	if cs := changesOf(s); len(cs) != 0 {
		t.Fatalf("changes after commit: %v", cs)
	}
	return s
}

func TestStoreRollbackToMark(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(*Store) // writes before the mark
		after  func(*Store) // writes after it, rolled back
		want   map[string]string
		// changes after the rollback: the writes before the mark, in
		// first-write order.
		changes []change
	}{
		{
			name:    "nothing after the mark",
			before:  func(s *Store) { s.Put("a", []byte("2")) },
			after:   func(*Store) {},
			want:    map[string]string{"a": "2", "b": "1"},
			changes: []change{{"a", "2", false}},
		},
		{
			name:   "an overwrite comes back",
			before: func(*Store) {},
			after:  func(s *Store) { s.Put("a", []byte("9")) },
			want:   map[string]string{"a": "1", "b": "1"},
		},
		{
			name:   "a delete comes back",
			before: func(*Store) {},
			after:  func(s *Store) { s.Delete("b") },
			want:   map[string]string{"a": "1", "b": "1"},
		},
		{
			name:   "a new key goes",
			before: func(*Store) {},
			after:  func(s *Store) { s.Put("c", []byte("1")) },
			want:   map[string]string{"a": "1", "b": "1"},
		},
		{
			name:   "a key written twice after the mark comes back to its value at the mark",
			before: func(s *Store) { s.Put("a", []byte("2")) },
			after: func(s *Store) {
				s.Put("a", []byte("3"))
				s.Delete("a")
				s.Put("a", []byte("4"))
			},
			want:    map[string]string{"a": "2", "b": "1"},
			changes: []change{{"a", "2", false}},
		},
		{
			name: "a key dirtied before the mark stays dirty, one dirtied after does not",
			before: func(s *Store) {
				s.Delete("b")
				s.Put("c", []byte("1"))
			},
			after: func(s *Store) {
				s.Put("b", []byte("2"))
				s.Put("a", []byte("2"))
				s.Delete("c")
			},
			want:    map[string]string{"a": "1", "c": "1"},
			changes: []change{{"b", "", true}, {"c", "1", false}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCommittedStore(t, "a", "1", "b", "1")
			tc.before(s)
			mark := s.mark()
			tc.after(s)
			s.rollbackTo(mark)
			if got := contents(s); !maps.Equal(got, tc.want) {
				t.Errorf("after rollback the store holds %v, want %v", got, tc.want)
			}
			if got := changesOf(s); !slices.Equal(got, tc.changes) {
				t.Errorf("changes after rollback: %v, want %v", got, tc.changes)
			}
			if s.mark() != mark {
				t.Errorf("savepoint after rollback %d, want %d", s.mark(), mark)
			}
		})
	}
}

// Changes are the keys written since the last commit, once each with its
// latest value, in the order they were first written: the changelog
// records of a transaction, produced deterministically.
func TestStoreChanges(t *testing.T) {
	s := newCommittedStore(t, "a", "1", "b", "1")
	s.Put("c", []byte("1"))
	s.Put("a", []byte("2"))
	s.Delete("b")
	s.Put("c", []byte("2"))
	s.Delete("a")
	s.Put("d", nil)
	want := []change{{"c", "2", false}, {"a", "", true}, {"b", "", true}, {"d", "", false}}
	if got := changesOf(s); !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if n := s.numChanges(); n != len(want) {
		t.Errorf("numChanges %d, want %d", n, len(want))
	}
	s.changes(func(key string, value []byte, deleted bool) {
		if deleted && value != nil {
			t.Errorf("deleted key %s has value %q, want nil (a tombstone)", key, value)
		}
		if key == "d" && value == nil {
			t.Error("a nil Put is stored empty, not as a tombstone")
		}
	})
}

func TestStoreAbort(t *testing.T) {
	s := newCommittedStore(t, "a", "1", "b", "1")
	s.pos.Store(10)
	s.Put("a", []byte("2"))
	m := s.mark()
	s.Delete("b")
	s.Put("c", []byte("1"))
	s.rollbackTo(m) // a record's rollback, then the transaction's abort
	s.Put("d", []byte("1"))
	s.wrote(14)
	s.abort()
	if got, want := contents(s), map[string]string{"a": "1", "b": "1"}; !maps.Equal(got, want) {
		t.Errorf("after abort the store holds %v, want the last commit's %v", got, want)
	}
	if cs := changesOf(s); len(cs) != 0 {
		t.Errorf("changes after abort: %v, want none", cs)
	}
	if s.mark() != 0 {
		t.Errorf("savepoint after abort %d, want 0", s.mark())
	}
	// The aborted transaction's changelog writes do not move the
	// position at the next commit.
	s.commit()
	if p := s.pos.Load(); p != 10 {
		t.Errorf("position after an abort and an empty commit %d, want 10", p)
	}
}

// A commit moves a known changelog position past the transaction's last
// write and its commit marker; an unknown one stays unknown.
func TestStoreCommitPosition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pos     int64
		wrote   []int64
		wantPos int64
		put     bool // the transaction writes a key
	}{
		{"known, writes out of order", 10, []int64{12, 14, 13}, 16, true},
		{"known, nothing written", 10, nil, 10, false},
		{"unknown", -1, []int64{12}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCommittedStore(t)
			s.pos.Store(tc.pos)
			if tc.put {
				s.Put("a", []byte("1"))
			}
			for _, o := range tc.wrote {
				s.wrote(o)
			}
			s.commit()
			if p := s.pos.Load(); p != tc.wantPos {
				t.Errorf("position %d, want %d", p, tc.wantPos)
			}
			if cs := changesOf(s); len(cs) != 0 {
				t.Errorf("changes after commit: %v", cs)
			}
			if s.mark() != 0 {
				t.Errorf("savepoint after commit %d, want 0", s.mark())
			}
		})
	}
}

// TestStoreWritesAgainstModel checks the store against a model that keeps
// every write since the last commit: the store holds the committed state
// with those writes applied, its changes are their keys in first-write
// order, and a rollback to a savepoint forgets the writes after it. Marks
// nest as a record's savepoints do within a transaction, and rollbacks
// come newest first. That is the order rollbackTo relies on to pop the
// dirty keys: the entry that first dirtied a key is always the latest
// dirty key still standing when it is undone.
func TestStoreWritesAgainstModel(t *testing.T) {
	type write struct {
		key, value string
		deleted    bool
	}
	rapid.Check(t, func(rt *rapid.T) {
		s := newStore("s")
		committed := map[string]string{}
		var writes []write // since the last commit
		var marks []int    // open savepoints, oldest first
		keys := rapid.SampledFrom([]string{"a", "b", "c", "d", "e"})
		model := func() (map[string]string, []change) {
			m := maps.Clone(committed)
			var order []string
			for _, w := range writes {
				if !slices.Contains(order, w.key) {
					order = append(order, w.key)
				}
				if w.deleted {
					delete(m, w.key)
				} else {
					m[w.key] = w.value
				}
			}
			var cs []change
			for _, k := range order {
				v, ok := m[k]
				cs = append(cs, change{k, v, !ok})
			}
			return m, cs
		}
		for i := range rapid.IntRange(1, 60).Draw(rt, "ops") {
			switch op := rapid.IntRange(0, 6).Draw(rt, "op"); op {
			case 0, 1:
				k, v := keys.Draw(rt, "key"), fmt.Sprint(i)
				s.Put(k, []byte(v))
				writes = append(writes, write{key: k, value: v})
			case 2:
				k := keys.Draw(rt, "key")
				s.Delete(k)
				writes = append(writes, write{key: k, deleted: true})
			case 3:
				m := s.mark()
				if m != len(writes) {
					rt.Fatalf("savepoint %d after %d writes", m, len(writes))
				}
				marks = append(marks, m)
			case 4:
				if len(marks) == 0 {
					continue
				}
				m := marks[len(marks)-1]
				marks = marks[:len(marks)-1]
				s.rollbackTo(m)
				writes = writes[:m]
			case 5:
				s.commit()
				committed, _ = model()
				writes, marks = nil, nil
			case 6:
				s.abort()
				writes, marks = nil, nil
			}
			want, wantChanges := model()
			if got := contents(s); !maps.Equal(got, want) {
				rt.Fatalf("op %d: store holds %v, model %v", i, got, want)
			}
			if got := changesOf(s); !slices.Equal(got, wantChanges) {
				rt.Fatalf("op %d: changes %v, model %v", i, got, wantChanges)
			}
			if len(s.dirtySet) != len(s.dirty) {
				rt.Fatalf("op %d: %d dirty keys in the set, %d in the list %v", i, len(s.dirtySet), len(s.dirty), s.dirty)
			}
		}
	})
}
