package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/topics"
)

// Topics plans (and with apply, applies) the topics of cfg's pipelines
// against cfg's cluster, printing each change to cfg.Stdout, and the count
// at the end. It needs a real cluster: an embedded one is empty by design.
func Topics(ctx context.Context, cfg Config, apply bool, d topics.Defaults) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.Embedded() {
		return errors.New("topics: --brokers (or KAFKA_BROKERS) is required")
	}
	specs, err := specsOf(cfg.Pipelines)
	if err != nil {
		return err
	}
	kopts, err := cfg.kafkaOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	changes, err := topics.Plan(ctx, adm, topics.Desired(specs, d))
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(cfg.Stdout, c)
	}
	if len(changes) == 0 {
		fmt.Fprintln(cfg.Stdout, "nothing to do: the cluster has every topic as specified")
		return nil
	}
	if !apply {
		fmt.Fprintf(cfg.Stdout, "%d changes planned (carepipe topics apply makes them)\n", len(changes))
		return nil
	}
	if err := topics.Apply(ctx, adm, changes); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Stdout, "%d changes applied\n", len(changes))
	return nil
}

// specsOf returns the runtime specs of the named pipelines, with their
// default processors.
func specsOf(names []string) ([]pipeline.Spec, error) {
	var specs []pipeline.Spec
	for _, name := range names {
		switch name {
		case "alerts":
			p, err := alerts.New()
			if err != nil {
				return nil, err
			}
			specs = append(specs, p.Spec())
		case "priorauth":
			p, err := priorauth.New()
			if err != nil {
				return nil, err
			}
			specs = append(specs, p.Spec())
		case "orders":
			specs = append(specs, orders.New(nil).Spec())
		}
	}
	return specs, nil
}
