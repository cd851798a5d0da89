package pipeline

// Test-only access for the external test package (pipeline_test), which
// may import the pipelines that import this package: a table built and
// filled exactly as the runner does it, without a cluster.

// NewGlobalTableForTest is newGlobalTable.
func NewGlobalTableForTest(spec GlobalTableSpec) *GlobalTable { return newGlobalTable(spec) }

// ApplyForTest is apply: what the runner does with each record it restores.
func (g *GlobalTable) ApplyForTest(key, value []byte) error { return g.apply(key, value) }
