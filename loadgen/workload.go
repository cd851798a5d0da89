package loadgen

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/alerts"
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

// Pipelines loadgen can load.
var Pipelines = []string{"alerts", "priorauth", "datasync"}

// newWorkload builds the workload of cfg.Pipeline.
func newWorkload(cfg *Config) (*workload, error) {
	switch cfg.Pipeline {
	case "alerts":
		gen, err := sim.NewAlerts(sim.AlertsWorkload{
			Seed:             cfg.Seed,
			Patients:         cfg.Patients,
			AlertFraction:    cfg.AlertFraction,
			EnvelopeFraction: 0.5,
		})
		if err != nil {
			return nil, err
		}
		return &workload{
			inputs:    []string{alerts.TopicObservations},
			outputs:   []string{alerts.TopicAlerts},
			rateGroup: alerts.Group,
			groups:    []string{alerts.Group},
			prepare: func(ctx context.Context, cl *kgo.Client) error {
				// The patient table the alerts enrich from; the
				// pipeline's restore reads it before it processes.
				return sim.Produce(ctx, cl, gen.PatientRecords())
			},
			next: gen.NextRecord,
		}, nil
	case "priorauth":
		// Prescriptions come in seeded chunks, each chunk its own seed,
		// so that ids never repeat however long the run.
		const chunk = 1000
		var pending []*kgo.Record
		n := int64(0)
		return &workload{
			inputs:    []string{priorauth.TopicPrescriptions},
			outputs:   []string{priorauth.TopicWorkflowCompleted},
			rateGroup: priorauth.Group,
			groups:    []string{priorauth.Group},
			prepare:   func(context.Context, *kgo.Client) error { return nil },
			next: func() *kgo.Record {
				if len(pending) == 0 {
					pending, _ = sim.PriorAuthPrescriptions(cfg.Seed*1_000_003+n, chunk)
					n++
				}
				r := pending[0]
				pending = pending[1:]
				return r
			},
		}, nil
	case "datasync":
		gen, err := sim.NewCDCLoad(sim.CDCLoad{
			Seed:             cfg.Seed,
			Entities:         cfg.Entities,
			ConflictFraction: cfg.ConflictFraction,
			InvalidFraction:  cfg.InvalidFraction,
		})
		if err != nil {
			return nil, err
		}
		return &workload{
			inputs:    []string{sim.TopicDataSyncPatient},
			outputs:   []string{datasync.ValidatedTopic(datasync.Patient)},
			rateGroup: datasync.GroupCDC,
			groups:    []string{datasync.GroupCDC, datasync.GroupValidation},
			prepare:   func(context.Context, *kgo.Client) error { return nil },
			next:      gen.Next,
		}, nil
	}
	return nil, fmt.Errorf("loadgen: unknown pipeline %q (known: alerts, priorauth, datasync)", cfg.Pipeline)
}
