package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// pollEvery is how often [Eventually] and [WaitCaughtUp] look again.
const pollEvery = 20 * time.Millisecond

// Eventually polls cond until it holds, failing t after timeout with what
// was awaited. It is for conditions outside the code under test's events (a
// group's committed offsets, an assignment), which nothing announces.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v", what, timeout)
		}
		<-tick.C
	}
}

// WaitCaughtUp waits until each spec's group has committed every record of
// its inputs and repartition topics produced so far ([CaughtUp]), so every
// output it will make for them is committed. It fails t if ctx ends first.
func WaitCaughtUp(ctx context.Context, t testing.TB, kopts []kgo.Opt, specs ...pipeline.Spec) {
	t.Helper()
	ctx, cancel := bounded(ctx)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for _, s := range specs {
		topics := append([]string(nil), s.Inputs...)
		for _, r := range s.Repartitions {
			topics = append(topics, pipeline.RepartitionTopic(s.Group, r))
		}
		for {
			ok, err := CaughtUp(ctx, kopts, s.Group, topics...)
			if ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("group %s not caught up on %v: %v (last check: %v)", s.Group, topics, ctx.Err(), err)
			case <-tick.C:
			}
		}
	}
}

// CaughtUp reports whether group has committed past the last data record
// of each partition of topics, up to their last stable offsets now. Where a
// committed offset is short of the end, the records in between are read
// read_committed: a group is caught up when they are only transaction
// markers (a transactional topic's end is its last commit marker, which no
// consumer commits past) or records of aborted transactions. An error says
// why it could not tell; it is not caught up then.
func CaughtUp(ctx context.Context, kopts []kgo.Opt, group string, topics ...string) (bool, error) {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		// A group that never committed: nothing is consumed.
		committed, err = nil, nil
	}
	if err != nil {
		return false, fmt.Errorf("fetching %s's offsets: %w", group, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("listing end offsets: %w", err)
	}
	tail := map[string]map[int32]kgo.Offset{}
	left := map[topicPartition]int64{}
	partitions := 0
	ends.Each(func(o kadm.ListedOffset) {
		partitions++
		at := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At > 0 {
			at = c.At
		}
		if at >= o.Offset {
			return
		}
		if tail[o.Topic] == nil {
			tail[o.Topic] = map[int32]kgo.Offset{}
		}
		tail[o.Topic][o.Partition] = kgo.NewOffset().At(at)
		left[topicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	if len(left) == 0 {
		return true, nil
	}
	rd, err := kgo.NewClient(join(kopts, append([]kgo.Opt{
		kgo.ConsumePartitions(tail),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}, pipeline.FetchLimits(partitions)...))...)
	if err != nil {
		return false, err
	}
	defer rd.Close()
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		behind := false
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				behind = true
			}
			tp := topicPartition{Topic: r.Topic, Partition: r.Partition}
			if end, ok := left[tp]; ok && r.Offset >= end-1 {
				delete(left, tp)
			}
		})
		if behind {
			return false, nil
		}
	}
	return true, nil
}
