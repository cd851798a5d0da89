package bench

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

var paWorkflows = flag.Int("pa.workflows", 20000, "prior authorizations per BenchmarkPriorAuthEndToEnd run")

// BenchmarkPriorAuthEndToEnd runs N prior authorizations through the
// orchestrator and the simulated world (documentation, submission, payers
// deciding at once, a quarter pended first, communication) on in-process
// kfake, 12 partitions, and reports workflows/s and the orchestrator's
// input events/s (five or six per workflow) from the first prescription
// produced to the last workflow.completed read. The world answers in the
// same process, so this is the closed loop, not the orchestrator alone.
//
//	go test ./bench -run '^$' -bench PriorAuthEndToEnd -benchtime 1x -count 6
func BenchmarkPriorAuthEndToEnd(b *testing.B) {
	for range b.N {
		b.StopTimer()
		c, err := sim.NewCluster()
		if err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(append(c.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond))...)
		if err != nil {
			b.Fatal(err)
		}
		p, err := priorauth.New()
		if err != nil {
			b.Fatal(err)
		}
		spec := p.Spec()
		if err := pipeline.CreateTopics(context.Background(), kadm.NewClient(cl), &spec, 12, 1); err != nil {
			b.Fatal(err)
		}
		cfg := sim.PriorAuthWorldConfig{Seed: 1, Approve: 0.7, Deny: 0.15, Partial: 0.1, Pend: 0.25}
		world, err := sim.StartPriorAuthWorld(c, cfg)
		if err != nil {
			b.Fatal(err)
		}
		r, err := pipeline.New(spec, pipeline.WithKafka(c.ClientOpts()...))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		recs, _ := sim.PriorAuthPrescriptions(2, *paWorkflows)
		events := 0
		for _, rec := range recs {
			// prescription, documentation, submission, determination(s),
			// communication
			_, pended := cfg.PriorAuthOutcome(priorauth.PriorAuthID(prescriptionID(rec)))
			events += 5
			if pended {
				events++
			}
		}
		reader, err := kgo.NewClient(append(c.ClientOpts(), kgo.ConsumeTopics(priorauth.TopicWorkflowCompleted), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := sim.Produce(ctx, cl, recs); err != nil {
			b.Fatal(err)
		}
		seen := map[string]bool{}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
		for len(seen) < len(recs) {
			fs := reader.PollFetches(wctx)
			if wctx.Err() != nil {
				b.Fatalf("%d of %d workflows completed before the deadline", len(seen), len(recs))
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
		}
		elapsed := time.Since(start)
		b.StopTimer()
		wcancel()
		b.ReportMetric(float64(len(recs))/elapsed.Seconds(), "workflows/s")
		b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
		reader.Close()
		cancel()
		<-done
		world.Close()
		cl.Close()
		c.Close()
		b.StartTimer()
	}
}

// prescriptionID reads a prescription record's id from its key (the
// generator keys prescriptions by their id).
func prescriptionID(r *kgo.Record) string { return string(r.Key) }
