package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/topics"
)

// `carepipe topics plan`, then `apply`, then `plan` again: nothing to do.
func TestTopicsPlanApplyPlan(t *testing.T) {
	c := kafkatest.NewCluster(t)
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
	f, err := topics.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file = f
	if plan := run(false); !strings.Contains(plan, "set clinical.alerts retention.ms: 604800000 -> 2592000000") ||
		!strings.Contains(plan, "create audit.events: 3 partitions") || !strings.Contains(plan, "2 changes planned") {
		t.Fatalf("plan with a topics file:\n%s", plan)
	}
	run(true)
	if again := run(false); !strings.HasPrefix(again, "nothing to do") {
		t.Fatalf("plan after applying the topics file:\n%s", again)
	}
	if err := Topics(context.Background(), Config{Stdout: io.Discard}, true, d, nil); err == nil || !strings.Contains(err.Error(), "--brokers") {
		t.Errorf("apply without brokers: %v", err)
	}
}

// `carepipe topics plan` without brokers plans against an empty cluster,
// and says so first: every topic of every pipeline is a create and every
// canonical schema a registration, exactly as the plan against a fresh
// cluster and registry says them.
func TestTopicsPlanWithoutBrokersIsPlanOfEmptyCluster(t *testing.T) {
	c := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	d := topics.SeedDefaults()
	d.Replication = 1 // the embedded cluster has one broker
	plan := func(cfg Config) []string {
		t.Helper()
		var out bytes.Buffer
		cfg.Stdout = &out
		if err := Topics(context.Background(), cfg, false, d, nil); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
	fresh := plan(Config{Brokers: c.Addrs(), SchemaRegistryURL: reg.URL()})
	empty := plan(Config{})
	if len(empty) < 3 || empty[0] != emptyPlanHeading {
		t.Fatalf("plan without brokers does not open with %q:\n%s", emptyPlanHeading, strings.Join(empty, "\n"))
	}
	if n := len(fresh) - 1; !slices.Equal(empty[1:len(empty)-1], fresh[:n]) {
		t.Errorf("plan without brokers\n%s\nis not the plan against a fresh cluster\n%s", strings.Join(empty, "\n"), strings.Join(fresh, "\n"))
	}
	changes := empty[1 : len(empty)-1]
	if want := fmt.Sprintf("%d changes for an empty cluster", len(changes)); !strings.HasPrefix(empty[len(empty)-1], want) {
		t.Errorf("last line %q, want it to start %q", empty[len(empty)-1], want)
	}
	cfg := Config{}
	cfg.setDefaults()
	specs, err := specsOf(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics.Desired(specs, d) {
		if !slices.ContainsFunc(changes, func(l string) bool { return strings.HasPrefix(l, "create "+topic.Name+": ") }) {
			t.Errorf("plan without brokers does not create %s", topic.Name)
		}
	}
	for _, l := range changes {
		if !strings.HasPrefix(l, "create ") && !strings.HasPrefix(l, "register schema ") {
			t.Errorf("plan for an empty cluster says %q: want only creates and registrations", l)
		}
	}
}
