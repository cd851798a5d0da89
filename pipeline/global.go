package pipeline

import "sync"

// GlobalTable is an instance's whole copy of a compacted topic, keyed by
// record key. It is restored from the topic itself before the pipeline
// processes anything and kept up to date while it runs, so it is as fresh
// as its topic, not transactional with the pipeline.
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

// apply decodes one record into the table; it reports whether decoding
// failed.
func (g *GlobalTable) apply(key, value []byte) error {
	var v any
	if value != nil {
		var err error
		if v, err = g.spec.Decode(key, value); err != nil {
			return err
		}
	}
	g.mu.Lock()
	if v == nil {
		delete(g.data, string(key))
	} else {
		g.data[string(key)] = v
	}
	g.mu.Unlock()
	return nil
}

// reset empties the table, for a restore that starts over.
func (g *GlobalTable) reset() {
	g.mu.Lock()
	clear(g.data)
	g.mu.Unlock()
}
