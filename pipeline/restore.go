package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// catchUpTargets returns, per partition of topic (all partitions when parts
// is nil), the read_committed end offset (the last stable offset) that a
// reader must reach to have seen everything committed so far. Partitions
// with nothing to read are left out.
func catchUpTargets(ctx context.Context, adm *kadm.Client, topic string, parts []int32) (map[int32]int64, error) {
	var starts, ends kadm.ListedOffsets
	// A topic created a moment ago may not be in the client's metadata
	// yet (UNKNOWN_TOPIC_OR_PARTITION), and a partition whose leader moved
	// answers from the old leader until the metadata refreshes: retry what
	// is retriable, briefly.
	for attempt := 0; ; attempt++ {
		var err error
		starts, err = adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err == nil {
			ends, err = adm.ListCommittedOffsets(ctx, topic)
			if err == nil {
				err = ends.Error()
			}
		}
		if err == nil {
			break
		}
		if !kerr.IsRetriable(err) || attempt == 50 {
			return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	want := func(p int32) bool {
		if parts == nil {
			return true
		}
		for _, q := range parts {
			if q == p {
				return true
			}
		}
		return false
	}
	targets := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if !want(o.Partition) {
			return
		}
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			targets[o.Partition] = o.Offset
		}
	})
	return targets, nil
}

// catchUp reads topic with cl (which must consume it read_committed and keep
// control records) until every partition in targets has been read up to its
// target, calling apply for each data record. Control records are kept so
// that the reader can tell it has passed the last offset even when that
// offset is a transaction marker, which in a transactional topic it always
// is.
func catchUp(ctx context.Context, cl *kgo.Client, topic string, targets map[int32]int64, apply func(*kgo.Record)) error {
	remaining := len(targets)
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.IsClientClosed() {
			return fmt.Errorf("reading %s: client closed", topic)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			// Data loss too is an error here: what was read before the
			// log was cut back is in the state already, and the targets
			// may now lie past the log's end. The caller starts over.
			if ferr == nil {
				ferr = fmt.Errorf("reading %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				apply(r)
			}
			if end, ok := targets[r.Partition]; ok && r.Offset >= end-1 {
				delete(targets, r.Partition)
				remaining--
			}
		})
	}
	return nil
}

// isDataLoss reports whether err is the client's report that a partition's
// log was cut back under it.
func isDataLoss(err error) bool {
	var loss *kgo.ErrDataLoss
	return errors.As(err, &loss)
}
