package bench

import (
	"context"
	"flag"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/loadgen"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

var (
	records    = flag.Int("e2e.records", 400_000, "observations per end-to-end run")
	partitions = flag.Int("e2e.partitions", 12, "partitions per topic")
	cpuProfile = flag.String("e2e.cpuprofile", "", "write a CPU profile of each run's timed part (the pipeline, not loading its input) to this file, suffixed with the pipeline's name")
)

// passThrough consumes observations and produces each one unchanged: the
// cost of EOS consume-produce with no processing, under the same runner.
func passThrough() pipeline.Spec {
	return pipeline.Spec{
		Name:       "passthrough",
		Group:      "bench-passthrough",
		Inputs:     []string{alerts.TopicObservations},
		Outputs:    []string{"bench.passthrough.out"},
		ErrorTopic: "bench.passthrough.errors",
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			c.Emit(&kgo.Record{Topic: "bench.passthrough.out", Key: r.Key, Value: r.Value, Headers: r.Headers})
			return nil
		},
	}
}

// alertsSpec is the alerts pipeline with a rule pack: the seed's three
// rules (the pipeline the issue-2 target was set for) or the built-in pack
// (NEWS2, suppression windows, the adult vital-signs set).
func alertsSpec(pack rules.Pack) func(*testing.B, *metrics.Set) pipeline.Spec {
	return func(b *testing.B, set *metrics.Set) pipeline.Spec {
		p, err := alerts.New(alerts.WithMetrics(set), alerts.WithRules(pack))
		if err != nil {
			b.Fatal(err)
		}
		return p.Spec()
	}
}

// BenchmarkEndToEnd runs N observations through each pipeline, exactly
// once, and reports observations/s. Run it with -benchtime=1x: one
// iteration is a whole run.
//
//	go test ./bench -run '^$' -bench EndToEnd -benchtime 1x -count 5
func BenchmarkEndToEnd(b *testing.B) {
	for _, bc := range []struct {
		name string
		spec func(*testing.B, *metrics.Set) pipeline.Spec
	}{
		{"passthrough", func(*testing.B, *metrics.Set) pipeline.Spec { return passThrough() }},
		{"alerts", alertsSpec(rules.Seed())},
		{"alerts-full", alertsSpec(rules.Default())},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c, err := sim.NewCluster()
				if err != nil {
					b.Fatal(err)
				}
				set := metrics.NewSet()
				spec := bc.spec(b, set)
				load(b, c, spec)
				r, err := pipeline.New(spec,
					pipeline.WithKafka(c.ClientOpts()...),
					pipeline.WithMetrics(set),
				)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				stopProfile := startProfile(b, bc.name)
				b.StartTimer()
				start := time.Now()
				go func() { done <- r.Run(ctx) }()
				first, before, end := waitCommitted(b, c, spec)
				took := end.at.Sub(start)
				cpu := end.cpu - first.cpu
				b.StopTimer()
				stopProfile()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				c.Close()
				// obs/s is the steady rate: from the first commit to
				// the last, leaving out start-up (joining the group,
				// restoring the patient table, the first fetches),
				// which total-obs/s includes.
				b.ReportMetric(float64(int64(*records)-before)/end.at.Sub(first.at).Seconds(), "obs/s")
				b.ReportMetric(float64(*records)/took.Seconds(), "total-obs/s")
				b.ReportMetric(float64(first.at.Sub(start).Milliseconds()), "startup-ms")
				// CPU per observation over the same steady part: the
				// whole process's (the pipeline, the in-process broker,
				// the poller of committed offsets). Less noisy on a
				// shared machine than the rate, which also counts the
				// time the process waited for a core.
				if cpu > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(int64(*records)-before), "cpu-µs/obs")
				}
				s := r.Stats()
				b.ReportMetric(float64(s.Commits), "txns")
			}
		})
	}
}

// startProfile starts the CPU profile of -e2e.cpuprofile, if set, and
// returns what stops it. The -test.cpuprofile of the whole benchmark is
// mostly the untimed generation and loading of the input.
func startProfile(b *testing.B, name string) (stop func()) {
	if *cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(*cpuProfile + "." + name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// load creates the spec's topics and produces the observations, untimed.
func load(b *testing.B, c *sim.Cluster, spec pipeline.Spec) {
	b.Helper()
	cl, err := kgo.NewClient(append(c.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if err := pipeline.CreateTopics(ctx, adm, &spec, int32(*partitions), 1); err != nil {
		b.Fatal(err)
	}
	if len(spec.GlobalTables) == 0 { // the pass-through has no patient table; the load still has patients
		if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, alerts.TopicPatients); err != nil {
			b.Fatal(err)
		}
	}
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 7, Patients: 2000, AlertFraction: 0.1, EnvelopeFraction: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Produce(ctx, cl, g.PatientRecords()); err != nil {
		b.Fatal(err)
	}
	recs, _ := g.NextN(*records)
	if err := sim.Produce(ctx, cl, recs); err != nil {
		b.Fatal(err)
	}
}

// moment is when something was seen, in wall-clock and process CPU time.
type moment struct {
	at  time.Time
	cpu time.Duration
}

func now() moment { return moment{time.Now(), loadgen.ProcessCPU()} }

// waitCommitted waits until the group has committed every input record,
// and returns when it first saw a commit, how many records that commit
// covered, and when it saw the last.
func waitCommitted(b *testing.B, c *sim.Cluster, spec pipeline.Spec) (first moment, atFirst int64, last moment) {
	b.Helper()
	cl, err := kgo.NewClient(c.ClientOpts()...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, spec.Inputs...)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		committed, err := adm.FetchOffsets(ctx, spec.Group)
		if err == nil {
			done := true
			var sum int64
			ends.Each(func(o kadm.ListedOffset) {
				got, _ := committed.Lookup(o.Topic, o.Partition)
				if got.At < o.Offset {
					done = false
				}
				sum += max(got.At, 0)
			})
			seen := now()
			if sum > 0 && first.at.IsZero() {
				first, atFirst = seen, sum
			}
			if done {
				return first, atFirst, seen
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("inputs not committed after 5 minutes")
		}
		time.Sleep(5 * time.Millisecond) // polling the broker's committed offsets
	}
}
