package app

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// built is one running pipeline stage (datasync is three: one per stage).
// The typed processors are the stage's catalog.Stage.Processor, for the
// summary line and the demo traffic; routes are its query API.
type built struct {
	name       string
	runner     *pipeline.Runner
	routes     []catalog.Route
	alerts     *alerts.Processor
	priorauth  *priorauth.Processor
	orders     *orders.Processor
	cdc        *datasync.CDC
	validation *datasync.Validation
	reconcile  *datasync.Reconciliation
}

// settings are the catalog settings of cfg: the files it names loaded,
// and, when withRegistry, a client of its schema registry (building
// datasync registers there; planning its topics needs none).
func (c *Config) settings(withRegistry bool) (catalog.Settings, error) {
	s := catalog.Settings{AppID: c.AppID, Topics: c.Topics}
	var err error
	if s.SiteZone, err = c.siteZone(); err != nil {
		return s, err
	}
	if c.RulesFile != "" {
		pack, err := rules.Load(c.RulesFile)
		if err != nil {
			return s, err
		}
		s.Rules = &pack
	}
	pc, err := c.priorAuthConfig()
	if err != nil {
		return s, err
	}
	s.PriorAuth = &pc
	if s.Sources, err = c.dataSyncSources(); err != nil {
		return s, err
	}
	if c.ReconcileDeadline > 0 {
		rc := datasync.DefaultReconcileConfig()
		rc.Deadline = c.ReconcileDeadline
		s.Reconcile = &rc
	}
	if withRegistry && c.runs(datasync.Name) {
		if s.Registry, err = c.schemaRegistry(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// runs reports whether cfg runs pipeline name.
func (c *Config) runs(name string) bool {
	for _, p := range c.Pipelines {
		if p == name {
			return true
		}
	}
	return false
}

// buildPipelines builds cfg's pipelines from the catalog, each stage with
// a runner on kafka that creates what topics it creates with the layout
// `topics plan` checks (runLayout).
func buildPipelines(ctx context.Context, cfg *Config, kafka []kgo.Opt) ([]*built, error) {
	s, err := cfg.settings(true)
	if err != nil {
		return nil, err
	}
	if s.Registry != nil {
		// Registered (or looked up) here, with the retries of a registry
		// that is down at start-up, not by the catalog on first try.
		if s.Codec, err = codecAtStartUp(ctx, cfg, s.Registry, cfg.registryRetry()); err != nil {
			return nil, err
		}
	}
	var stages []catalog.Stage
	for _, name := range cfg.Pipelines {
		p, _ := catalog.Lookup(name) // validate has checked the name
		ss, err := p.Build(ctx, s)
		if err != nil {
			return nil, err
		}
		stages = append(stages, ss...)
	}
	specs := make([]pipeline.Spec, len(stages))
	for i, st := range stages {
		specs[i] = st.Spec
	}
	replication, layout, err := runLayout(ctx, kafka, cfg, specs)
	if err != nil {
		return nil, err
	}
	var ps []*built
	for _, st := range stages {
		opts := []pipeline.Option{
			pipeline.WithKafka(kafka...),
			pipeline.WithLogger(cfg.Logger),
			pipeline.WithMetrics(st.Metrics),
			pipeline.WithInstanceID(cfg.InstanceID),
			pipeline.WithAdvertisedHTTP(cfg.AdvertiseHTTP),
		}
		if len(cfg.CarryHeaders) > 0 {
			opts = append(opts, pipeline.WithCarriedHeaders(cfg.CarryHeaders...))
		}
		if cfg.CommitInterval > 0 {
			opts = append(opts, pipeline.WithCommitInterval(cfg.CommitInterval))
		}
		if cfg.SessionTimeout > 0 {
			opts = append(opts, pipeline.WithSessionTimeout(cfg.SessionTimeout))
		}
		if cfg.TransactionTimeout > 0 {
			opts = append(opts, pipeline.WithTransactionTimeout(cfg.TransactionTimeout))
		}
		if cfg.CreateTopics || cfg.Embedded() {
			opts = append(opts, pipeline.WithCreateTopics(cfg.Partitions, replication))
		}
		opts = append(opts, pipeline.WithTopicLayout(replication, layout))
		r, err := pipeline.New(st.Spec, opts...)
		if err != nil {
			return nil, err
		}
		ps = append(ps, builtOf(st, r))
	}
	return ps, nil
}

// builtOf is stage st run by r.
func builtOf(st catalog.Stage, r *pipeline.Runner) *built {
	b := &built{name: st.Name, runner: r, routes: st.Routes}
	switch proc := st.Processor.(type) {
	case *alerts.Processor:
		b.alerts = proc
	case *priorauth.Processor:
		b.priorauth = proc
	case *orders.Processor:
		b.orders = proc
	case *datasync.CDC:
		b.cdc = proc
	case *datasync.Validation:
		b.validation = proc
	case *datasync.Reconciliation:
		b.reconcile = proc
	}
	return b
}

// specsOf returns the runtime specs of cfg's pipelines, as cfg configures
// them, without building their processing.
func specsOf(cfg *Config) ([]pipeline.Spec, error) {
	s, err := cfg.settings(false)
	if err != nil {
		return nil, err
	}
	var specs []pipeline.Spec
	for _, name := range cfg.Pipelines {
		p, _ := catalog.Lookup(name)
		ss, err := p.Specs(s)
		if err != nil {
			return nil, err
		}
		specs = append(specs, ss...)
	}
	return specs, nil
}
