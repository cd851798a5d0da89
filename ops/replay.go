package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// A replay sends originals back to their source topics, exactly once.
//
// What it remembers: every error topic has a replay log, the compacted
// topic ReplayLogTopic(errorTopic), with one entry per error record
// replayed, keyed by the error record's coordinates. The originals and
// their entries are written in one transaction, so an original is on its
// source topic if and only if its entry is in the log (read_committed).
// A log rather than a consumer group's offsets: a replay chooses records
// by filters, and an offset would also mark as done the records it
// skipped.
//
// Why no second replay sends an original again: every replay of an error
// topic uses the transactional id ReplayTransactionalID(errorTopic). It
// first initialises its producer id, which fences any earlier replay of
// that topic still running and ends its open transaction (aborted), and
// only then reads the log, whose last stable offset is then past every
// transaction that will ever commit under an earlier epoch. So what it
// reads is everything replayed, and what it replays is not in it.
//
// Byte for byte: an original goes back with its key, value, headers and
// timestamp, to the partition it was read from. No replayed-from header is
// added, since that would change the headers the pipeline sees; the log
// says where each replayed original landed (topic, partition, offset).

// ReplayLogTopic is the replay log of errorTopic.
func ReplayLogTopic(errorTopic string) string { return errorTopic + ".replays" }

// ReplayTransactionalID is the transactional id of every replay of
// errorTopic.
func ReplayTransactionalID(errorTopic string) string { return "carepipe-replay-" + errorTopic }

// replayBatch is how many originals one replay transaction carries.
const replayBatch = 500

// replayTxnTimeout is the transaction timeout of a replay: a replay that
// dies with its transaction open holds read_committed readers of the
// source topics back this long, unless another replay fences it first.
const replayTxnTimeout = 30 * time.Second

// ReplayOptions are a replay's choices.
type ReplayOptions struct {
	// DryRun reads and reports, and writes nothing.
	DryRun bool
	// Progress, when set, receives a progress bar (ANSI carriage
	// returns: a terminal's), updated per transaction.
	Progress io.Writer
	// Planned, when set, is called for each error record whose original
	// the replay sends (or, dry, would send), before it is sent.
	Planned func(*ErrorRecord)

	// afterLogRead, when set, is called once the replay log is read: a
	// test's hook to let another replay run meanwhile.
	afterLogRead func()
}

// ReplayResult counts what a replay found and did.
type ReplayResult struct {
	// Selected counts the error records the filter selected.
	Selected int
	// Replayed counts originals sent (dry: that would be sent).
	Replayed int
	// AlreadyReplayed counts selected records in the replay log.
	AlreadyReplayed int
	// Unreplayable counts selected records whose original cannot be
	// recovered (truncated error records, foreign records), by reason.
	Unreplayable map[string]int
}

// replayEntry is the value of a replay log entry: where the original went.
// Coordinates only: no patient data.
type replayEntry struct {
	ErrorTopic     string `json:"errorTopic"`
	ErrorPartition int32  `json:"errorPartition"`
	ErrorOffset    int64  `json:"errorOffset"`
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	Offset         int64  `json:"offset"`
	ReplayedAt     string `json:"replayedAt"`
}

// Replay sends the originals of the error records of specs' error topics
// that f selects back to their source topics, each once across every
// replay, and returns what it did. It creates an error topic's replay log
// when it is missing (compacted, one partition). On an error, the
// transactions committed before it stand (Result counts them) and the
// open one is aborted: running it again goes on where it stopped.
func Replay(ctx context.Context, kopts []kgo.Opt, specs []pipeline.Spec, f Filter, o ReplayOptions) (*ReplayResult, error) {
	res := &ReplayResult{Unreplayable: map[string]int{}}
	for _, topic := range ErrorTopics(specs) {
		if err := replayTopic(ctx, kopts, specs, topic, f, o, res); err != nil {
			return res, fmt.Errorf("replaying %s: %w", topic, err)
		}
	}
	return res, nil
}

func replayTopic(ctx context.Context, kopts []kgo.Opt, specs []pipeline.Spec, topic string, f Filter, o ReplayOptions, res *ReplayResult) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var prod *kgo.Client
	if !o.DryRun {
		prod, err = kgo.NewClient(append(append([]kgo.Opt(nil), kopts...),
			kgo.TransactionalID(ReplayTransactionalID(topic)),
			kgo.TransactionTimeout(replayTxnTimeout),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
		)...)
		if err != nil {
			return err
		}
		defer prod.Close()
		// Fence earlier replays of this error topic before reading its
		// log: see the comment at the top of this file.
		if _, _, err := prod.ProducerID(ctx); err != nil {
			return fmt.Errorf("initialising the replay's transactional producer: %w", err)
		}
		if err := ensureReplayLog(ctx, adm, topic); err != nil {
			return err
		}
	}
	done := map[string]bool{}
	err = readCommitted(ctx, kopts, adm, ReplayLogTopic(topic), func(r *kgo.Record) error {
		done[string(r.Key)] = true
		return nil
	})
	if err != nil && !(o.DryRun && isNoTopic(err)) {
		return fmt.Errorf("reading the replay log: %w", err)
	}
	if o.afterLogRead != nil {
		o.afterLogRead()
	}
	// First pass: what to replay, kept as coordinates only, so that a
	// large error topic is never held in memory; the second pass reads
	// the originals again, a transaction's worth at a time.
	todo := map[int32]map[int64]bool{}
	total := 0
	err = readErrorTopic(ctx, kopts, adm, specs, topic, f, func(e *ErrorRecord) error {
		res.Selected++
		switch {
		case done[e.Coordinates()]:
			res.AlreadyReplayed++
		case e.Original == nil:
			res.Unreplayable[e.Unreplayable]++
		default:
			if todo[e.Partition] == nil {
				todo[e.Partition] = map[int64]bool{}
			}
			todo[e.Partition][e.Offset] = true
			total++
			if o.DryRun {
				if o.Planned != nil {
					o.Planned(e)
				}
				res.Replayed++
			}
		}
		return nil
	})
	if err != nil || o.DryRun || total == 0 {
		return err
	}
	bar := newProgress(o.Progress, total)
	defer bar.finish()
	from := map[int32]int64{}
	for p, offs := range todo {
		from[p] = -1
		for off := range offs {
			if from[p] < 0 || off < from[p] {
				from[p] = off
			}
		}
	}
	original, ok := originalValueOf(specs, topic)
	var batch []*ErrorRecord
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := replayTxn(ctx, prod, topic, batch); err != nil {
			return err
		}
		res.Replayed += len(batch)
		bar.set(res.Replayed)
		batch = batch[:0]
		return nil
	}
	left := total
	err = readCommittedFrom(ctx, kopts, adm, topic, from, func(r *kgo.Record) error {
		if !todo[r.Partition][r.Offset] {
			return nil
		}
		e := parseErrorRecord(r, original, !ok)
		if e.Type == string(pipeline.TypeTruncated) {
			if err := recoverFromSource(ctx, kopts, adm, e); err != nil {
				return err
			}
		}
		if e.Original == nil {
			// Its source record went between the passes.
			res.Unreplayable[e.Unreplayable]++
		} else {
			if o.Planned != nil {
				o.Planned(e)
			}
			batch = append(batch, e)
		}
		left--
		if len(batch) == replayBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		if left == 0 {
			return errStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// replayTxn sends batch's originals and their log entries in one
// transaction.
func replayTxn(ctx context.Context, prod *kgo.Client, topic string, batch []*ErrorRecord) (err error) {
	if err := prod.BeginTransaction(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Abort whatever was produced: nothing of this batch
			// commits, its originals stay unreplayed.
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = prod.AbortBufferedRecords(actx)
			_ = prod.EndTransaction(actx, kgo.TryAbort)
		}
	}()
	// produce sends recs and waits for every one to be acknowledged;
	// each then has its offset.
	produce := func(recs []*kgo.Record) error {
		results := make(chan error, len(recs))
		for _, r := range recs {
			prod.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- err })
		}
		var first error
		for range recs {
			if err := <-results; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	originals := make([]*kgo.Record, len(batch))
	for i, e := range batch {
		r := *e.Original
		originals[i] = &r
	}
	if err := produce(originals); err != nil {
		return fmt.Errorf("sending originals: %w", err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	entries := make([]*kgo.Record, len(batch))
	for i, e := range batch {
		v, err := json.Marshal(replayEntry{
			ErrorTopic: e.Topic, ErrorPartition: e.Partition, ErrorOffset: e.Offset,
			Topic: originals[i].Topic, Partition: originals[i].Partition, Offset: originals[i].Offset, ReplayedAt: now,
		})
		if err != nil {
			return err
		}
		entries[i] = &kgo.Record{Topic: ReplayLogTopic(topic), Partition: 0, Key: []byte(e.Coordinates()), Value: v}
	}
	if err := produce(entries); err != nil {
		return fmt.Errorf("writing the replay log: %w", err)
	}
	return prod.EndTransaction(ctx, kgo.TryCommit)
}

// ensureReplayLog creates the replay log of errorTopic when it is missing:
// compacted (an entry per replayed error record, for good), one partition.
func ensureReplayLog(ctx context.Context, adm *kadm.Client, errorTopic string) error {
	name := ReplayLogTopic(errorTopic)
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the replay log %s: %w", name, err)
	}
	return nil
}
