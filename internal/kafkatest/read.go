package kafkatest

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// ReadToEnd reads topics read_committed with an independent consumer, from
// their start up to their last stable offsets as listed when it is called:
// every record committed so far. It fails t if ctx ends first.
func ReadToEnd(ctx context.Context, t testing.TB, kopts []kgo.Opt, topics ...string) []*kgo.Record {
	t.Helper()
	return ReadToEndAt(ctx, t, kopts, kgo.ReadCommitted(), topics...)
}

// ReadToEndAt is [ReadToEnd] at an isolation level: read_uncommitted reads
// up to the high watermarks and returns the records of aborted and open
// transactions too.
//
// Control records are read as well, so that an end that is a transaction
// marker is seen exactly; only data records are returned, in the order
// each partition holds them.
func ReadToEndAt(ctx context.Context, t testing.TB, kopts []kgo.Opt, level kgo.IsolationLevel, topics ...string) []*kgo.Record {
	t.Helper()
	ctx, cancel := bounded(ctx)
	defer cancel()
	ends, partitions, err := listEnds(ctx, kopts, level, topics)
	if err != nil {
		t.Fatalf("reading %v to its end: %v", topics, err)
	}
	left := map[topicPartition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[topicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		}
	})
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(join(kopts, readOpts(level, partitions, topics, kgo.KeepControlRecords()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	var last error
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %v to its end: %v with partitions %v unread (last fetch error: %v)", topics, ctx.Err(), left, last)
		}
		fs.EachError(func(_ string, _ int32, err error) { last = err })
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			tp := topicPartition{Topic: r.Topic, Partition: r.Partition}
			if end, ok := left[tp]; ok && r.Offset >= end-1 {
				delete(left, tp)
			}
		})
	}
	return out
}

// ReadUntil reads topics read_committed with an independent consumer from
// their start until done accepts the data records read so far, and returns
// them. It fails t if ctx ends first. Unlike [ReadToEnd] it waits for
// records not yet written.
func ReadUntil(ctx context.Context, t testing.TB, kopts []kgo.Opt, done func([]*kgo.Record) bool, topics ...string) []*kgo.Record {
	t.Helper()
	ctx, cancel := bounded(ctx)
	defer cancel()
	_, partitions, err := listEnds(ctx, kopts, kgo.ReadCommitted(), topics)
	if err != nil {
		t.Fatalf("reading %v: %v", topics, err)
	}
	cl, err := kgo.NewClient(join(kopts, readOpts(kgo.ReadCommitted(), partitions, topics))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	var last error
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %v: %v after %d records without the expected ones (last fetch error: %v)", topics, ctx.Err(), len(out), last)
		}
		fs.EachError(func(_ string, _ int32, err error) { last = err })
		out = append(out, fs.Records()...)
	}
	return out
}

// ReadN is [ReadUntil] for at least n records.
func ReadN(ctx context.Context, t testing.TB, kopts []kgo.Opt, n int, topics ...string) []*kgo.Record {
	t.Helper()
	return ReadUntil(ctx, t, kopts, func(rs []*kgo.Record) bool { return len(rs) >= n }, topics...)
}

// readOpts consumes topics from their start at level. kfake can return
// aborted records to a read_committed reader whose response reaches its
// byte limit: the runtime's fetch limits for the topics' partitions keep it
// under.
func readOpts(level kgo.IsolationLevel, partitions int, topics []string, more ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level),
	}
	return append(append(opts, more...), pipeline.FetchLimits(partitions)...)
}

// listEnds lists topics' end offsets at level (last stable offsets
// read_committed, high watermarks read_uncommitted) and counts their
// partitions.
func listEnds(ctx context.Context, kopts []kgo.Opt, level kgo.IsolationLevel, topics []string) (kadm.ListedOffsets, int, error) {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	list := adm.ListCommittedOffsets
	if level == kgo.ReadUncommitted() {
		list = adm.ListEndOffsets
	}
	ends, err := list(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("listing end offsets: %w", err)
	}
	n := 0
	ends.Each(func(kadm.ListedOffset) { n++ })
	return ends, n, nil
}

type topicPartition struct {
	Topic     string
	Partition int32
}
