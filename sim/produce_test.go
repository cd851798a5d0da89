package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newFeedTopic returns a cluster with TopicObservation created and a client.
func newFeedTopic(t *testing.T) (*Cluster, *kgo.Client) {
	t.Helper()
	c := newCluster(t)
	createTopics(t, c, 3, nil, TopicObservation)
	return c, newClient(t, c)
}

func TestFeedValidation(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c)
	next := func() *kgo.Record { return nil }
	tests := []struct {
		name       string
		cl         *kgo.Client
		next       func() *kgo.Record
		rate, maxN int
	}{
		{"nil client", nil, next, 10, 10},
		{"nil next", cl, nil, 10, 10},
		{"zero rate", cl, next, 0, 10},
		{"negative rate", cl, next, -1, 10},
		{"zero max", cl, next, 10, 0},
		{"negative max", cl, next, 10, -5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Feed(newCtx(t), tt.cl, tt.next, tt.rate, tt.maxN); err == nil {
				t.Fatal("Feed accepted invalid arguments")
			}
		})
	}
}

func TestFeed(t *testing.T) {
	tests := []struct {
		name      string
		rate      int
		maxN      int
		supply    int    // records next hands out before returning nil; 0 = unlimited
		cancelAt  int    // cancel the context when next is called this many times; 0 = never
		topic     string // produce here instead of TopicObservation when set
		wantErr   error
		wantCount int64 // records that must be in the topic (upper bound when cancelled)
		minTime   time.Duration
	}{
		{name: "stops at max", rate: 2000, maxN: 50, wantCount: 50},
		{name: "paced", rate: 100, maxN: 20, wantCount: 20, minTime: 150 * time.Millisecond},
		{name: "low rate ticks per record", rate: 20, maxN: 3, wantCount: 3, minTime: 140 * time.Millisecond},
		{name: "source exhausted", rate: 2000, maxN: 100, supply: 7, wantCount: 7},
		{name: "cancelled is a normal stop", rate: 2000, maxN: 1000, cancelAt: 5, wantCount: 5},
		{name: "produce failure", rate: 2000, maxN: 1000, topic: "missing", wantErr: kerr.UnknownTopicOrPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cl := newFeedTopic(t)
			ctx, cancel := context.WithCancel(newCtx(t))
			defer cancel()
			g := newAlerts(t, AlertsWorkload{Seed: 11, Patients: 10, AlertFraction: 0.2})
			calls := 0
			next := func() *kgo.Record {
				calls++
				if tt.cancelAt > 0 && calls == tt.cancelAt {
					cancel()
				}
				if tt.supply > 0 && calls > tt.supply {
					return nil
				}
				r := g.NextRecord()
				if tt.topic != "" {
					r.Topic = tt.topic
				}
				return r
			}
			start := time.Now()
			err := Feed(ctx, cl, next, tt.rate, tt.maxN)
			elapsed := time.Since(start)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Feed: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Feed: %v, want %v", err, tt.wantErr)
			}
			if elapsed < tt.minTime {
				t.Errorf("Feed took %v, want at least %v at %d records/s", elapsed, tt.minTime, tt.rate)
			}
			got := endOffsetsSum(t, c, TopicObservation)
			if tt.cancelAt > 0 || tt.wantErr != nil {
				if got > tt.wantCount {
					t.Errorf("%d records produced after cancelling at the %d-th, want at most %d", got, tt.cancelAt, tt.wantCount)
				}
				return
			}
			if got != tt.wantCount {
				t.Errorf("%d records produced, want %d", got, tt.wantCount)
			}
		})
	}
}

func TestProduceCancelled(t *testing.T) {
	_, cl := newFeedTopic(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	recs, _ := newAlerts(t, AlertsWorkload{Seed: 1}).NextN(10)
	if err := Produce(ctx, cl, recs); !errors.Is(err, context.Canceled) {
		t.Fatalf("Produce with a cancelled context: %v, want context.Canceled", err)
	}
}
