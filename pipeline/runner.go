package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Runner runs one [Spec] against Kafka, exactly once.
type Runner struct {
	spec  Spec
	cfg   cfg
	clock Clock
	log   *slog.Logger
	// errLog rate-limits the per-record error-topic warning: a burst of
	// bad input must not flood the log.
	errLog *limitedLog
	m      *runnerMetrics
	txnID  string

	outputs      map[string]struct{}
	repartitions map[string]string // name -> topic
	changelogs   map[string]struct{}
	globals      map[string]*GlobalTable

	// Set once by Run before any task exists.
	adm           *kadm.Client
	numPartitions atomic.Int32 // set once per Run, read by queries

	// mu guards tasks, assigned and asgEpoch. It is held while halting a
	// task, which waits for the task's goroutine; tasks never take it.
	mu    sync.Mutex
	tasks map[int32]*task
	// assigned is the session's assignment, by partition number, as the
	// group last gave it: onAssigned sets it whole and onRevoked takes
	// from it. Ownership is read from here, never counted from callbacks:
	// franz-go's GroupTransactSession passes on only the first revoke
	// between two transaction ends (DESIGN.md §4).
	assigned map[int32]struct{}
	// synced is the current session's record of its syncs: the
	// assignment onAssigned reads.
	synced atomic.Pointer[syncedAssignment]
	// asgEpoch counts the changes to assigned; the poll loop compares it
	// with the epoch it last reconciled the tasks to.
	asgEpoch uint64
	// restoring counts the tasks whose activation is preparing state.
	restoring atomic.Int32

	// wake cancels the poll in progress, so that the poll loop sees a new
	// assignment at once rather than after its poll returns.
	wakeMu sync.Mutex
	wake   context.CancelFunc

	// produced counts records produced in the open transaction.
	produced atomic.Int64
	// inflight counts batches enqueued to tasks and not yet processed: the
	// commit barrier.
	inflight sync.WaitGroup
	sess     *kgo.GroupTransactSession
	// doomed is set when the open transaction must not commit: a produce
	// of it failed, or a task failed to process what it was given.
	doomed atomic.Bool
	fatal  chan error // first task failure of the session

	running atomic.Bool
	// maxBytes is each output topic's max.message.bytes, read by Run
	// before any session starts.
	maxBytes map[string]int
	// errLimit is the error topic's batch limit (see errorLimit), read by
	// Run and lowered when the broker refuses an error record;
	// sessErrLimit is the one the session's producer was built with.
	errLimit     atomic.Int64
	sessErrLimit atomic.Int64
	ready        atomic.Bool
	// inputMaxBytes is the largest max.message.bytes of the inputs, read
	// by Run before any session starts (0: unknown); it bounds a batch
	// the session may fetch (see fetchLimitsFor).
	inputMaxBytes int

	// What Health reads besides the assignment: since when records
	// have waited for a commit (unix ns, 0: none wait), the session
	// failures since the last commit and the last one's error, and why
	// Run stopped for good.
	pendingSince    atomic.Int64
	sessionFailures atomic.Int32
	sessionErr      atomic.Pointer[string]
	stopped         atomic.Pointer[string]
}

// New builds a Runner for spec. The same constructor serves production, the
// simulation, the scenarios and the benchmarks: only options differ.
func New(spec Spec, opts ...Option) (*Runner, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	c := defaultCfg()
	for _, o := range opts {
		o(&c)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", spec.Name, err)
	}
	if c.metrics == nil {
		c.metrics = metrics.NewSet()
	}
	r := &Runner{
		spec:         spec,
		cfg:          c,
		clock:        c.clock,
		log:          c.logger.With("pipeline", spec.Name),
		m:            newRunnerMetrics(c.metrics, spec.Name, spec.Group),
		errLog:       &limitedLog{every: time.Second},
		outputs:      make(map[string]struct{}),
		repartitions: make(map[string]string),
		changelogs:   make(map[string]struct{}),
		globals:      make(map[string]*GlobalTable),
		tasks:        make(map[int32]*task),
		assigned:     make(map[int32]struct{}),
	}
	if c.instanceID != "" {
		r.txnID = spec.Group + "-" + c.instanceID
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		r.txnID = spec.Group + "-" + hex.EncodeToString(b[:])
	}
	r.errLog.l = r.log
	r.m.gauges(r)
	for _, t := range spec.Outputs {
		r.outputs[t] = struct{}{}
	}
	for _, n := range spec.Repartitions {
		t := RepartitionTopic(spec.Group, n)
		r.repartitions[n] = t
		r.outputs[t] = struct{}{}
	}
	for _, s := range spec.Stores {
		r.changelogs[ChangelogTopic(spec.Group, s)] = struct{}{}
	}
	for _, g := range spec.GlobalTables {
		r.globals[g.Topic] = newGlobalTable(g)
	}
	return r, nil
}

// Spec is the pipeline the runner runs.
func (r *Runner) Spec() *Spec { return &r.spec }

// Metrics is the set holding the runner's metrics.
func (r *Runner) Metrics() *metrics.Set { return r.cfg.metrics }

// AssignedPartitions is how many partitions the group has assigned this
// instance (of each consumed topic: they are co-partitioned).
func (r *Runner) AssignedPartitions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.assigned)
}

// Ready reports whether the runner is healthy: see [Runner.Health].
func (r *Runner) Ready() bool {
	ok, _ := r.Health()
	return ok
}

// Health reports whether the runner does its work, and if not, why, in
// words for an operator (never record content): it is starting or has
// stopped (with the error it stopped on, such as a duplicate instance
// id); it is preparing the state of assigned partitions; its session has
// failed twice or more since the last commit; or records have waited
// longer than the stall limit (ten commit intervals, at least 5 s) with no
// commit while its partitions have lag, as when every transaction aborts.
func (r *Runner) Health() (ok bool, reason string) {
	if why := r.stopped.Load(); why != nil {
		return false, "stopped: " + *why
	}
	if !r.ready.Load() {
		return false, "starting: topics, global tables or the first session"
	}
	if n := r.sessionFailures.Load(); n >= 2 {
		why := ""
		if e := r.sessionErr.Load(); e != nil {
			why = ": " + *e
		}
		return false, fmt.Sprintf("the consumer session failed %d times since the last commit%s", n, why)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var preparing []int32
	for p := range r.assigned {
		if t := r.tasks[p]; t == nil || !t.ready.Load() {
			preparing = append(preparing, p)
		}
	}
	if len(preparing) > 0 {
		slices.Sort(preparing)
		return false, fmt.Sprintf("preparing the state of partitions %v", preparing)
	}
	// Records polled since the last commit wait only while this
	// instance's partitions have lag: those of an aborted transaction
	// whose partitions then moved away wait on another member.
	if since := r.pendingSince.Load(); since != 0 && r.m.lag() > 0 {
		if waited := time.Since(time.Unix(0, since)); waited > r.stallLimit() {
			return false, fmt.Sprintf("no commit for %s while records wait", waited.Round(time.Second))
		}
	}
	return true, ""
}

// stallLimit is how long records may wait for a commit before Health
// says the pipeline is stalled: several commit intervals, and never less
// than a rebalance and a restore of a small store usually take.
func (r *Runner) stallLimit() time.Duration {
	return max(10*r.cfg.commitInterval, 5*time.Second)
}

// Lookup reads key from partition-local state held by this instance: the
// store partitions of the tasks it owns now, once prepared. It may see
// writes of the open transaction. found is false when the key is absent or
// its partition is not owned here.
func (r *Runner) Lookup(store, key string) (value []byte, found bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if !t.ready.Load() {
			continue
		}
		for _, s := range t.stores {
			if s.name == store {
				if v, ok := s.Get(key); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

// Scan calls fn for every key and value of store held by this instance (the
// partitions it owns now), until fn returns false. Like Lookup, it may see
// writes of the open transaction. Keys come partition by partition, sorted
// within each.
func (r *Runner) Scan(store string, fn func(key string, value []byte) bool) {
	// The stores are collected under the runner's lock and read without
	// it (each store takes its own read lock): a long scan must not hold
	// up assignments or commits.
	r.mu.Lock()
	parts := make([]int32, 0, len(r.tasks))
	for p, t := range r.tasks {
		if t.ready.Load() {
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var stores []*Store
	for _, p := range parts {
		for _, s := range r.tasks[p].stores {
			if s.name == store {
				stores = append(stores, s)
			}
		}
	}
	r.mu.Unlock()
	for _, s := range stores {
		for _, k := range s.Keys() {
			if v, ok := s.Get(k); ok && !fn(k, v) {
				return
			}
		}
	}
}

// Owner reports the partition that holds key's state, by the default
// partitioner; whether this instance owns it now (the group assigned it
// here); and whether its state is in place (prepared: queries answer from
// it). Before the first session has learned the partition count, partition
// is -1.
func (r *Runner) Owner(key string) (partition int32, owned, ready bool) {
	n := r.numPartitions.Load()
	if n <= 0 {
		return -1, false, false
	}
	rec := kgo.Record{Key: []byte(key)}
	partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&rec, int(n)))
	r.mu.Lock()
	defer r.mu.Unlock()
	_, owned = r.assigned[partition]
	t := r.tasks[partition]
	return partition, owned, owned && t != nil && t.ready.Load()
}

// Global returns the runner's global table for topic, or nil.
func (r *Runner) Global(topic string) *GlobalTable { return r.globals[topic] }

// Run checks and creates topics, restores the global tables, then consumes,
// processes and commits until ctx is done. On ctx's end it stops fetching,
// finishes the open transaction, leaves the group and returns nil. It
// returns an error for what retrying cannot fix: missing topics, failed
// authentication or authorization. A session that fails otherwise (fenced,
// unknown transaction outcome, broker trouble) is torn down and rebuilt
// from the committed state, with backoff.
func (r *Runner) Run(ctx context.Context) (err error) {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("pipeline %s: already running", r.spec.Name)
	}
	defer r.dropAll()
	admCl, err := kgo.NewClient(r.clientOpts()...)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", r.spec.Name, err)
	}
	defer admCl.Close()
	r.adm = kadm.NewClient(admCl)

	n, err := ensureTopics(ctx, r.adm, &r.spec, r.cfg.createTopics, r.cfg.partitions, r.cfg.replication, r.cfg.topicConfigs)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while starting: a clean stop, like any other.
			return nil
		}
		return r.topicsAuthzError(ctx, admCl, err)
	}
	r.numPartitions.Store(n)
	r.loadMaxBytes(ctx)
	if err := r.loadErrorLimit(ctx); err != nil {
		return err
	}

	// A global table's reader that meets what retrying cannot fix (its
	// topic's READ taken away) ends the sessions' context with that as the
	// cause, and Run returns it, as it does its session's own refusals.
	ctx, globalFailed := context.WithCancelCause(ctx)
	gctx, gcancel := context.WithCancel(ctx)
	var gwg sync.WaitGroup
	defer func() {
		gcancel()
		gwg.Wait()
		var gerr *globalReadError
		if err == nil && errors.As(context.Cause(ctx), &gerr) {
			r.ready.Store(false)
			err = fmt.Errorf("pipeline %s: %w", r.spec.Name, gerr.err)
			why := err.Error()
			r.stopped.Store(&why)
		}
		globalFailed(nil)
	}()
	if err := r.startGlobals(gctx, &gwg, globalFailed); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	backoff := r.cfg.sessionBackoff
	for {
		committed := r.m.commits.Get()
		err := r.runSession(ctx)
		if r.m.commits.Get() > committed {
			// The session did work before it failed: this failure is a new
			// one, not the last one again.
			backoff = r.cfg.sessionBackoff
		}
		if ctx.Err() != nil {
			r.ready.Store(false)
			why := "shut down"
			r.stopped.Store(&why)
			if err != nil && !errors.Is(err, context.Canceled) {
				r.log.Warn("shut down with an error", "error", err)
			}
			return nil
		}
		if isFatal(err) {
			r.ready.Store(false)
			err = fmt.Errorf("pipeline %s: %w", r.spec.Name, r.authzError(err, "", ""))
			why := err.Error()
			r.stopped.Store(&why)
			return err
		}
		r.m.sessionRestarts.Inc()
		r.sessionFailures.Add(1)
		why := err.Error()
		r.sessionErr.Store(&why)
		r.log.Warn("session failed; rebuilding it from the committed state", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// DuplicateInstanceError: the group fenced this instance's static member
// id because another live process joined with it. Two processes with one
// id would otherwise take the id from each other for ever (each new
// session fencing the other's transactions and membership), so the one
// fenced stops instead.
type DuplicateInstanceError struct {
	Pipeline, Group, InstanceID string
}

func (e *DuplicateInstanceError) Error() string {
	return fmt.Sprintf("another live process joined consumer group %s with --instance-id %q, so this one stops: give each instance its own id (pipeline %s)", e.Group, e.InstanceID, e.Pipeline)
}

// isFatal reports errors that a new session would meet again: missing
// topics, credentials the brokers refuse (say, after a password rotation),
// and missing ACLs.
func isFatal(err error) bool {
	var (
		missing   *MissingTopicsError
		duplicate *DuplicateInstanceError
	)
	return errors.As(err, &missing) || errors.As(err, &duplicate) ||
		errors.Is(err, kerr.InvalidSessionTimeout) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed)
}

func (r *Runner) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.WithLogger(kgoLogger{r.log})}
	return append(opts, r.cfg.kafka...)
}

func (r *Runner) sessionOpts() []kgo.Opt {
	synced := new(syncedAssignment)
	r.synced.Store(synced)
	// The producer keeps a topic's batch cap for its life: an error record
	// is built for the cap of the session it is produced in.
	errLimit := r.errorLimit()
	r.sessErrLimit.Store(int64(errLimit))
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
		kgo.Balancers(&copartitioned{synced: synced}, rangeRecorder{GroupBalancer: kgo.RangeBalancer(), synced: synced}),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onRevoked),
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
	sess, err := kgo.NewGroupTransactSession(r.sessionOpts()...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sess = sess
	r.mu.Unlock()
	r.fatal = make(chan error, 1)
	// Initialise the producer id now rather than at the first Begin: with a
	// stable instance id this fences a predecessor at once and aborts its
	// open transaction, which otherwise holds our stable offset fetch until
	// the transaction times out.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		sess.Close()
		return fmt.Errorf("initialising the transactional producer: %w", err)
	}
	inTxn := false
	defer func() {
		if inTxn {
			// Failing out of an open transaction: abort it so that
			// readers are not held back until it times out.
			r.inflight.Wait()
			actx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
			_, _ = sess.End(actx, kgo.TryAbort)
			cancel()
			r.forEachStore(func(s *Store) { s.abort() })
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
		r.haltAll()
	}()
	r.ready.Store(true)

	var (
		count    int
		deadline time.Time
		started  time.Time
		epoch    uint64 // the assignment the tasks were last reconciled to
		txnEpoch uint64 // the assignment the open transaction began under
		nextTick = time.Now().Add(r.spec.punctuateEvery())
	)
	punctuates := r.spec.Punctuate != nil
	begin := func() error {
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
		inTxn = true
		count = 0
		started = time.Now()
		deadline = started.Add(r.cfg.commitInterval)
		r.doomed.Store(false)
		r.produced.Store(0)
		txnEpoch = epoch
		return nil
	}
	end := func() error {
		inTxn = false
		if r.epoch() != txnEpoch {
			// The assignment changed under the transaction: what it
			// read and wrote may belong to partitions another member
			// now owns. GroupTransactSession aborts it too, when it
			// saw the revoke; this does not depend on that.
			r.doomed.Store(true)
		}
		return r.endTxn(started, count)
	}
	for {
		select {
		case err := <-r.fatal:
			return err
		default:
		}
		if ctx.Err() != nil {
			if inTxn {
				return end()
			}
			return ctx.Err()
		}
		if e := r.epoch(); e != epoch {
			if inTxn {
				if err := end(); err != nil {
					return err
				}
			}
			epoch = r.reconcile(sess.Client())
			continue
		}

		var (
			pollCtx context.Context
			cancel  context.CancelFunc
		)
		switch {
		case inTxn && punctuates:
			pollCtx, cancel = context.WithDeadline(ctx, minTime(deadline, nextTick))
		case inTxn:
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		case punctuates:
			pollCtx, cancel = context.WithDeadline(ctx, nextTick)
		default:
			pollCtx, cancel = context.WithCancel(ctx)
		}
		r.wakeMu.Lock()
		r.wake = cancel
		r.wakeMu.Unlock()
		if r.epoch() != epoch {
			// Changed between the check above and the registration:
			// the wake may have been missed.
			cancel()
		}
		fs := sess.PollRecords(pollCtx, r.cfg.commitRecords)
		r.wakeMu.Lock()
		r.wake = nil
		r.wakeMu.Unlock()
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

		if n := fs.NumRecords(); n > 0 {
			if !inTxn {
				if err := begin(); err != nil {
					return err
				}
			}
			count += n
			r.m.recordsIn.Add(n)
			fs.EachPartition(r.dispatch)
		}
		if punctuates && !time.Now().Before(nextTick) {
			nextTick = time.Now().Add(r.spec.punctuateEvery())
			if r.anyReady() {
				if !inTxn {
					if err := begin(); err != nil {
						return err
					}
				}
				r.punctuate()
			}
		}
		if inTxn && (count >= r.cfg.commitRecords || !time.Now().Before(deadline)) {
			if err := end(); err != nil {
				return err
			}
		}
	}
}

// epoch is the assignment's change count.
func (r *Runner) epoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asgEpoch
}

// reconcile activates a task for every assigned partition that has none
// running, and returns the assignment epoch it reconciled to. It runs on
// the poll loop with no transaction open, so every store holds committed
// state. Halted tasks of partitions not assigned stay until the next
// assignment, which either takes them back or drops them: under the eager
// protocol a revoke of everything comes before every assignment.
func (r *Runner) reconcile(cl *kgo.Client) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var started []int32
	for p := range r.assigned {
		t := r.tasks[p]
		if t == nil {
			t = newTask(r, p)
			r.tasks[p] = t
		}
		if !t.running {
			t.activate(cl)
			started = append(started, p)
		}
	}
	if len(started) > 0 {
		sort.Slice(started, func(i, j int) bool { return started[i] < started[j] })
		r.log.Info("preparing state", "tasks", started)
	}
	return r.asgEpoch
}

// anyReady reports whether some task takes punctuations.
func (r *Runner) anyReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.ready.Load() {
			return true
		}
	}
	return false
}

// wakePoll ends the poll in progress early.
func (r *Runner) wakePoll() {
	r.wakeMu.Lock()
	if r.wake != nil {
		r.wake()
	}
	r.wakeMu.Unlock()
}

func (r *Runner) dispatch(p kgo.FetchTopicPartition) {
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
		r.doomed.Store(true)
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
func (r *Runner) endTxn(started time.Time, count int) error {
	r.inflight.Wait()
	r.mu.Lock()
	for _, t := range r.tasks {
		if t.preparing.Load() {
			continue // its stores are its goroutine's, and hold no writes
		}
		for _, s := range t.stores {
			topic := ChangelogTopic(r.spec.Group, s.name)
			n := s.numChanges()
			s.changes(func(key string, value []byte, deleted bool) {
				if deleted {
					value = nil
				}
				rec := &kgo.Record{Topic: topic, Partition: t.partition, Key: []byte(key), Value: value}
				r.produced.Add(1)
				if n--; n > 0 {
					r.sess.Produce(context.Background(), rec, r.onProduced)
					return
				}
				// The last of one producer's records to a partition
				// gets its highest offset: the store's position
				// moves past it on commit.
				r.sess.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
					if err == nil {
						s.wrote(rec.Offset)
					}
					r.onProduced(rec, err)
				})
			})
		}
	}
	r.mu.Unlock()

	empty := count == 0 && r.produced.Load() == 0
	var flushErr error
	if !empty && !r.doomed.Load() {
		// End(TryCommit) flushes too, but commits whatever the produce
		// promises say during that flush: a record that fails there would
		// be committed past. franz-go runs every promise before Flush
		// returns, so after it, doomed is final.
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		flushErr = r.sess.Client().Flush(ctx)
		cancel()
	}
	var memberErr error
	if !empty && count == 0 && flushErr == nil && !r.doomed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		memberErr = r.checkMembership(ctx)
		cancel()
		if memberErr != nil {
			r.m.fencedTimerTxns.Inc()
			r.log.Warn("not a member of the group's current generation; the transaction aborts", "error", memberErr)
		}
	}
	how := kgo.TryCommit
	if flushErr != nil || memberErr != nil || r.doomed.Load() || empty {
		how = kgo.TryAbort
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
	committed, err := r.sess.End(ctx, how)
	cancel()
	if committed {
		now := time.Now().UnixNano()
		r.forEachTask(func(t *task) {
			for _, s := range t.stores {
				s.commit()
			}
			if t.ready.Load() {
				t.confirmedAt.Store(now)
			}
		})
		r.m.commits.Inc()
		r.m.txnSeconds.UpdateDuration(started)
		// Records polled since were dispatched after End: none are.
		r.pendingSince.Store(0)
		r.sessionFailures.Store(0)
		for topic, ps := range r.sess.Client().CommittedOffsets() {
			for p, eo := range ps {
				r.m.committedAt(topic, p, eo.Offset)
			}
		}
	} else {
		r.forEachStore(func(s *Store) { s.abort() })
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
func (r *Runner) checkMembership(ctx context.Context) error {
	cl := r.sess.Client()
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

func (r *Runner) produce(rec *kgo.Record) {
	r.produced.Add(1)
	r.sess.Produce(context.Background(), rec, r.onProduced)
}

// punctuate hands every ready task a punctuation, in its queue's order.
func (r *Runner) punctuate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.ready.Load() {
			t.enqueue(nil)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (r *Runner) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		if isFatal(err) {
			// Every new transaction would meet the same refusal (a
			// missing WRITE ACL comes here, from AddPartitionsToTxn):
			// end the session, and Run with it, rather than abort and
			// retry forever.
			r.fail(r.authzError(err, rec.Topic, "WRITE"))
		}
		if rec.Topic == r.spec.ErrorTopic && isTooLarge(err) {
			r.errorTopicRefused(err)
		}
		if !r.doomed.Swap(true) {
			r.log.Warn("produce failed; the transaction will abort", "topic", rec.Topic, "error", err)
		}
		return
	}
}

// fail dooms the open transaction and ends the session with err: a task
// could not process records it was given, so their offsets must not commit.
func (r *Runner) fail(err error) {
	r.doomed.Store(true)
	select {
	case r.fatal <- err:
	default:
	}
}

// forEachTask calls fn for every task not preparing: a preparing task's
// stores belong to its goroutine, which is restoring them, and hold no
// writes of a transaction. A task leaves preparation only to take batches,
// which only the poll loop, the caller, hands out.
func (r *Runner) forEachTask(fn func(*task)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if !t.preparing.Load() {
			fn(t)
		}
	}
}

// forEachStore calls fn for the stores of every task forEachTask visits.
func (r *Runner) forEachStore(fn func(*Store)) {
	r.forEachTask(func(t *task) {
		for _, s := range t.stores {
			fn(s)
		}
	})
}

// onAssigned records the assignment and pauses the fetching of each newly
// assigned partition; the poll loop then prepares its task's state and
// resumes it. A partition kept from the last assignment keeps its task,
// running.
//
// franz-go calls it after every sync, with what the sync added under the
// cooperative protocol and with the whole assignment under the eager one
// (a group that still has members offering only the range protocol, after
// a revoke of everything). Either way, what the member owns is read from
// the sync itself (see [copartitioned]), not pieced together from the
// callbacks: a task whose partition the sync no longer gives is dropped
// here even when the revoke that took it was swallowed. Under the eager
// protocol the revoke halted every task first, so every partition is
// prepared again (kept, most often), as before.
func (r *Runner) onAssigned(_ context.Context, cl *kgo.Client, _ map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.synced.Load().partitions(r.spec.consumedTopics())
	for p, t := range r.tasks {
		if _, ok := now[p]; ok {
			continue
		}
		// Not this member's now. Its store is kept for a while: under
		// the cooperative protocol a partition comes to its new owner
		// one rebalance after it left its old one, so a member that
		// rejoins is assigned nothing first, and its stores would all be
		// read again from the changelog's start. One that comes back is
		// caught up from its position (see planRestore); one unconfirmed
		// for longer than keepStoreFor could only be restored in full,
		// and goes.
		t.halt()
		r.m.dropLag(r.spec.consumedTopics(), p)
		if c := t.confirmedAt.Load(); c == 0 || time.Since(time.Unix(0, c)) >= keepStoreFor {
			delete(r.tasks, p)
		}
	}
	var parts, fresh []int32
	for p := range now {
		parts = append(parts, p)
		if t := r.tasks[p]; t == nil || !t.running {
			fresh = append(fresh, p)
		}
	}
	slices.Sort(parts)
	slices.Sort(fresh)
	if len(fresh) > 0 {
		pause := make(map[string][]int32)
		for _, topic := range r.spec.consumedTopics() {
			pause[topic] = fresh
		}
		cl.PauseFetchPartitions(pause)
	}
	for _, p := range parts {
		r.m.assignedLag(r.spec.consumedTopics(), p)
	}
	r.assigned = now
	r.asgEpoch++
	r.log.Info("partitions assigned", "tasks", parts, "new", fresh)
	r.wakePoll()
}

// onRevoked halts the tasks of revoked or lost partitions and waits for
// them. The session aborts the open transaction afterwards (and the poll
// loop makes sure of it), so their partial work is never committed. Their
// stores stay until the next assignment says whether they come back.
func (r *Runner) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var removed []int32
	for _, ps := range revoked {
		for _, p := range ps {
			if _, ok := r.assigned[p]; !ok {
				continue
			}
			delete(r.assigned, p)
			if t := r.tasks[p]; t != nil {
				t.halt()
			}
			r.m.dropLag(r.spec.consumedTopics(), p)
			removed = append(removed, p)
		}
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i] < removed[j] })
	r.asgEpoch++
	r.log.Info("partitions revoked", "tasks", removed)
	r.wakePoll()
}

// consumedPartition is partition p of every consumed topic.
func (r *Runner) consumedPartition(p int32) map[string][]int32 {
	m := make(map[string][]int32)
	for _, topic := range r.spec.consumedTopics() {
		m[topic] = []int32{p}
	}
	return m
}

// haltAll halts every task and forgets the assignment, keeping the
// stores: a session has ended and the next one may get them back.
func (r *Runner) haltAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		t.halt()
	}
	clear(r.assigned)
	r.asgEpoch++
}

// dropAll halts every task and drops it with its stores: the runner stops.
func (r *Runner) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range r.tasks {
		t.halt()
		delete(r.tasks, p)
		r.m.dropLag(r.spec.consumedTopics(), p)
	}
	clear(r.assigned)
}

// partitioner places changelog records on the partition the runner chose
// (the task's), and everything else by key with Kafka's murmur2, so that
// records keyed alike land where a Java or franz-go producer would put them.
type partitioner struct {
	manual map[string]struct{}
	byKey  kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if _, ok := p.manual[topic]; ok {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}

// defaultBatchMaxBytes is the producer's batch cap for a topic that allows
// more: about the brokers' default max.message.bytes.
const defaultBatchMaxBytes = 1_000_012

// loadMaxBytes reads each output topic's max.message.bytes, which bounds
// what Process may emit to it (see task.atomically) and the producer's
// batches. A topic whose limit cannot be read (DescribeConfigs denied, a
// topic not yet known) gets the default cap: a warning, not a failure.
func (r *Runner) loadMaxBytes(ctx context.Context) {
	topics := make([]string, 0, len(r.outputs))
	for t := range r.outputs {
		topics = append(topics, t)
	}
	r.maxBytes = make(map[string]int, len(topics))
	if len(topics) == 0 {
		return
	}
	rcs, err := r.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		r.log.Warn("output topics' max.message.bytes not read; the default cap applies", "cap", defaultBatchMaxBytes, "error", err)
		return
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			r.log.Warn("output topic's max.message.bytes not read; the default cap applies", "topic", rc.Name, "cap", defaultBatchMaxBytes, "error", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
					r.maxBytes[rc.Name] = n
				}
			}
		}
	}
}

// recordLimit is the most a batch of topic may hold: its max.message.bytes
// when known, never more than the producer's default cap.
func (r *Runner) recordLimit(topic string) int {
	if m, ok := r.maxBytes[topic]; ok && m < defaultBatchMaxBytes {
		return m
	}
	return defaultBatchMaxBytes
}

// tooLarge reports whether rec, alone in a batch and uncompressed, would
// exceed the limit of its topic's batches, and the sizes. The broker (or
// the producer) refuses such a batch for good, so the record must never be
// produced: its input goes to the error topic instead. Compression could
// make some fit; an estimate that errs on the side of refusing keeps the
// transaction from failing over and over.
func (r *Runner) tooLarge(rec *kgo.Record) (size, limit int, over bool) {
	limit = r.recordLimit(rec.Topic)
	// A batch header, a record's own framing, and each header's.
	size = 61 + 21 + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		size += 10 + len(h.Key) + len(h.Value)
	}
	return size, limit, size > limit
}

// Stats returns a snapshot of the runner's counters.
func (r *Runner) Stats() Stats { return r.m.stats() }
