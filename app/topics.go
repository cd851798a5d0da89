package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/topics"
)

// Topics plans (and with apply, applies) the topics of cfg's pipelines
// against cfg's cluster, printing each change to cfg.Stdout, and the count
// at the end. Without brokers it plans against an empty cluster, and says
// so (see planEmpty); applying needs a real cluster.
//
// file, when not nil, is a topics file whose per-topic specs override the
// built-in ones (its defaults are the caller's to merge into d, under the
// flags).
func Topics(ctx context.Context, cfg Config, apply bool, d topics.Defaults, file *topics.File) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Embedded() && apply {
		return errors.New("topics apply: --brokers (or KAFKA_BROKERS) is required")
	}
	specs, err := specsOf(&cfg)
	if err != nil {
		return err
	}
	layout := func(d topics.Defaults) ([]topics.Topic, error) {
		desired := topics.Desired(specs, d)
		if file != nil {
			return file.Override(specs, desired, d)
		}
		return desired, nil
	}
	if cfg.Embedded() {
		desired, err := layout(d.Resolve(emptyPlanBrokers))
		if err != nil {
			return err
		}
		return planEmpty(ctx, cfg, desired)
	}
	kopts, err := cfg.kafkaOpts()
	if err != nil {
		return err
	}
	// A refused login is said as such, not as a timeout of the plan.
	if err := cfg.checkKafka(ctx, kopts, kafkaCheckTimeout); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if d, err = layoutFor(ctx, adm, d); err != nil {
		return err
	}
	desired, err := layout(d)
	if err != nil {
		return err
	}
	changes, err := topics.Plan(ctx, adm, desired)
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(cfg.Stdout, c)
	}
	// The canonical schemas are datasync's; without a registry they are
	// not checked, and the plan says so.
	var reg *sr.Client
	var schemas []datasync.SchemaChange
	if slices.Contains(cfg.Pipelines, "datasync") {
		if cfg.SchemaRegistryURL == "" {
			fmt.Fprintln(cfg.Stdout, "schemas not checked: no schema registry (--schema-registry or SCHEMA_REGISTRY_URL)")
		} else {
			if reg, err = cfg.schemaRegistry(); err != nil {
				return err
			}
			if schemas, err = datasync.PlanSchemas(ctx, reg); err != nil {
				return err
			}
			for _, s := range schemas {
				fmt.Fprintln(cfg.Stdout, s)
			}
		}
	}
	n := len(changes) + len(schemas)
	if n == 0 {
		fmt.Fprintln(cfg.Stdout, "nothing to do: the cluster has every topic as specified")
		return nil
	}
	if !apply {
		fmt.Fprintf(cfg.Stdout, "%d changes planned (carepipe topics apply makes them)\n", n)
		return nil
	}
	if err := topics.Apply(ctx, adm, changes); err != nil {
		return err
	}
	if len(schemas) > 0 {
		if _, err := datasync.Register(ctx, reg); err != nil {
			return err
		}
	}
	fmt.Fprintf(cfg.Stdout, "%d changes applied\n", n)
	return nil
}
