package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// workload is one pipeline's side of a load run: what is produced, what
// is waited for, and whose progress counts.
type workload struct {
	// inputs are the topics the load goes to.
	inputs []string
	// outputs are the topics whose records' latency is measured: each
	// carries its input's correlation id, which says when it was sent.
	outputs []string
	// rateGroup is the group whose committed offsets on inputs measure
	// the achieved rate.
	rateGroup string
	// groups are every consumer group of the pipeline: their lag is its
	// backlog.
	groups []string
	// prepare runs once before any load (the alerts' patient table).
	prepare func(ctx context.Context, cl *kgo.Client) error
	// next is the next input record, without a timestamp.
	next func() *kgo.Record
}

// load is what loadgen knows of one pipeline it can load, beside what the
// catalog says of it: its default latency objective, the settings its
// report shows, and how its records are made.
type load struct {
	name string
	slo  time.Duration
	// settings are the workload's settings a report names.
	settings func(cfg *Config) map[string]string
	// fill sets the workload's inputs, outputs and records; names are
	// the deployment's (topics renamed, app id).
	fill func(cfg *Config, names pipeline.Names, wl *workload) error
}

// loads is loadgen's table of pipelines: one row each, in the order help
// lists them.
var loads = []load{
	{name: alerts.Name, slo: 250 * time.Millisecond, settings: func(cfg *Config) map[string]string {
		return map[string]string{
			"patients":       strconv.Itoa(cfg.Patients),
			"alert fraction": strconv.FormatFloat(cfg.AlertFraction, 'g', -1, 64),
		}
	}, fill: alertsLoad},
	{name: priorauth.Name, slo: 5 * time.Second, settings: func(*Config) map[string]string { return nil }, fill: priorAuthLoad},
	{name: datasync.Name, slo: 500 * time.Millisecond, settings: func(cfg *Config) map[string]string {
		return map[string]string{
			"entities":          strconv.Itoa(cfg.Entities),
			"conflict fraction": strconv.FormatFloat(cfg.ConflictFraction, 'g', -1, 64),
			"invalid fraction":  strconv.FormatFloat(cfg.InvalidFraction, 'g', -1, 64),
		}
	}, fill: dataSyncLoad},
}

// Pipelines loadgen can load.
var Pipelines = func() []string {
	var out []string
	for _, l := range loads {
		out = append(out, l.name)
	}
	return out
}()

// loadOf is the row of pipeline, false for one loadgen cannot load.
func loadOf(pipeline string) (load, bool) {
	for _, l := range loads {
		if l.name == pipeline {
			return l, true
		}
	}
	return load{}, false
}

// newWorkload builds the workload of cfg.Pipeline: its records, and its
// topics and groups as the catalog names them with cfg.Names.
func newWorkload(cfg *Config) (*workload, error) {
	def, ok := catalog.Lookup(cfg.Pipeline)
	l, known := loadOf(cfg.Pipeline)
	if !ok || !known {
		return nil, fmt.Errorf("loadgen: unknown pipeline %q (known: %s)", cfg.Pipeline, strings.Join(Pipelines, ", "))
	}
	specs, err := def.Specs(catalog.Settings{AppID: cfg.Names.AppID, Topics: map[string]map[string]string{cfg.Pipeline: cfg.Names.Topics}})
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	wl := &workload{
		// The first stage's group consumes the load: its committed
		// offsets are the achieved rate.
		rateGroup: specs[0].Group,
		prepare:   func(context.Context, *kgo.Client) error { return nil },
	}
	for i := range specs {
		wl.groups = append(wl.groups, specs[i].Group)
	}
	if err := l.fill(cfg, cfg.Names, wl); err != nil {
		return nil, err
	}
	return wl, nil
}

// renamed sends a generated record, addressed by the built-in topic name,
// to the deployment's.
func renamed(names pipeline.Names, next func() *kgo.Record) func() *kgo.Record {
	if len(names.Topics) == 0 {
		return next
	}
	return func() *kgo.Record {
		r := next()
		r.Topic = names.Topic(r.Topic)
		return r
	}
}

func alertsLoad(cfg *Config, names pipeline.Names, wl *workload) error {
	gen, err := sim.NewAlerts(sim.AlertsWorkload{
		Seed:             cfg.Seed,
		Patients:         cfg.Patients,
		AlertFraction:    cfg.AlertFraction,
		EnvelopeFraction: 0.5,
	})
	if err != nil {
		return err
	}
	wl.inputs = []string{names.Topic(alerts.TopicObservations)}
	wl.outputs = []string{names.Topic(alerts.TopicAlerts)}
	wl.prepare = func(ctx context.Context, cl *kgo.Client) error {
		// The patient table the alerts enrich from; the pipeline's
		// restore reads it before it processes.
		patients := gen.PatientRecords()
		for _, r := range patients {
			r.Topic = names.Topic(r.Topic)
		}
		return sim.Produce(ctx, cl, patients)
	}
	wl.next = renamed(names, gen.NextRecord)
	return nil
}

func priorAuthLoad(cfg *Config, names pipeline.Names, wl *workload) error {
	// Prescriptions come in seeded chunks, each chunk its own seed, so
	// that ids never repeat however long the run.
	const chunk = 1000
	var pending []*kgo.Record
	n := int64(0)
	wl.inputs = []string{names.Topic(priorauth.TopicPrescriptions)}
	wl.outputs = []string{names.Topic(priorauth.TopicWorkflowCompleted)}
	wl.next = renamed(names, func() *kgo.Record {
		if len(pending) == 0 {
			pending, _ = sim.PriorAuthPrescriptions(cfg.Seed*1_000_003+n, chunk)
			n++
		}
		r := pending[0]
		pending = pending[1:]
		return r
	})
	return nil
}

func dataSyncLoad(cfg *Config, _ pipeline.Names, wl *workload) error {
	gen, err := sim.NewCDCLoad(sim.CDCLoad{
		Seed:             cfg.Seed,
		Entities:         cfg.Entities,
		ConflictFraction: cfg.ConflictFraction,
		InvalidFraction:  cfg.InvalidFraction,
	})
	if err != nil {
		return err
	}
	wl.inputs = []string{sim.TopicDataSyncPatient}
	wl.outputs = []string{datasync.ValidatedTopic(datasync.Patient)}
	// The load is measured to validation: reconciliation waits on
	// targets that a load run does not simulate.
	wl.groups = wl.groups[:2]
	wl.next = gen.Next
	return nil
}
