package topics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "topics.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileRejectsUnknownKeysWithTheirLine(t *testing.T) {
	_, err := LoadFile(writeFile(t, "defaults:\n  partitions: 6\n  replicas: 3\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("err = %v, want the unknown key and its line", err)
	}
	_, err = LoadFile(writeFile(t, "topics:\n  - name: a\n  - name: a\n"))
	if err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("err = %v, want a duplicate topic error", err)
	}
}

func TestFileLayoutAndOverride(t *testing.T) {
	f, err := LoadFile(writeFile(t, `
defaults:
  partitions: 24
  configs: {compression.type: zstd}
topics:
  - name: out
    replication: 2
    configs: {retention.ms: "1000"}
  - name: extra
    partitions: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Layout(SeedDefaults()).Resolve(3)
	if d.Partitions != 24 || d.Replication != 3 || d.Configs["compression.type"] != "zstd" || d.Configs["min.insync.replicas"] != "2" {
		t.Fatalf("layout %+v", d)
	}
	specs := []pipeline.Spec{{Name: "p", Group: "g", Inputs: []string{"in"}, Outputs: []string{"out"}, ErrorTopic: "errs", Stores: []string{"s"}}}
	got, err := f.Override(specs, Desired(specs, d), d)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Topic{}
	for _, tp := range got {
		byName[tp.Name] = tp
	}
	if o := byName["out"]; o.Partitions != 24 || o.Replication != 2 || o.Configs["retention.ms"] != "1000" || o.Configs["compression.type"] != "zstd" {
		t.Errorf("out: %+v", o)
	}
	if x, ok := byName["extra"]; !ok || x.Partitions != 3 {
		t.Errorf("extra: %+v, %v", x, ok)
	}
	if in := byName["in"]; in.Partitions != 24 {
		t.Errorf("in: %+v", in)
	}

	// An input with another partition count than its pipeline's changelog
	// would split a key's records from its state: refused.
	bad, err := LoadFile(writeFile(t, "topics:\n  - name: in\n    partitions: 6\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Override(specs, Desired(specs, d), d); err == nil || !strings.Contains(err.Error(), "co-partitioning") {
		t.Fatalf("err = %v, want a co-partitioning refusal", err)
	}
}
