package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/carepipe/carepipe/loadgen"
)

// A fixed-rate run against each pipeline, embedded, measures what it
// offered: the pipeline committed about the offered rate, outputs came
// back with ordered latency percentiles, and a generous SLO holds.
func TestLoadgenFixedRateEachPipeline(t *testing.T) {
	for _, tt := range []struct {
		pipeline string
		rate     float64
	}{
		// Rates low enough for the race detector on a loaded 2-core CI
		// machine: the test is about what is measured, not how much.
		{"alerts", 200},
		{"datasync", 100},
		{"priorauth", 50},
	} {
		t.Run(tt.pipeline, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// The pipeline's warnings (a session restart, a rebalance)
			// explain a step that measured less than it offered.
			log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			rep, err := Loadgen(ctx, Config{Logger: log}, loadgen.Config{
				Pipeline: tt.pipeline, Rate: tt.rate, Duration: 3 * time.Second,
				Warmup: 500 * time.Millisecond, SLO: time.Minute, Seed: 3,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Steps) != 1 {
				t.Fatalf("%d steps, want 1", len(rep.Steps))
			}
			s := rep.Steps[0]
			t.Logf("%+v", s)
			if s.Offered < 0.8*tt.rate || s.Offered > 1.05*tt.rate {
				t.Errorf("offered %.0f/s, asked for %.0f/s", s.Offered, tt.rate)
			}
			// Commits come every 100 ms, so the committed rate over a
			// 3 s window is the offered one give or take a few commits
			// (more under the race detector on a loaded machine).
			if s.Achieved < 0.4*s.Offered || s.Achieved > 1.6*s.Offered {
				t.Errorf("achieved %.0f/s against %.0f/s offered", s.Achieved, s.Offered)
			}
			if s.Outputs == 0 {
				t.Fatal("no output measured")
			}
			if !(0 < s.P50 && s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.P999 && s.P999 <= s.Max) {
				t.Errorf("latencies not ordered: p50 %v p90 %v p99 %v p99.9 %v max %v", s.P50, s.P90, s.P99, s.P999, s.Max)
			}
			if s.CPUPerRecord <= 0 || s.PeakRSS <= 0 {
				t.Errorf("embedded run without CPU (%v/record) or RSS (%d)", s.CPUPerRecord, s.PeakRSS)
			}
			if s.Verdict != loadgen.VerdictOK {
				t.Errorf("verdict %s with a one-minute SLO", s.Verdict)
			}
			// A fixed rate is no search for the maximum (issue 23).
			if rep.FindMax || rep.MaxSustainable != 0 {
				t.Errorf("a fixed-rate run reports find-max %v, max sustainable %.0f", rep.FindMax, rep.MaxSustainable)
			}
		})
	}
}

// find-max ramps by the growth factor while steps pass, and ends with a
// step at half the maximum; a step whose p99 passes the SLO stops the ramp.
func TestLoadgenFindMax(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Loadgen(ctx, Config{}, loadgen.Config{
		Pipeline: "alerts", FindMax: true, StartRate: 25, Growth: 2, MaxRate: 100,
		StepDuration: time.Second, Warmup: 300 * time.Millisecond, SLO: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var targets []float64
	for _, s := range rep.Steps {
		targets = append(targets, s.Target)
		if s.Verdict != loadgen.VerdictOK {
			t.Errorf("step at %.0f/s: verdict %s with a one-minute SLO", s.Target, s.Verdict)
		}
	}
	want := []float64{25, 50, 100, 50}
	if len(targets) != len(want) {
		t.Fatalf("targets %v, want %v", targets, want)
	}
	for i := range want {
		if targets[i] != want[i] {
			t.Fatalf("targets %v, want %v", targets, want)
		}
	}
	if !rep.FindMax || rep.MaxSustainable < 80 {
		t.Errorf("find-max %v, max sustainable %.0f/s; want the 100/s step's offered rate", rep.FindMax, rep.MaxSustainable)
	}

	// An SLO no pipeline meets: the first step fails it, nothing is
	// sustainable, and no half-maximum step runs.
	rep, err = Loadgen(ctx, Config{}, loadgen.Config{
		Pipeline: "alerts", FindMax: true, StartRate: 50, StepDuration: time.Second,
		Warmup: 300 * time.Millisecond, SLO: time.Microsecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 1 || rep.Steps[0].Verdict != loadgen.VerdictSLO || rep.MaxSustainable != 0 {
		t.Fatalf("steps %+v, max %.0f; want one step failing the SLO", rep.Steps, rep.MaxSustainable)
	}
}
