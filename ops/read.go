package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// errNoTopic is a topic that does not exist.
var errNoTopic = errors.New("topic does not exist")

// readCommitted reads topic read_committed from its start up to its last
// stable offset as of the call, calling each for every data record in
// partition and offset order within each partition. It does not wait for
// what is written meanwhile, and an open transaction ends the read of its
// partition where it starts.
func readCommitted(ctx context.Context, kopts []kgo.Opt, adm *kadm.Client, topic string, each func(*kgo.Record) error) error {
	return readCommittedFrom(ctx, kopts, adm, topic, nil, each)
}

// errStop ends a read early, without an error.
var errStop = errors.New("stop reading")

// readCommittedFrom is readCommitted of the partitions in at only, each
// from its offset there (nil: every partition from its start). each may
// return errStop to end the read.
func readCommittedFrom(ctx context.Context, kopts []kgo.Opt, adm *kadm.Client, topic string, at map[int32]int64, each func(*kgo.Record) error) error {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%s: %w", topic, errNoTopic)
	}
	if err != nil {
		return fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		start := s.Offset
		if at != nil {
			a, ok := at[o.Partition]
			if !ok {
				return
			}
			start = max(start, a)
		}
		if o.Offset > start {
			from[o.Partition] = kgo.NewOffset().At(start)
			left[o.Partition] = o.Offset
		}
	})
	if len(left) == 0 {
		return nil
	}
	// Control records are kept so that a partition whose last stable
	// offset follows a transaction marker is seen to end.
	opts := append(append([]kgo.Opt(nil), kopts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	opts = append(opts, pipeline.FetchLimits(len(from))...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("reading %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var cerr error
		fs.EachRecord(func(r *kgo.Record) {
			end, reading := left[r.Partition]
			if !reading || cerr != nil {
				return
			}
			if r.Offset >= end {
				delete(left, r.Partition)
				return
			}
			if !r.Attrs.IsControl() {
				cerr = each(r)
			}
			if r.Offset >= end-1 {
				delete(left, r.Partition)
			}
		})
		if errors.Is(cerr, errStop) {
			return nil
		}
		if cerr != nil {
			return cerr
		}
	}
	return nil
}

func isNoTopic(err error) bool { return errors.Is(err, errNoTopic) }
