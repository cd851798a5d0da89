package app

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// Specs returns the specs of cfg's pipelines (every built pipeline when
// cfg names none), as Run would build them with their default processors:
// what the operator tools (describe, reset, errors) work from. It needs no
// cluster. An unknown pipeline name is an error.
func Specs(cfg Config) ([]pipeline.Spec, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return specsOf(&cfg)
}

// KafkaOpts returns the options of a client of cfg's cluster, once a
// connection with them has logged in (a refused password is said as such,
// not as a timeout later). The operator tools need a real cluster: with
// no brokers configured it is an error.
func KafkaOpts(ctx context.Context, cfg Config) ([]kgo.Opt, error) {
	cfg.setDefaults()
	if cfg.Embedded() {
		return nil, errors.New("--brokers (or KAFKA_BROKERS) is required: the cluster to work on (a running embedded demo listens on --embedded-listen, 127.0.0.1:29092 by default)")
	}
	kopts, err := cfg.kafkaOpts()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkKafka(ctx, kopts, kafkaCheckTimeout); err != nil {
		return nil, err
	}
	return kopts, nil
}

// PipelineNotes says, of the pipeline of spec name name, what its Spec
// does not: how its records are keyed and what its timers are. For
// carepipe describe.
func PipelineNotes(name string) ops.Notes {
	switch name {
	case alerts.Name:
		return ops.Notes{
			Keys: "observations by patient id (any other key, or a patient another partition owns, is re-keyed through the repartition topic); " +
				"fhir.Patient, the state and every output by patient id",
		}
	case priorauth.Name:
		return ops.Notes{
			Keys: "prescriptions by prescription id, re-keyed through the repartition topic by the prior-auth id derived from it; " +
				"every later event, the state and every output by prior-auth id",
			Timers: "per prior authorization, its earliest due timer (SLA breach, status check, expiry, purge) in the timers store, fired when due",
		}
	case orders.Name:
		return ops.Notes{Keys: "orders keep their key, input to output"}
	case datasync.NameCDC:
		return ops.Notes{Keys: "source records as the source system keys them; canonical changes by entity id"}
	case datasync.NameValidation:
		return ops.Notes{Keys: "by entity id (a change keyed otherwise is re-keyed through the repartition topic); the state and validated versions too"}
	case datasync.NameReconciliation:
		return ops.Notes{
			Keys:   "by entity id (validated versions and target acknowledgements keyed otherwise are re-keyed through the repartition topic)",
			Timers: "per entity, the deadline of its latest validated version in the timers store: reconciliation.<entity>.overdue when no acknowledgement came in time",
		}
	}
	return ops.Notes{}
}
