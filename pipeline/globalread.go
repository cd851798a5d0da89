package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// This file reads the global tables: the restore before processing starts,
// and the reader that keeps each table up to date while the pipeline runs.

// globalReader keeps one global table in step with its topic.
type globalReader struct {
	r *Runner
	g *GlobalTable
	// The two warnings are rate-limited apart, so that a run of records
	// that do not decode cannot hide a fetch error.
	decodeLog, fetchLog *limitedLog
}

// globalReadError is why a global table's reader stopped for good: what
// retrying cannot fix. Run returns its error.
type globalReadError struct{ err error }

func (e *globalReadError) Error() string { return e.err.Error() }
func (e *globalReadError) Unwrap() error { return e.err }

// startGlobals restores every global table from its topic, then keeps each
// up to date in a goroutine that wg waits for, until ctx ends. A reader that
// meets an error retrying cannot fix (authorization or authentication, as
// isFatal has it) calls stop with a *globalReadError, and ends.
func (r *Runner) startGlobals(ctx context.Context, wg *sync.WaitGroup, stop context.CancelCauseFunc) error {
	for _, g := range r.globals {
		gr := &globalReader{
			r:         r,
			g:         g,
			decodeLog: &limitedLog{l: r.log, every: time.Second},
			fetchLog:  &limitedLog{l: r.log, every: time.Second},
		}
		// Registered now so that they read 0, not absent, until the
		// first time.
		r.m.globalRebuild(g.Topic())
		for _, c := range []string{fetchErrDataLoss, fetchErrUnknownTopicID, fetchErrAuthorization, fetchErrAuthentication, fetchErrOther} {
			r.m.globalFetchError(g.Topic(), c)
		}
		cl, err := gr.restore(ctx)
		if err != nil {
			return err
		}
		r.log.Info("global table restored", "topic", g.Topic(), "keys", g.Len())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gr.follow(ctx, cl); err != nil {
				r.log.Error("global table can no longer be read; stopping the pipeline",
					"topic", g.Topic(), "error_class", fetchErrorClass(err), "error", err)
				stop(&globalReadError{err})
			}
		}()
	}
	return nil
}

// restore reads the table's topic up to its last stable offset into a new
// map, which becomes the table, and returns the client, positioned to read
// on. When the client reports data loss (the log was cut back under it),
// the restore starts over a few times: the table must hold what the topic
// holds, not what it once did.
func (gr *globalReader) restore(ctx context.Context) (*kgo.Client, error) {
	for attempt := 1; ; attempt++ {
		cl, data, err := gr.read(ctx)
		if err == nil {
			gr.g.replace(data)
			return cl, nil
		}
		if !isDataLoss(err) || attempt == 3 {
			return nil, fmt.Errorf("restoring global table %s: %w", gr.g.Topic(), err)
		}
		gr.r.log.Warn("global table restore starts over: the topic's log was cut back", "topic", gr.g.Topic(), "attempt", attempt)
	}
}

// read reads the table's topic from its start up to the last stable offset
// into a map of its own, which it returns with the client, positioned to
// read on. Nothing reads the map until read returns.
func (gr *globalReader) read(ctx context.Context) (*kgo.Client, map[string]any, error) {
	topic := gr.g.Topic()
	targets, err := catchUpTargets(ctx, gr.r.adm, topic)
	if err != nil {
		return nil, nil, err
	}
	opts := append(gr.r.clientOpts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	// The reader goes on tailing every partition: bound it by the topic's
	// partitions (those with records, and at least the pipeline's count).
	cl, err := kgo.NewClient(append(opts, FetchLimits(max(len(targets), int(gr.r.numPartitions.Load())))...)...)
	if err != nil {
		return nil, nil, err
	}
	data := make(map[string]any)
	err = catchUp(ctx, cl, topic, targets, func(rec *kgo.Record) {
		if v, err := gr.g.decode(rec.Key, rec.Value); err != nil {
			gr.skipped(rec)
		} else {
			put(data, rec.Key, v)
		}
	})
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return cl, data, nil
}

// skipped counts and reports a record that Decode refused.
func (gr *globalReader) skipped(rec *kgo.Record) {
	gr.r.m.globalDecodeErrors.Inc()
	gr.decodeLog.warn("global table record skipped", "topic", rec.Topic,
		"partition", rec.Partition, "offset", rec.Offset, "error_type", "decode")
}

// follow applies what cl reads to the table until ctx ends, and handles
// what the fetches report:
//
//   - data loss (the log was cut back under the reader, and the client has
//     already moved on from wherever it could), or a topic id the client no
//     longer knows (the topic was deleted and created again, which franz-go
//     never follows): the table is rebuilt from the topic's start, as at
//     start-up, and swapped in whole (see rebuild);
//   - an error retrying cannot fix (isFatal: an ACL taken away, credentials
//     refused): follow returns it, and the pipeline stops, as it does when
//     its session meets one. A table that can no longer follow its topic
//     would otherwise go on enriching from an ever older copy while the
//     pipeline says it is ready, and the next start fails anyway;
//   - anything else: franz-go retries it itself; it is counted and logged.
//
// Every error is counted by class and logged, rate-limited, with its
// coordinates and class only.
func (gr *globalReader) follow(ctx context.Context, cl *kgo.Client) error {
	topic := gr.g.Topic()
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		var fatal, restart error
		fs.EachError(func(t string, p int32, err error) {
			class := fetchErrorClass(err)
			gr.r.m.globalFetchError(topic, class).Inc()
			args := []any{"topic", t, "partition", p, "error_class", class}
			var ke *kerr.Error
			if errors.As(err, &ke) {
				args = append(args, "kafka_error", ke.Message)
			}
			gr.fetchLog.warn("global table fetch error", args...)
			switch {
			case isFatal(err):
				if fatal == nil {
					fatal = gr.r.authzError(fmt.Errorf("reading global table %s partition %d: %w", topic, p, err), topic, "READ")
				}
			case class == fetchErrDataLoss || class == fetchErrUnknownTopicID:
				restart = err
			}
		})
		if fatal != nil {
			return fatal
		}
		if restart != nil {
			// Records in this poll are skipped: the rebuild reads
			// everything the topic holds.
			cl.Close()
			var err error
			if cl, err = gr.rebuild(ctx, fetchErrorClass(restart)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Attrs.IsControl() {
				return
			}
			if err := gr.g.apply(rec.Key, rec.Value); err != nil {
				gr.skipped(rec)
			}
		})
	}
}

// rebuild reads the table again from its topic's start with a new client,
// as start-up does, into a map of its own, and swaps it in whole once it
// has reached the last stable offset. Processors go on reading the old
// table meanwhile: they never see one emptied or half-read, only the old
// one, possibly holding keys the topic lost, until the swap. Failures are
// retried with backoff until ctx ends, except those isFatal reports, which
// rebuild returns.
func (gr *globalReader) rebuild(ctx context.Context, why string) (*kgo.Client, error) {
	topic := gr.g.Topic()
	gr.r.log.Warn("global table is read again from its topic's start", "topic", topic, "reason", why)
	backoff := gr.r.cfg.sessionBackoff
	for {
		cl, data, err := gr.read(ctx)
		if err == nil {
			gr.g.replace(data)
			gr.r.m.globalRebuild(topic).Inc()
			gr.r.log.Info("global table rebuilt", "topic", topic, "keys", gr.g.Len())
			return cl, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isFatal(err) {
			return nil, gr.r.authzError(fmt.Errorf("rebuilding global table %s: %w", topic, err), topic, "READ")
		}
		gr.fetchLog.warn("global table rebuild failed; retrying", "topic", topic,
			"error_class", fetchErrorClass(err), "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// The classes of a global table reader's fetch errors: a metric label, so a
// fixed set.
const (
	fetchErrDataLoss       = "data_loss"
	fetchErrUnknownTopicID = "unknown_topic_id"
	fetchErrAuthorization  = "authorization"
	fetchErrAuthentication = "authentication"
	fetchErrOther          = "other"
)

func fetchErrorClass(err error) string {
	switch {
	case isDataLoss(err):
		return fetchErrDataLoss
	case errors.Is(err, kerr.UnknownTopicID):
		return fetchErrUnknownTopicID
	case errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fetchErrAuthorization
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fetchErrAuthentication
	}
	return fetchErrOther
}
