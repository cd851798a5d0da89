package app

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/sim"
)

// The embedded demo runs the alerts pipeline, the prior-authorization
// orchestrator, the data synchronization stages and the order processor
// with their simulated traffic and worlds, prints summaries with alerts,
// completed prior authorizations, canonical changes, validated records,
// reconciliations and processed orders in them, and returns nil when its
// duration is up.
func TestEmbeddedDemoRunsAndStopsCleanly(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Config{
		Duration:     5 * time.Second,
		SummaryEvery: 500 * time.Millisecond,
		DemoRate:     2000,
		Stdout:       &out,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	last := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			last[f[1]] = line
		}
	}
	for pipeline, counter := range map[string]string{
		"alerts": "alerts", "priorauth": "completed", "orders": "processed",
		"sync-cdc": "changes", "sync-val": "validated", "sync-rec": "reconciled",
	} {
		m := regexp.MustCompile(counter + ` +(\d+)`).FindStringSubmatch(last[pipeline])
		if m == nil {
			t.Fatalf("last %s summary line has no %s count: %q", pipeline, counter, last[pipeline])
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("%s: none %s after the demo ran: %q", pipeline, counter, last[pipeline])
		}
	}
}

// Against a real cluster without the topics, start-up fails at once and
// names what is missing.
func TestMissingTopicsFailStartupWithTheirNames(t *testing.T) {
	c, err := sim.NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Run(ctx, Config{Brokers: c.Addrs(), Pipelines: []string{"alerts"}, SummaryEvery: -1})
	if err == nil || !strings.Contains(err.Error(), "missing topics") || !strings.Contains(err.Error(), "fhir.Observation") {
		t.Fatalf("Run: %v, want a missing-topics error naming fhir.Observation", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for the deadline instead of failing at start-up")
	}
}

func TestConfigRejectsUnknownPipelinesAndMissingRegistry(t *testing.T) {
	for _, tc := range []struct {
		name, pipeline, want string
	}{
		{"unknown", "billing", "unknown pipeline"},
		{"datasync without a schema registry", "datasync", "needs a schema registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), Config{Brokers: []string{"127.0.0.1:1"}, Pipelines: []string{tc.pipeline}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
