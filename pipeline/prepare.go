package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// keepStoreFor bounds how long a store may go unconfirmed and still be
// caught up from its position when its partition comes back, rather than
// restored from the changelog's start. Catching up applies what was
// committed past the position; a delete committed there by another owner
// is a tombstone, which compaction removes delete.retention.ms after
// cleaning (24 hours by default). A store confirmed less than an hour ago
// cannot have missed a tombstone that is already gone, unless a changelog
// is configured with a delete.retention.ms under an hour.
const keepStoreFor = time.Hour

// restoreAction is what preparing a store does, decided by [planRestore].
type restoreAction int

const (
	// restoreWait: the changelog partition has an open transaction, so
	// what it will hold is not known yet. List again.
	restoreWait restoreAction = iota
	// restoreKeep: nothing lies past the store's position.
	restoreKeep
	// restoreCatchUp: apply what was committed from the position on.
	restoreCatchUp
	// restoreFull: empty the store and read the partition from its start.
	restoreFull
)

func (a restoreAction) String() string {
	switch a {
	case restoreWait:
		return "wait"
	case restoreKeep:
		return "kept"
	case restoreCatchUp:
		return "caught_up"
	default:
		return "full"
	}
}

// planRestore decides how to bring a store to its changelog partition's
// committed state, from the partition's log start, last stable offset and
// end as just listed, the store's position (-1: not known) and whether the
// store is fresh (confirmed within keepStoreFor).
//
// It waits whenever the last stable offset is short of the end, that is,
// while any transaction that wrote the partition is open. A previous
// owner's last transaction may have committed its offsets, which is what
// lets this instance's group consumer start, while the commit marker has
// yet to reach the changelog partition: on a real cluster the coordinator
// writes the markers to each partition independently, in no set order.
// Reading up to the stable offset of that moment would skip the committed
// state, and the input records behind it would never be replayed, since
// their offsets are committed. Once the stable offset equals the end, every
// transaction that wrote the partition has ended, and a zombie's later
// writes cannot commit (its offset commits fail the generation check, and
// its timer-only transactions the membership check; see Runner.endTxnOf).
// A foreign transaction can hold the wait up to its transaction timeout;
// on a changelog only this pipeline's instances write, so that is a
// previous owner's, whose outcome the state must reflect.
func planRestore(start, stable, end, pos int64, fresh bool) restoreAction {
	switch {
	case stable < end:
		return restoreWait
	case pos < 0 || !fresh || pos < start || pos > end:
		// No position; or it is too old to trust; or records it needs
		// were deleted; or the log was cut back below it.
		return restoreFull
	case pos == end:
		return restoreKeep
	default:
		return restoreCatchUp
	}
}

// prepare brings every store of the task to its changelog's committed
// state, outside any transaction: the partition's fetching is paused until
// it returns.
func (t *task) prepare(ctx context.Context) error {
	confirmed := t.confirmedAt.Load()
	fresh := confirmed != 0 && time.Since(time.Unix(0, confirmed)) < keepStoreFor
	for _, s := range t.stores {
		if err := t.prepareStore(ctx, s, fresh); err != nil {
			return fmt.Errorf("store %s: %w", s.name, err)
		}
	}
	t.confirmedAt.Store(time.Now().UnixNano())
	return nil
}

func (t *task) prepareStore(ctx context.Context, s *Store, fresh bool) error {
	topic := ChangelogTopic(t.r.spec.Group, s.name)
	backoff := 20 * time.Millisecond
	waitingSince := time.Time{}
	for {
		o, err := listPartitionOffsets(ctx, t.r.adm, topic, t.partition)
		if err != nil {
			return err
		}
		pos := s.pos.Load()
		action := planRestore(o.start, o.stable, o.end, pos, fresh)
		if action == restoreWait {
			if waitingSince.IsZero() {
				waitingSince = time.Now()
			} else if time.Since(waitingSince) > 5*time.Second {
				t.r.errLog.warn("changelog partition has an open transaction; its state waits for it to end",
					"topic", topic, "partition", t.partition, "stable_offset", o.stable, "end_offset", o.end)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		from := pos
		if action == restoreFull {
			s.reset()
			from = o.start
		}
		n := 0
		if action != restoreKeep && o.end > from {
			n, err = t.readChangelog(ctx, topic, from, o.end, s)
			if err != nil {
				return err
			}
		}
		s.pos.Store(o.end)
		t.r.m.restore(action).Inc()
		t.r.m.restoredRecords.Add(n)
		t.r.log.Info("state prepared", "store", s.name, "partition", t.partition,
			"how", action.String(), "records", n, "keys", s.Len())
		return nil
	}
}

// readChangelog applies the committed records of the task's partition of
// topic, from offset from up to end, to s, and returns how many it applied.
func (t *task) readChangelog(ctx context.Context, topic string, from, end int64, s *Store) (int, error) {
	opts := append(t.r.clientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(append(opts, FetchLimits(1)...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	err = catchUp(ctx, cl, topic, map[int32]int64{t.partition: end}, func(r *kgo.Record) {
		s.restore(string(r.Key), r.Value)
		n++
	})
	return n, err
}

// partitionOffsets are one partition's log start, last stable offset and
// end (high watermark).
type partitionOffsets struct{ start, stable, end int64 }

// listPartitionOffsets lists partition p of topic's offsets, retrying what
// is retriable (see retryListing).
func listPartitionOffsets(ctx context.Context, adm *kadm.Client, topic string, p int32) (partitionOffsets, error) {
	var o partitionOffsets
	err := retryListing(ctx, func() error {
		for _, l := range []struct {
			list func(context.Context, ...string) (kadm.ListedOffsets, error)
			into *int64
		}{
			{adm.ListStartOffsets, &o.start},
			{adm.ListCommittedOffsets, &o.stable},
			{adm.ListEndOffsets, &o.end},
		} {
			offsets, err := listed(l.list(ctx, topic))
			if err != nil {
				return err
			}
			lo, ok := offsets.Lookup(topic, p)
			if !ok {
				return fmt.Errorf("partition %d of %s not listed: %w", p, topic, kerr.UnknownTopicOrPartition)
			}
			*l.into = lo.Offset
		}
		return nil
	})
	if err != nil {
		return o, fmt.Errorf("listing offsets of %s partition %d: %w", topic, p, err)
	}
	return o, nil
}
