package pipeline

import "sync"

// GlobalTable is an instance's whole copy of a compacted topic, keyed by
// record key. It is restored from the topic itself before the pipeline
// processes anything and kept up to date while it runs, so it is as fresh
// as its topic, not transactional with the pipeline.
//
// Not being in step with processing has a consequence for replays: a
// record processed again (after an aborted transaction, a rebalance or a
// restart) is enriched from the table as it is then, not as it was the first
// time. Given the table's contents, a replay's outputs are deterministic;
// but the table is not part of the transaction, so a replay may emit
// different enrichment than the attempt it replaces did (a patient renamed
// in between, say). Only the committed attempt is ever seen by
// read_committed consumers.
//
// When its topic's log is cut back under the reader (the client reports
// data loss) or the topic is recreated, the table is rebuilt from the
// topic's start into a new map, which replaces the old one whole once it
// has caught up with the last stable offset. Until then, [GlobalTable.Get]
// answers from the old table: readers see either the table as it was before
// the loss or the rebuilt one, never one half-read. The old table may hold
// keys the topic no longer has for as long as the rebuild takes, which is
// the same staleness the table always has while it follows its topic.
type GlobalTable struct {
	spec GlobalTableSpec

	mu   sync.RWMutex
	data map[string]any
}

func newGlobalTable(spec GlobalTableSpec) *GlobalTable {
	return &GlobalTable{spec: spec, data: make(map[string]any)}
}

// Topic is the table's source topic.
func (g *GlobalTable) Topic() string { return g.spec.Topic }

// Get returns the value decoded from the latest record for key.
func (g *GlobalTable) Get(key string) (any, bool) {
	g.mu.RLock()
	v, ok := g.data[key]
	g.mu.RUnlock()
	return v, ok
}

// Len is the number of keys held.
func (g *GlobalTable) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.data)
}

// decode turns a record into the value held for its key: nil for a
// tombstone.
func (g *GlobalTable) decode(key, value []byte) (any, error) {
	if value == nil {
		return nil, nil
	}
	return g.spec.Decode(key, value)
}

// put sets or (for a nil v) deletes key in data.
func put(data map[string]any, key []byte, v any) {
	if v == nil {
		delete(data, string(key))
	} else {
		data[string(key)] = v
	}
}

// apply decodes one record into the table; it returns the decoding error,
// leaving the table as it was.
func (g *GlobalTable) apply(key, value []byte) error {
	v, err := g.decode(key, value)
	if err != nil {
		return err
	}
	g.mu.Lock()
	put(g.data, key, v)
	g.mu.Unlock()
	return nil
}

// replace makes data, built aside by a restore, the table. The caller
// gives data up.
func (g *GlobalTable) replace(data map[string]any) {
	g.mu.Lock()
	g.data = data
	g.mu.Unlock()
}
