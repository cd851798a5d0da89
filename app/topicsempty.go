package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/topics"
)

// emptyPlanHeading opens the plan of `carepipe topics plan` without
// brokers, so that nobody reads it as the state of their cluster.
const emptyPlanHeading = "# plan against an EMPTY cluster of 3 brokers and an empty schema registry (no --brokers or KAFKA_BROKERS given): what a new cluster needs, not compared with any real one"

// emptyPlanBrokers is the size of the cluster a plan without brokers
// lays topics out for (replication and min.insync.replicas derive from
// it unless set): the smallest cluster that survives a broker's loss
// with acks=all writes going on.
const emptyPlanBrokers = 3

// planEmpty prints the plan of the desired topics against an empty
// cluster and, for datasync, of the canonical schemas against an empty
// schema registry: what a new cluster needs. The schemas are planned
// by the same code as against a real registry, on an in-process empty
// one, so that the two plans cannot drift apart.
func planEmpty(ctx context.Context, cfg Config, desired []topics.Topic) error {
	fmt.Fprintln(cfg.Stdout, emptyPlanHeading)
	changes, err := topics.Compare(desired, topics.State{})
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(cfg.Stdout, c)
	}
	var schemas []datasync.SchemaChange
	if slices.Contains(cfg.Pipelines, "datasync") {
		reg := srfake.New()
		defer reg.Close()
		cfg.SchemaRegistryURL, cfg.SchemaRegistryUsername, cfg.SchemaRegistryPassword, cfg.SchemaRegistryCAFile = reg.URL(), "", "", ""
		cl, err := cfg.schemaRegistry()
		if err != nil {
			return err
		}
		if schemas, err = datasync.PlanSchemas(ctx, cl); err != nil {
			return err
		}
		for _, s := range schemas {
			fmt.Fprintln(cfg.Stdout, s)
		}
	}
	fmt.Fprintf(cfg.Stdout, "%d changes for an empty cluster (carepipe topics plan --brokers ... compares with yours; topics apply --brokers ... makes them)\n", len(changes)+len(schemas))
	return nil
}
