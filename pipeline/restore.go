package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// catchUpTargets returns, per partition of topic, the read_committed end
// offset (the last stable offset) that a reader must reach to have seen
// everything committed so far. Partitions with nothing to read are left
// out.
func catchUpTargets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	var starts, ends kadm.ListedOffsets
	err := retryListing(ctx, func() (err error) {
		if starts, err = listed(adm.ListStartOffsets(ctx, topic)); err != nil {
			return err
		}
		ends, err = listed(adm.ListCommittedOffsets(ctx, topic))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	targets := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			targets[o.Partition] = o.Offset
		}
	})
	return targets, nil
}

// listed is a listing's error, or the first error of a partition in it.
func listed(l kadm.ListedOffsets, err error) (kadm.ListedOffsets, error) {
	if err == nil {
		err = l.Error()
	}
	return l, err
}

// retryListing runs list until it succeeds, retrying what is retriable,
// briefly: a topic created a moment ago may not be in the client's metadata
// yet (UNKNOWN_TOPIC_OR_PARTITION), and a partition whose leader moved
// answers from the old leader until the metadata refreshes.
func retryListing(ctx context.Context, list func() error) error {
	for attempt := 0; ; attempt++ {
		err := list()
		if err == nil || !kerr.IsRetriable(err) || attempt == 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// catchUp reads topic with cl (which must consume it read_committed and keep
// control records) until every partition in targets has been read up to its
// target, calling apply for each data record. Control records are kept so
// that the reader can tell it has passed the last offset even when that
// offset is a transaction marker, which in a transactional topic it usually
// is.
//
// Usually, but not always: the record just below the target may be one the
// client never hands over. It may be a record of an aborted transaction
// whose abort marker lies past the target, behind a transaction still open
// (the target, the last stable offset, is where that open transaction
// begins); or compaction may have removed it (a superseded record, an
// expired tombstone, a marker whose transaction left no data). The client
// then has nothing more to hand over until the open transaction ends, up to
// its timeout, or until anything at all is written. franz-go hands a poll
// nothing for a fetch that brought no records, so it cannot say where its
// cursor stands. When a poll has been quiet for a while, catchUp therefore
// asks each remaining partition's leader directly (see drained) whether any
// record the client would hand over lies between the last one it handed
// over and the target; if none does, the partition is done.
func catchUp(ctx context.Context, cl *kgo.Client, topic string, targets map[int32]int64, apply func(*kgo.Record)) error {
	remaining := len(targets)
	// next is, per partition, the offset after the last record handed
	// over: whatever a read_committed reader could be handed below it,
	// it has been.
	next := make(map[int32]int64, len(targets))
	var probe *kgo.Client
	defer func() {
		if probe != nil {
			probe.Close()
		}
	}()
	quietFor := catchUpQuiet
	for remaining > 0 {
		pctx, cancel := context.WithTimeout(ctx, quietFor)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.IsClientClosed() {
			return fmt.Errorf("reading %s: client closed", topic)
		}
		quiet := false
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if t == "" && errors.Is(err, context.DeadlineExceeded) {
				// Our own deadline: nothing came within quietFor.
				quiet = true
				return
			}
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
		if quiet {
			if probe == nil {
				var err error
				if probe, err = probeClient(cl); err != nil {
					return fmt.Errorf("reading %s: %w", topic, err)
				}
			}
			for _, p := range drained(ctx, probe, topic, targets, next) {
				delete(targets, p)
				remaining--
			}
			// A partition that stays undecided is one whose records
			// are on their way, or whose leader did not answer: ask
			// less and less often.
			quietFor = min(2*quietFor, catchUpQuietMax)
			continue
		}
		quietFor = catchUpQuiet
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				apply(r)
			}
			next[r.Partition] = r.Offset + 1
			if end, ok := targets[r.Partition]; ok && r.Offset >= end-1 {
				delete(targets, r.Partition)
				remaining--
			}
		})
	}
	return nil
}

// catchUpQuiet is how long a catch-up poll waits for records before the
// leaders are asked whether anything is left below the targets, and
// catchUpQuietMax the longest it waits while they cannot tell. A restore
// whose last record the client hands over never waits at all.
const (
	catchUpQuiet    = 200 * time.Millisecond
	catchUpQuietMax = 2 * time.Second
)

// probeClient is a client with cl's connection options (brokers, TLS,
// SASL, dialer, logger) and none of its consuming or producing ones. The
// questions drained asks are fetches, and cl's fetch connection to a leader
// is taken by its own long poll, which the broker holds up to the fetch wait
// (5 s by default) when there is nothing to return, which is just when
// drained asks. A client of its own gets an answer at once.
func probeClient(cl *kgo.Client) (*kgo.Client, error) {
	var opts []kgo.Opt
	for _, o := range cl.Opts() {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt, kgo.ProducerOpt:
			continue
		}
		opts = append(opts, o)
	}
	return kgo.NewClient(opts...)
}

// drained returns the partitions of targets in which a read_committed reader
// that has been handed everything below next[p] (or, with no next[p],
// nothing yet) has nothing more to be handed below the partition's target.
// It asks each partition's leader for what a read_committed fetch from
// next[p] returns, as the client would: records of aborted transactions are
// dropped and removed records are simply absent. The partition is done if
// the answer holds no record below the target, control records included.
//
// Any doubt leaves a partition undecided, never done: an error, a
// throttled answer, batches that advance nothing. Then the client's own
// fetching goes on, and drained is asked again later.
func drained(ctx context.Context, probe *kgo.Client, topic string, targets, next map[int32]int64) []int32 {
	adm := kadm.NewClient(probe)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil
	}
	var done []int32
	for p, target := range targets {
		start, ok := starts.Lookup(topic, p)
		pd, known := td.Partitions[p]
		if !ok || start.Err != nil || !known || pd.Err != nil || pd.Leader < 0 {
			continue
		}
		// Below the log start nothing is left to hand over; the
		// client, finding its offset gone, resumes there too.
		from := max(next[p], start.Offset)
		if nothingBelow(ctx, probe.Broker(int(pd.Leader)), topic, td.ID, p, from, target) {
			done = append(done, p)
		}
	}
	return done
}

// nothingBelow reports whether a read_committed fetch of partition p from
// offset from, asked of its leader b, is handed no record below target.
func nothingBelow(ctx context.Context, b *kgo.Broker, topic string, id kadm.TopicID, p int32, from, target int64) bool {
	for from < target {
		req := kmsg.NewPtrFetchRequest()
		req.IsolationLevel = 1 // read_committed
		// The request's limit stays well above the partition's: kfake
		// leaves out the aborted-transaction list of a partition that
		// reaches the request's limit (DESIGN.md 4), and aborted
		// records taken for readable would only leave the partition
		// undecided, but for no reason.
		req.MaxBytes = 8 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = from
		// A leader returns the first batch at or after from whole
		// whatever the limit, so a small one only costs round trips
		// across long runs of aborted batches.
		rp.PartitionMaxBytes = 64 << 10
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := b.Request(ctx, req)
		if err != nil {
			return false
		}
		resp := kresp.(*kmsg.FetchResponse)
		// A throttled fetch comes back empty whatever the log holds.
		if resp.ErrorCode != 0 || resp.ThrottleMillis > 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return false
		}
		part := &resp.Topics[0].Partitions[0]
		if part.ErrorCode != 0 || part.Partition != p {
			return false
		}
		if len(part.RecordBatches) == 0 {
			// Nothing at or after from below the last stable offset:
			// done if that offset has not gone back below the target.
			return part.LastStableOffset >= target
		}
		fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: true,
			Offset:             from,
			IsolationLevel:     kgo.ReadCommitted(),
			Topic:              topic,
			Partition:          p,
		}, part, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil || after <= from {
			return false
		}
		for _, r := range fp.Records {
			if r.Offset < target {
				// The client will hand it over; catchUp sees it then.
				return false
			}
		}
		from = after
	}
	return true
}

// isDataLoss reports whether err is the client's report that a partition's
// log was cut back under it.
func isDataLoss(err error) bool {
	var loss *kgo.ErrDataLoss
	return errors.As(err, &loss)
}
