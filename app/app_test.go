package app

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carepipe/carepipe/internal/kafkatest"
)

// The embedded demo runs the alerts pipeline, the prior-authorization
// orchestrator, the data synchronization stages and the order processor
// with their simulated traffic and worlds, prints summaries that come to
// show alerts, completed prior authorizations, canonical changes, validated
// records, reconciliations and processed orders, and returns nil when it is
// stopped (what SIGINT does). The test stops it once every count is above
// zero, within a minute: on a loaded machine the first completed workflow
// takes seconds.
func TestEmbeddedDemoRunsAndStopsCleanly(t *testing.T) {
	counters := map[string]string{
		"alerts": "alerts", "priorauth": "completed", "orders": "processed",
		"sync-cdc": "changes", "sync-val": "validated", "sync-rec": "reconciled",
	}
	out := &summaries{last: map[string]string{}, changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Config{SummaryEvery: 250 * time.Millisecond, DemoRate: 2000, Stdout: out})
	}()
	zero := func() []string {
		var none []string
		for pipeline, counter := range counters {
			m := regexp.MustCompile(counter + ` +(\d+)`).FindStringSubmatch(out.line(pipeline))
			if m == nil || m[1] == "0" {
				none = append(none, pipeline)
			}
		}
		return none
	}
	for len(zero()) > 0 && ctx.Err() == nil {
		select {
		case <-out.changed:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("after a minute, no count yet from %v", zero())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// summaries keeps the last summary line of each pipeline as Run prints
// them, and says when one arrives.
type summaries struct {
	mu      sync.Mutex
	buf     []byte
	last    map[string]string
	changed chan struct{}
}

func (s *summaries) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		if f := strings.Fields(string(s.buf[:i])); len(f) > 1 {
			s.last[f[1]] = string(s.buf[:i])
		}
		s.buf = s.buf[i+1:]
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *summaries) line(pipeline string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[pipeline]
}

// Against a real cluster without the topics, start-up fails at once and
// names what is missing.
func TestMissingTopicsFailStartupWithTheirNames(t *testing.T) {
	c := kafkatest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Run(ctx, Config{Brokers: c.Addrs(), Pipelines: []string{"alerts"}, SummaryEvery: -1})
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
