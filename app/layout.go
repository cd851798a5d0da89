package app

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/topics"
)

// runLayout is how `carepipe run` creates the topics it creates (every
// missing one with --create-topics and in embedded mode, the internal ones
// always): the replication and per-topic configs of topics.Desired with
// the layout `carepipe topics plan` checks by default, cfg's partitions
// and the cluster's size (topics.Defaults.Resolve). One source of truth,
// so that a plan after a create has nothing to do. A topics file
// (`topics plan --topics`) is the plan's alone: run does not read one.
func runLayout(ctx context.Context, kafka []kgo.Opt, cfg *Config, specs []pipeline.Spec) (int16, map[string]map[string]string, error) {
	cl, err := kgo.NewClient(kafka...)
	if err != nil {
		return 0, nil, err
	}
	defer cl.Close()
	d, err := layoutFor(ctx, kadm.NewClient(cl), topics.SeedDefaults())
	if err != nil {
		return 0, nil, err
	}
	d.Partitions = cfg.Partitions
	configs := map[string]map[string]string{}
	for _, t := range topics.Desired(specs, d) {
		configs[t.Name] = t.Configs
	}
	return d.Replication, configs, nil
}

// layoutFor is d resolved for adm's cluster: its replication and
// min.insync.replicas follow the number of brokers.
func layoutFor(ctx context.Context, adm *kadm.Client, d topics.Defaults) (topics.Defaults, error) {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return d, fmt.Errorf("listing brokers: %w", err)
	}
	return d.Resolve(len(brokers)), nil
}
