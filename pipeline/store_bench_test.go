package pipeline

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// storeKeys is the number of keys a benchmarked store holds: a partition
// of a large patient or entity table.
const storeKeys = 100_000

// storeTxnKeys is how many keys one benchmarked commit flushes.
const storeTxnKeys = 1_000

// benchStore returns a committed store of storeKeys keys ("pat-000000",
// ...), each holding value, and the keys.
func benchStore(prefix string, value []byte) (*Store, []string) {
	s := newStore("bench")
	keys := make([]string, storeKeys)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(1_000_000 + i)[1:]
		s.restore(keys[i], value)
	}
	return s, keys
}

// BenchmarkStore is a task's keyed state store as processors use it, on
// one goroutine, with 100,000 keys and 256-byte values (about a patient's
// alert state or a prior authorization):
//
//   - get_hit: Get of a held key;
//   - put_update: Put over a held key, the first write of the key in its
//     transaction (undo entry, dirty entry);
//   - put_new: Put of a key the store does not hold;
//   - commit: what the runner does at a commit, for a transaction of 1,000
//     dirty keys out of the 100,000: a changelog record per dirty key
//     (changes), then forgetting the undo log and dirty set (commit). An
//     op is one transaction; keys/s counts its dirty keys.
//
// Writes commit every 100,000 (put_update) or are cleared (put_new) with
// the timer stopped, so that an op is one write into an open transaction
// of realistic size, not into an undo log that grows without end.
//
//	go test ./pipeline -run '^$' -bench Store -benchmem -count 5
func BenchmarkStore(b *testing.B) {
	value := make([]byte, 256)
	b.Run("get_hit", func(b *testing.B) {
		s, keys := benchStore("pat-", value)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := s.Get(keys[i]); !ok {
				b.Fatal("missing key")
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
	b.Run("put_update", func(b *testing.B) {
		s, keys := benchStore("pat-", value)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Put(keys[i], value)
			if i++; i == len(keys) {
				i = 0
				b.StopTimer()
				s.commit()
				b.StartTimer()
			}
		}
	})
	b.Run("put_new", func(b *testing.B) {
		s, _ := benchStore("pat-", value)
		_, fresh := benchStore("new-", nil)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Put(fresh[i], value)
			if i++; i == len(fresh) {
				// The map keeps the room it grew into: later laps
				// insert without growing it, as a store does once
				// its working set has been seen.
				i = 0
				b.StopTimer()
				s.commit()
				for _, k := range fresh {
					s.restore(k, nil)
				}
				b.StartTimer()
			}
		}
	})
	b.Run("commit", func(b *testing.B) {
		s, keys := benchStore("pat-", value)
		var out []*kgo.Record
		b.ReportAllocs()
		next := 0
		for b.Loop() {
			b.StopTimer()
			for range storeTxnKeys {
				s.Put(keys[next], value)
				next = (next + 7919) % len(keys) // a prime stride: scattered keys, none twice in a transaction
			}
			b.StartTimer()
			s.changes(func(key string, value []byte, deleted bool) {
				if deleted {
					value = nil
				}
				out = append(out, &kgo.Record{Topic: "bench-changelog", Key: []byte(key), Value: value})
			})
			s.commit()
			clear(out)
			out = out[:0]
		}
		b.ReportMetric(float64(b.N*storeTxnKeys)/b.Elapsed().Seconds(), "keys/s")
	})
}
