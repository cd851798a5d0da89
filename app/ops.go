package app

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
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
