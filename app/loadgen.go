package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/loadgen"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// Loadgen runs a load generator run for lg.Pipeline. Without brokers it
// is self-contained: an embedded cluster, the pipeline in this process
// (its topics created), and for priorauth the simulated outside world.
// With brokers the pipeline is the deployment's own and only the load,
// the measurement, and for priorauth the simulated outside world run
// here. cfg supplies the cluster connection and the pipeline settings
// (commit interval, rules, schema registry).
func Loadgen(ctx context.Context, cfg Config, lg loadgen.Config) (*loadgen.Report, error) {
	cfg.Pipelines = []string{lg.Pipeline}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if lg.Pipeline == priorauth.Name && len(cfg.Topics[lg.Pipeline]) > 0 {
		return nil, errors.New("loadgen: the simulated prior-authorization world uses the built-in topic names: load priorauth without renamed topics")
	}
	lg.Names = pipeline.Names{AppID: cfg.AppID, Topics: cfg.Topics[lg.Pipeline]}
	log := cfg.Logger
	var kafka []kgo.Opt
	settings := map[string]string{"GOMAXPROCS": strconv.Itoa(runtime.GOMAXPROCS(0))}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	errs := make(chan error, 4)

	if cfg.Embedded() {
		cluster, err := sim.NewCluster()
		if err != nil {
			return nil, err
		}
		defer cluster.Close()
		// The embedded cluster's clients time a member out after 2 s, so
		// that tests replace a killed instance at once; under a load
		// test on a saturated machine that costs rebalances the
		// pipeline would not have against a real cluster (45 s there).
		kafka = append(cluster.ClientOpts(), kgo.SessionTimeout(15*time.Second), kgo.HeartbeatInterval(time.Second))
		lg.Cluster, lg.InProcess = "embedded", true
		if lg.Pipeline == "datasync" {
			reg := srfake.New()
			defer reg.Close()
			cfg.SchemaRegistryURL = reg.URL()
		}
		ps, err := buildPipelines(ctx, &cfg, kafka)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.runner.Run(ctx); err != nil {
					errs <- err
					cancel()
				}
			}()
		}
		// The runners create the topics and restore their state before
		// they are ready; the load starts after.
		if err := waitReady(ctx, ps, time.Minute); err != nil {
			return nil, err
		}
		if err := boundRetention(ctx, kafka); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(retentionEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					cluster.Kafka().ApplyRetention()
				}
			}
		}()
		// Compaction holds the whole broker while it rewrites the
		// changelogs (hundreds of milliseconds once they are large),
		// so it runs between steps, outside every measurement.
		lg.BetweenSteps = func() { cluster.Kafka().Compact() }
		interval := cfg.CommitInterval
		if interval == 0 {
			interval = 100 * time.Millisecond
		}
		settings["commit interval"] = interval.String()
		settings["partitions"] = strconv.Itoa(int(cfg.Partitions))
	} else {
		var err error
		if kafka, err = cfg.kafkaOpts(); err != nil {
			return nil, err
		}
		if err := cfg.checkKafka(ctx, kafka, kafkaCheckTimeout); err != nil {
			return nil, err
		}
		lg.Cluster = strings.Join(cfg.Brokers, ",")
	}
	if lg.Pipeline == "priorauth" {
		// Payers answer at once: the run measures carepipe, not a
		// payer's think time.
		world, err := sim.StartPriorAuthWorldOn(kafka, sim.PriorAuthWorldConfig{
			Seed: lg.Seed, Approve: 0.7, Deny: 0.15, Partial: 0.1, Pend: 0.25,
		})
		if err != nil {
			return nil, err
		}
		defer world.Close()
	}
	lg.Kafka = kafka
	lg.Logger = log
	if lg.Settings == nil {
		lg.Settings = map[string]string{}
	}
	for k, v := range settings {
		lg.Settings[k] = v
	}
	rep, err := loadgen.Run(ctx, lg)
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return rep, err
}

// waitReady waits until every runner is ready, a runner fails (ctx ends),
// or limit passes.
func waitReady(ctx context.Context, ps []*built, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !allReady(ps) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the pipelines were not ready within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// An embedded cluster keeps everything in memory, so a long run would grow
// without bound: it keeps 15 s of each deleting topic, in 1 MiB segments
// (retention drops whole segments, compaction skips the active one), and
// applies retention every retentionEvery; it compacts between steps. At
// 30,000 observations/s that is about 500 MB of inputs and outputs held. A
// pipeline 15 s behind has failed the run anyway. Compacted topics (state
// changelogs, the patient table) get no retention.ms: kfake's retention
// would trim them too.
const (
	retentionEvery = 5 * time.Second
	retainFor      = "15000"
	segmentBytes   = "1048576"
)

// boundRetention sets segment.bytes on every topic of the cluster, and
// retention.ms on those whose cleanup.policy does not compact.
func boundRetention(ctx context.Context, kafka []kgo.Opt) error {
	cl, err := kgo.NewClient(kafka...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("embedded retention: %w", err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, td.Names()...)
	if err != nil {
		return fmt.Errorf("embedded retention: %w", err)
	}
	var deleting, compacted []string
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("embedded retention: %s: %w", rc.Name, rc.Err)
		}
		compacts := false
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
				compacts = true
			}
		}
		if compacts {
			compacted = append(compacted, rc.Name)
		} else {
			deleting = append(deleting, rc.Name)
		}
	}
	ret, seg := retainFor, segmentBytes
	segOnly := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: &seg}}
	for _, set := range []struct {
		configs []kadm.AlterConfig
		topics  []string
	}{
		{append(segOnly, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: &ret}), deleting},
		{segOnly, compacted},
	} {
		if len(set.topics) == 0 {
			continue
		}
		rs, err := adm.AlterTopicConfigs(ctx, set.configs, set.topics...)
		if err == nil {
			for _, r := range rs {
				if r.Err != nil {
					err = fmt.Errorf("%s: %w", r.Name, r.Err)
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("embedded retention: %w", err)
		}
	}
	return nil
}
