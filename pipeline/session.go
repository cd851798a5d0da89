package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// session is one GroupTransactSession and what lives exactly as long as
// it: its assignment, its wake-up, its commit barrier and its open
// transaction's outcome so far. runSession creates it and drops it when it
// returns; the next session starts from a new one, never from one reset
// by hand. What outlives a session is the Runner's: the tasks and their
// stores, the topics' limits, and what Health reports.
type session struct {
	r   *Runner
	gts *kgo.GroupTransactSession
	// synced is the session's record of its syncs: the assignment
	// onAssigned reads.
	synced *syncedAssignment
	// errLimit is the error topic's batch cap the session's producer was
	// built with: the producer keeps it for its life, so an error record
	// is built for it (see errorTopicRefused).
	errLimit int64
	fatal    chan error // first task failure of the session

	// assigned is the session's assignment, by partition number, as the
	// group last gave it: onAssigned sets it whole and onRevoked takes
	// from it. Ownership is read from here, never counted from callbacks:
	// franz-go's GroupTransactSession passes on only the first revoke
	// between two transaction ends (DESIGN.md §4). epoch counts its
	// changes; the poll loop compares it with the epoch it last
	// reconciled the tasks to. Both are guarded by the runner's mu.
	assigned map[int32]struct{}
	epoch    uint64

	// wake cancels the poll in progress, so that the poll loop sees a new
	// assignment at once rather than after its poll returns.
	wakeMu sync.Mutex
	wake   context.CancelFunc

	// inflight counts batches enqueued to tasks and not yet processed: the
	// commit barrier.
	inflight sync.WaitGroup
	// produced counts records produced in the open transaction.
	produced atomic.Int64
	// doomed is set when the open transaction must not commit: a produce
	// of it failed, or a task failed to process what it was given.
	doomed atomic.Bool
}

func (r *Runner) newSession() *session {
	return &session{
		r:        r,
		synced:   new(syncedAssignment),
		errLimit: int64(r.errorLimit()),
		fatal:    make(chan error, 1),
		assigned: make(map[int32]struct{}),
	}
}

func (r *Runner) sessionOpts(s *session) []kgo.Opt {
	synced, errLimit := s.synced, s.errLimit
	// The session timeout and heartbeat go first, so that WithKafka's
	// (tests') win over them.
	opts := append([]kgo.Opt{
		kgo.SessionTimeout(r.cfg.sessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.cfg.sessionTimeout/3)),
	}, r.clientOpts()...)
	opts = append(opts, fetchLimitsFor(len(r.spec.consumedTopics())*int(r.numPartitions.Load()), r.inputMaxBytes)...)
	if r.cfg.instanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.instanceID))
	}
	return append(opts,
		kgo.ConsumerGroup(r.spec.Group),
		kgo.ConsumeTopics(r.spec.consumedTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.TransactionalID(r.txnID),
		kgo.TransactionTimeout(r.cfg.txnTimeout),
		// Stable offset fetches (KIP-447), which keep a new owner from
		// reading offsets of a transaction still in flight, are always on
		// in franz-go v1.22: RequireStableFetchOffsets is a no-op there.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Cooperative and co-partitioned (see copartitioned); range
		// while a member that offers nothing else is in the group.
		kgo.Balancers(&copartitioned{synced: synced, advertise: r.cfg.advertiseHTTP}, rangeRecorder{GroupBalancer: kgo.RangeBalancer(), synced: synced}),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		kgo.RecordPartitioner(partitioner{manual: r.changelogs, byKey: kgo.StickyKeyPartitioner(nil)}),
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if topic == r.spec.ErrorTopic {
				return int32(errLimit)
			}
			return int32(r.recordLimit(topic))
		}),
	)
}

// runSession runs one GroupTransactSession until ctx ends or it fails.
//
// The loop is the only caller of Begin, PollRecords and End, and the only
// one that starts tasks. Each commit interval it begins a transaction when
// the first record arrives, hands batches to partition tasks, and at the
// interval's end (or the record cap) waits for the tasks to finish what
// they were given, adds the state changelog writes, and ends the
// transaction.
//
// Assignment changes come from the client's goroutine: onAssigned and
// onRevoked halt the tasks concerned, pause the newly assigned partitions'
// fetching, record the assignment and wake the loop. The loop then aborts
// the open transaction, which rolls every store back to the last commit,
// and activates a task for each assigned partition: it prepares its state
// outside any transaction and then resumes its partition's fetching. A
// transaction therefore never waits for a restore, and never holds records
// of a partition whose state is not in place.
func (r *Runner) runSession(ctx context.Context) (err error) {
	s := r.newSession()
	sess, err := kgo.NewGroupTransactSession(r.sessionOpts(s)...)
	if err != nil {
		return err
	}
	s.gts = sess
	r.mu.Lock()
	r.cur = s
	r.mu.Unlock()
	// Initialise the producer id now rather than at the first Begin: with a
	// stable instance id this fences a predecessor at once and aborts its
	// open transaction, which otherwise holds our stable offset fetch until
	// the transaction times out.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		sess.Close()
		return fmt.Errorf("initialising the transactional producer: %w", err)
	}
	var tx *txn // the open transaction; nil while none is
	defer func() {
		if tx != nil {
			// Failing out of an open transaction: abort it so that
			// readers are not held back until it times out.
			s.inflight.Wait()
			actx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
			_, _ = sess.End(actx, kgo.TryAbort)
			cancel()
			r.forEachStore(func(st *Store) { st.abort() })
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		defer cancel()
		// Leaving the group revokes everything, which halts the tasks.
		if lerr := sess.Client().LeaveGroupContext(closeCtx); lerr != nil {
			r.log.Warn("leaving the group", "error", lerr)
		}
		sess.Close()
		// The tasks and their stores outlive the session: the next one
		// checks them against their changelogs rather than restoring
		// them from zero.
		r.endSession()
	}()
	r.ready.Store(true)

	var (
		epoch    uint64 // the assignment the tasks were last reconciled to
		nextTick = time.Now().Add(r.spec.punctuateEvery())
	)
	punctuates := r.spec.Punctuate != nil
	for {
		select {
		case err := <-s.fatal:
			return err
		default:
		}
		// The open transaction ends here, when it is due, when the
		// assignment changed under it or when the runner stops; decide
		// says so, and how.
		stopping := ctx.Err() != nil
		current := s.currentEpoch()
		if tx != nil {
			iv := s.interval(tx, stopping, current)
			if a := decide(iv); a == txnCommit || a == txnAbort {
				ending := tx
				tx = nil
				if err := s.endTxn(ending, iv); err != nil || stopping {
					return err
				}
				// It may have changed while the transaction ended.
				current = s.currentEpoch()
			}
		}
		if stopping {
			return ctx.Err()
		}
		if current != epoch {
			// No transaction is open: one that began under epoch has
			// just ended, reassigned.
			epoch = s.reconcile()
			continue
		}

		var (
			pollCtx context.Context
			cancel  context.CancelFunc
		)
		switch {
		case tx != nil && punctuates:
			pollCtx, cancel = context.WithDeadline(ctx, minTime(tx.deadline, nextTick))
		case tx != nil:
			pollCtx, cancel = context.WithDeadline(ctx, tx.deadline)
		case punctuates:
			pollCtx, cancel = context.WithDeadline(ctx, nextTick)
		default:
			pollCtx, cancel = context.WithCancel(ctx)
		}
		s.wakeMu.Lock()
		s.wake = cancel
		s.wakeMu.Unlock()
		if s.currentEpoch() != epoch {
			// Changed between the check above and the registration:
			// the wake may have been missed.
			cancel()
		}
		fs := sess.PollRecords(pollCtx, r.cfg.commitRecords)
		s.wakeMu.Lock()
		s.wake = nil
		s.wakeMu.Unlock()
		cancel()
		if fs.IsClientClosed() {
			return errors.New("client closed")
		}
		var ferr error
		fs.EachError(func(t string, p int32, e error) {
			if errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
				return
			}
			if errors.Is(e, kerr.FencedInstanceID) && ferr == nil {
				ferr = &DuplicateInstanceError{Pipeline: r.spec.Name, Group: r.spec.Group, InstanceID: r.cfg.instanceID}
				return
			}
			if isFatal(e) && ferr == nil {
				if t == "" {
					// A group error: franz-go reports it with no topic.
					ferr = r.authzError(fmt.Errorf("consumer group %s: %w", r.spec.Group, e), "", "")
				} else {
					ferr = r.authzError(fmt.Errorf("consuming %s partition %d: %w", t, p, e), t, "READ")
				}
			}
			r.log.Warn("fetch error", "topic", t, "partition", p, "error", e)
		})
		if ferr != nil {
			return ferr
		}

		n := fs.NumRecords()
		punctuation := false
		if punctuates && !time.Now().Before(nextTick) {
			nextTick = time.Now().Add(r.spec.punctuateEvery())
			punctuation = r.anyReady()
		}
		if tx == nil && decide(interval{records: n, punctuation: punctuation, stopping: ctx.Err() != nil}) == txnBegin {
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("beginning transaction: %w", err)
			}
			tx = s.begin(epoch)
		}
		if n > 0 {
			tx.records += n
			r.m.recordsIn.Add(n)
			fs.EachPartition(s.dispatch)
		}
		if punctuation && tx != nil {
			r.punctuate()
		}
	}
}

// begin starts the poll loop's record of a transaction franz-go has begun
// under assignment epoch.
func (s *session) begin(epoch uint64) *txn {
	now := time.Now()
	s.doomed.Store(false)
	s.produced.Store(0)
	return &txn{started: now, deadline: now.Add(s.r.cfg.commitInterval), epoch: epoch}
}

// interval is what decide needs to know of the open transaction tx, with
// the assignment at epoch now.
func (s *session) interval(tx *txn, stopping bool, epoch uint64) interval {
	return interval{
		open:       true,
		records:    tx.records,
		produced:   s.produced.Load(),
		doomed:     s.doomed.Load(),
		stopping:   stopping,
		reassigned: epoch != tx.epoch,
		due:        tx.records >= s.r.cfg.commitRecords || !time.Now().Before(tx.deadline),
	}
}

func (s *session) dispatch(p kgo.FetchTopicPartition) {
	r := s.r
	if len(p.Records) == 0 {
		return
	}
	r.m.fetched(p.Topic, p.Partition, p.Records[0], p.Records[len(p.Records)-1], p.HighWatermark)
	r.pendingSince.CompareAndSwap(0, time.Now().UnixNano())
	r.mu.Lock()
	t := r.tasks[p.Partition]
	r.mu.Unlock()
	// No task (or a halted one): the partition was revoked after it was
	// polled. The session aborts such a transaction anyway; dooming it here
	// as well keeps the offsets of records nobody processed from ever
	// being committed, whatever the callbacks' timing. A task that is
	// still preparing never has records fetched (its partition is paused
	// until it is ready); were one to arrive, the transaction would wait
	// for the restore, so it is dropped the same way.
	if t == nil || !t.ready.Load() || !t.enqueue(p.Records) {
		s.doomed.Store(true)
	}
}

// endTxn waits for the tasks to finish the transaction's records, writes the
// state changes to the changelogs, and ends the transaction, which polled
// count records. Only a commit that franz-go confirms makes the state
// writes permanent; an abort or an error rolls them back. An error means
// the outcome is unknown, the producer is unusable, or the group no longer
// has this instance: the caller tears the session down, and the next
// session restores state and offsets from what the broker committed.
//
// A transaction that polled nothing and produced nothing (a punctuation
// with nothing due) is aborted rather than committed: committing an empty
// transaction stalls franz-go for half a second (DESIGN.md §4).
//
// A transaction that polled nothing but produced (timers fired) commits no
// offsets, so no TxnOffsetCommit checks the group generation for it, and
// End sends no heartbeat. An instance the group has evicted without its
// knowing (a long pause, a partition from the coordinator) could then
// commit firings that the partitions' new owner makes too. Such a
// transaction commits only after a heartbeat of its own has shown this
// member to be in the group's current generation with no rebalance under
// way. From that heartbeat to the EndTxn, a rebalance can only move the
// partitions once this member has rejoined, and its revoke, which comes
// first under the eager protocol, either aborts the transaction or waits
// for End to finish; or once the member has missed its session or
// rebalance timeout, far longer than End takes.
func (s *session) endTxn(tx *txn, iv interval) error {
	r := s.r
	s.inflight.Wait()
	r.mu.Lock()
	for _, t := range r.tasks {
		if t.preparing.Load() {
			continue // its stores are its goroutine's, and hold no writes
		}
		for _, st := range t.stores {
			topic := ChangelogTopic(r.spec.Group, st.name)
			n := st.numChanges()
			st.changes(func(key string, value []byte, deleted bool) {
				if deleted {
					value = nil
				}
				rec := &kgo.Record{Topic: topic, Partition: t.partition, Key: []byte(key), Value: value}
				s.produced.Add(1)
				if n--; n > 0 {
					s.gts.Produce(context.Background(), rec, s.onProduced)
					return
				}
				// The last of one producer's records to a partition
				// gets its highest offset: the store's position
				// moves past it on commit.
				s.gts.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
					if err == nil {
						st.wrote(rec.Offset)
					}
					s.onProduced(rec, err)
				})
			})
		}
	}
	r.mu.Unlock()

	// The tasks have finished and the changelogs are written: decide on
	// what the transaction holds now.
	iv.produced = s.produced.Load()
	iv.doomed = iv.doomed || s.doomed.Load()
	empty := iv.records == 0 && iv.produced == 0
	act := decide(iv)
	var flushErr, memberErr error
	if act == txnCommit {
		// End(TryCommit) flushes too, but commits whatever the produce
		// promises say during that flush: a record that fails there would
		// be committed past. franz-go runs every promise before Flush
		// returns, so after it, doomed is final.
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		flushErr = s.gts.Client().Flush(ctx)
		cancel()
		iv.doomed = flushErr != nil || s.doomed.Load()
		if !iv.doomed && iv.records == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
			memberErr = s.checkMembership(ctx)
			cancel()
			if memberErr != nil {
				r.m.fencedTimerTxns.Inc()
				r.log.Warn("not a member of the group's current generation; the transaction aborts", "error", memberErr)
				iv.doomed = true
			}
		}
		act = decide(iv)
	}
	how := kgo.TryAbort
	if act == txnCommit {
		how = kgo.TryCommit
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
	committed, err := s.gts.End(ctx, how)
	cancel()
	if committed {
		now := time.Now().UnixNano()
		r.forEachTask(func(t *task) {
			for _, st := range t.stores {
				st.commit()
			}
			if t.ready.Load() {
				t.confirmedAt.Store(now)
			}
		})
		r.m.commits.Inc()
		r.m.txnSeconds.UpdateDuration(tx.started)
		// Records polled since were dispatched after End: none are.
		r.pendingSince.Store(0)
		r.sessionFailures.Store(0)
		for topic, ps := range s.gts.Client().CommittedOffsets() {
			for p, eo := range ps {
				r.m.committedAt(topic, p, eo.Offset)
			}
		}
	} else {
		r.forEachStore(func(st *Store) { st.abort() })
		if !empty {
			r.m.aborts.Inc()
		}
	}
	if err != nil {
		return fmt.Errorf("ending transaction (outcome unknown, not treated as committed): %w", err)
	}
	if flushErr != nil {
		return fmt.Errorf("flushing the transaction's records (aborted): %w", flushErr)
	}
	if memberErr != nil && !errors.Is(memberErr, kerr.RebalanceInProgress) {
		// Evicted: franz-go learns it at its next heartbeat, which may
		// be seconds away. A new session rejoins now.
		return fmt.Errorf("checking group membership before committing timers (aborted): %w", memberErr)
	}
	return nil
}

// checkMembership sends a heartbeat as this member of its generation: the
// broker answers with an error unless the member is in the group's
// current generation and no rebalance is under way.
func (s *session) checkMembership(ctx context.Context) error {
	r := s.r
	cl := s.gts.Client()
	member, generation := cl.GroupMetadata()
	if member == "" || generation < 0 {
		return kerr.UnknownMemberID
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = r.spec.Group
	req.MemberID = member
	req.Generation = generation
	if id, ok := cl.OptValue(kgo.InstanceID).(*string); ok {
		req.InstanceID = id
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func (s *session) produce(rec *kgo.Record) {
	s.produced.Add(1)
	s.gts.Produce(context.Background(), rec, s.onProduced)
}

// punctuate hands every ready task a punctuation, in its queue's order.
// The tasks are collected under the runner's lock and handed their
// punctuations without it, as dispatch hands out batches: a full queue
// blocks the poll loop until its task takes the punctuation, and queries,
// Health and the rebalance callbacks must not wait for that. A task halted
// meanwhile refuses it; its partition was taken away, so the transaction
// aborts anyway.
func (r *Runner) punctuate() {
	r.mu.Lock()
	ready := make([]*task, 0, len(r.tasks))
	for _, t := range r.tasks {
		if t.ready.Load() {
			ready = append(ready, t)
		}
	}
	r.mu.Unlock()
	for _, t := range ready {
		t.enqueue(nil)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *session) onProduced(rec *kgo.Record, err error) {
	r := s.r
	if err != nil {
		if isFatal(err) {
			// Every new transaction would meet the same refusal (a
			// missing WRITE ACL comes here, from AddPartitionsToTxn):
			// end the session, and Run with it, rather than abort and
			// retry forever.
			s.fail(r.authzError(err, rec.Topic, "WRITE"))
		}
		if rec.Topic == r.spec.ErrorTopic && isTooLarge(err) {
			s.errorTopicRefused(err)
		}
		if !s.doomed.Swap(true) {
			r.log.Warn("produce failed; the transaction will abort", "topic", rec.Topic, "error", err)
		}
		return
	}
}

// fail dooms the open transaction and ends the session with err: a task
// could not process records it was given, so their offsets must not commit.
func (s *session) fail(err error) {
	s.doomed.Store(true)
	select {
	case s.fatal <- err:
	default:
	}
}

// partitioner places changelog records on the partition the runner chose
// (the task's), and everything else by key with Kafka's murmur2, so that
// records keyed alike land where a Java or franz-go producer would put them.
type partitioner struct {
	manual map[string]struct{}
	byKey  kgo.Partitioner
}
