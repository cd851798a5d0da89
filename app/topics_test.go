package app

import (
	"bytes"
	"context"
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
	run := func(apply bool) string {
		t.Helper()
		var out bytes.Buffer
		if err := Topics(context.Background(), Config{Brokers: c.Addrs(), SchemaRegistryURL: reg.URL(), Stdout: &out}, apply, d); err != nil {
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
	if err := Topics(context.Background(), Config{}, false, d); err == nil || !strings.Contains(err.Error(), "--brokers") {
		t.Errorf("without brokers: %v", err)
	}
}
