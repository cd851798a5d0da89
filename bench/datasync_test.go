package bench

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/sim"
)

var syncRecords = flag.Int("sync.records", 20000, "source records per BenchmarkDataSyncCDCToValidated run")

// BenchmarkDataSyncCDCToValidated runs N source records (the scenario mix:
// every source variant, Debezium envelopes, tombstones, and a third of them
// duplicate, stale, invalid or undecodable) through the CDC and validation
// stages, EOS on, Avro with a registry, on in-process kfake with 12
// partitions, and reports source records/s and validated records/s from the
// first record produced to the last validated record read.
//
//	go test ./bench -run '^$' -bench DataSyncCDCToValidated -benchtime 1x -count 6
func BenchmarkDataSyncCDCToValidated(b *testing.B) {
	recs, truth := sim.DataSyncRecords(3, *syncRecords)
	validated := 0
	for _, e := range datasync.Entities() {
		validated += truth.Applied[string(e)] + truth.ConflictResolved[string(e)]
	}
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		c, err := sim.NewCluster()
		if err != nil {
			b.Fatal(err)
		}
		reg := srfake.New()
		rcl, err := sr.NewClient(sr.URLs(reg.URL()))
		if err != nil {
			b.Fatal(err)
		}
		codec, err := datasync.Register(context.Background(), rcl)
		if err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(append(c.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond))...)
		if err != nil {
			b.Fatal(err)
		}
		cdc, err := datasync.NewCDC(datasync.WithCodec(codec))
		if err != nil {
			b.Fatal(err)
		}
		val, err := datasync.NewValidation(datasync.WithCodec(codec))
		if err != nil {
			b.Fatal(err)
		}
		specs := []pipeline.Spec{cdc.Spec(), val.Spec()}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, len(specs))
		for i := range specs {
			if err := pipeline.CreateTopics(ctx, kadm.NewClient(cl), &specs[i], 12, 1); err != nil {
				b.Fatal(err)
			}
			r, err := pipeline.New(specs[i], pipeline.WithKafka(c.ClientOpts()...))
			if err != nil {
				b.Fatal(err)
			}
			go func() { done <- r.Run(ctx) }()
		}
		var topics []string
		for _, e := range datasync.Entities() {
			topics = append(topics, datasync.ValidatedTopic(e))
		}
		reader, err := kgo.NewClient(append(c.ClientOpts(), kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
		if err != nil {
			b.Fatal(err)
		}
		// The generator's records are produced once per run: copies, since
		// producing sets their partition and offset.
		batch := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			cp := *r
			batch[i] = &cp
		}
		b.StartTimer()
		start := time.Now()
		if err := sim.Produce(ctx, cl, batch); err != nil {
			b.Fatal(err)
		}
		n := 0
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
		for n < validated {
			fs := reader.PollFetches(wctx)
			if wctx.Err() != nil {
				b.Fatalf("%d of %d validated records before the deadline", n, validated)
			}
			n += fs.NumRecords()
		}
		elapsed := time.Since(start)
		b.StopTimer()
		wcancel()
		b.ReportMetric(float64(len(recs))/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(validated)/elapsed.Seconds(), "validated/s")
		reader.Close()
		cancel()
		for range specs {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		cl.Close()
		reg.Close()
		c.Close()
		b.StartTimer()
	}
}
