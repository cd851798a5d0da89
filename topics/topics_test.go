package topics

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

func kinds(cs []Change) map[ChangeKind]int {
	m := map[ChangeKind]int{}
	for _, c := range cs {
		m[c.Kind]++
	}
	return m
}

// TestPlanApplyPlan: against an empty cluster the plan creates every topic;
// applied, a second plan has nothing to do; drift (a config changed, more
// partitions wanted) is planned and applied; fewer partitions are refused.
func TestPlanApplyPlan(t *testing.T) {
	c := kafkatest.NewCluster(t)
	// A client per step, as each `carepipe topics` run is a process of its
	// own: a client caches metadata briefly, and a plan right after an
	// apply on the same client could see the cluster as it was.
	newAdm := func() *kadm.Client {
		cl := kafkatest.Client(t, c.ClientOpts())
		return kadm.NewClient(cl)
	}
	adm := newAdm()
	ctx := context.Background()

	pa, err := priorauth.New()
	if err != nil {
		t.Fatal(err)
	}
	ord, err := orders.New()
	if err != nil {
		t.Fatal(err)
	}
	specs := []pipeline.Spec{pa.Spec(), ord.Spec()}
	d := SeedDefaults()
	d.Replication = 1 // one embedded broker
	desired := Desired(specs, d)

	plan, err := Plan(ctx, adm, desired)
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(plan); k[Create] != len(desired) || len(plan) != len(desired) {
		t.Fatalf("first plan %v, want %d creates", k, len(desired))
	}
	// The plan for an empty cluster, read from nothing, is that plan.
	if empty, err := Compare(desired, State{}); err != nil || !reflect.DeepEqual(empty, plan) {
		t.Fatalf("Compare with an empty state: %v, %v; want the plan against the empty cluster %v", empty, err, plan)
	}
	for _, ch := range plan {
		if strings.HasSuffix(ch.Topic.Name, "-changelog") && (ch.Topic.Configs["cleanup.policy"] != "compact" || ch.Topic.Configs["retention.ms"] != "") {
			t.Errorf("changelog %s configs %v, want compacted without retention", ch.Topic.Name, ch.Topic.Configs)
		}
		if ch.Topic.Name == priorauth.TopicErrors && ch.Topic.Configs["max.message.bytes"] != "4194304" {
			t.Errorf("error topic configs %v, want the larger message size", ch.Topic.Configs)
		}
	}
	if err := Apply(ctx, adm, plan); err != nil {
		t.Fatal(err)
	}
	if again, err := Plan(ctx, newAdm(), desired); err != nil || len(again) != 0 {
		t.Fatalf("plan after apply: %v, %v; want nothing to do", again, err)
	}

	// Drift: a config changed by hand, more partitions wanted for one topic.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "compression.type", Value: kadm.StringPtr("gzip")}}, orders.TopicProcessed); err != nil {
		t.Fatal(err)
	}
	for i := range desired {
		if desired[i].Name == orders.TopicSubmitted {
			desired[i].Partitions = 16
		}
	}
	drift, err := Plan(ctx, newAdm(), desired)
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(drift); len(drift) != 2 || k[SetConfig] != 1 || k[AddPartitions] != 1 {
		t.Fatalf("drift plan %v, want one config and one partition change", drift)
	}
	if err := Apply(ctx, adm, drift); err != nil {
		t.Fatal(err)
	}
	if again, err := Plan(ctx, newAdm(), desired); err != nil || len(again) != 0 {
		t.Fatalf("plan after applying the drift: %v, %v; want nothing to do", again, err)
	}

	// Fewer partitions than the cluster has: refused, and nothing applied.
	for i := range desired {
		if desired[i].Name == orders.TopicSubmitted {
			desired[i].Partitions = 4
		}
	}
	refused, err := Plan(ctx, newAdm(), desired)
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(refused); k[Refused] != 1 {
		t.Fatalf("plan %v, want a refused partition decrease", refused)
	}
	if err := Apply(ctx, adm, refused); err == nil || !strings.Contains(err.Error(), "cannot be removed") {
		t.Fatalf("Apply: %v, want the refusal", err)
	}

	// Replication the cluster cannot hold is an error, not a clamp.
	d.Replication = 3
	if _, err := Plan(ctx, adm, Desired(specs, d)); err == nil || !strings.Contains(err.Error(), "exceeds the cluster's 1 brokers") {
		t.Fatalf("Plan with replication 3 on one broker: %v", err)
	}
}

// The layout follows the cluster's size: replication 3 where there are
// three brokers or more, else as many as there are; min.insync.replicas
// one less, at most 2, at least 1, so that an acks=all write is never
// refused for want of replicas the topic cannot have. A replication or a
// min.insync.replicas that is set is kept.
func TestResolveDerivesMinInsyncFromReplication(t *testing.T) {
	for _, tc := range []struct {
		name        string
		brokers     int
		replication int16
		minInsync   string // set in the defaults' configs; "": unset
		wantRepl    int16
		wantMin     string
	}{
		{"one broker", 1, 0, "", 1, "1"},
		{"two brokers", 2, 0, "", 2, "1"},
		{"three brokers", 3, 0, "", 3, "2"},
		{"five brokers", 5, 0, "", 3, "2"},
		{"replication set", 5, 5, "", 5, "2"},
		{"replication 2 set", 5, 2, "", 2, "1"},
		{"min.insync set", 3, 0, "3", 3, "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := SeedDefaults()
			d.Replication = tc.replication
			if tc.minInsync != "" {
				d.Configs["min.insync.replicas"] = tc.minInsync
			}
			got := d.Resolve(tc.brokers)
			if got.Replication != tc.wantRepl || got.Configs["min.insync.replicas"] != tc.wantMin {
				t.Errorf("Resolve(%d) = replication %d, min.insync.replicas %s; want %d, %s",
					tc.brokers, got.Replication, got.Configs["min.insync.replicas"], tc.wantRepl, tc.wantMin)
			}
		})
	}
	if _, ok := SeedDefaults().Configs["min.insync.replicas"]; ok {
		t.Error("SeedDefaults sets min.insync.replicas: Resolve would not derive it from the replication")
	}
}
