package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/topics"
)

// `carepipe topics plan`, then `apply`, then `plan` again: nothing to do.
func TestTopicsPlanApplyPlan(t *testing.T) {
	c, err := sim.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	d := topics.SeedDefaults()
	d.Replication = 1 // the embedded cluster has one broker
	var file *topics.File
	run := func(apply bool) string {
		t.Helper()
		var out bytes.Buffer
		if err := Topics(context.Background(), Config{Brokers: c.Addrs(), SchemaRegistryURL: reg.URL(), Stdout: &out}, apply, d, file); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if plan := run(false); !strings.Contains(plan, "create fhir.Observation: 12 partitions") ||
		!strings.Contains(plan, "create data.sync.errors: 12 partitions") ||
		!strings.Contains(plan, "register schema canonical.patient.validated-value") || !strings.Contains(plan, "changes planned") {
		t.Fatalf("first plan:\n%s", plan)
	}
	if applied := run(true); !strings.Contains(applied, "changes applied") {
		t.Fatalf("apply:\n%s", applied)
	}
	if again := run(false); !strings.HasPrefix(again, "nothing to do") {
		t.Fatalf("plan after apply:\n%s", again)
	}
	// A topics file: a longer retention for alerts and a topic of the
	// user's own, planned and applied the same way.
	path := filepath.Join(t.TempDir(), "topics.yaml")
	yml := "topics:\n  - name: clinical.alerts\n    configs: {retention.ms: \"2592000000\"}\n  - name: audit.events\n    partitions: 3\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	if file, err = topics.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if plan := run(false); !strings.Contains(plan, "set clinical.alerts retention.ms: 604800000 -> 2592000000") ||
		!strings.Contains(plan, "create audit.events: 3 partitions") || !strings.Contains(plan, "2 changes planned") {
		t.Fatalf("plan with a topics file:\n%s", plan)
	}
	run(true)
	if again := run(false); !strings.HasPrefix(again, "nothing to do") {
		t.Fatalf("plan after applying the topics file:\n%s", again)
	}
	if err := Topics(context.Background(), Config{}, false, d, nil); err == nil || !strings.Contains(err.Error(), "--brokers") {
		t.Errorf("without brokers: %v", err)
	}
}
