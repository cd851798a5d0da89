package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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

	// mu guards tasks, cur, and cur's assignment and its epoch. It is
	// held while halting a task, which waits for the task's goroutine;
	// tasks never take it.
	mu    sync.Mutex
	tasks map[int32]*task
	// cur is the session running now (nil between sessions): what it owns
	// lives and dies with it (see session).
	cur *session
	// restoring counts the tasks whose activation is preparing state.
	restoring atomic.Int32

	running atomic.Bool
	// maxBytes is each output topic's max.message.bytes, read by Run
	// before any session starts.
	maxBytes map[string]int
	// errLimit is the error topic's batch limit (see errorLimit), read by
	// Run and lowered when the broker refuses an error record; each
	// session keeps the one its producer was built with.
	errLimit atomic.Int64
	ready    atomic.Bool
	// joined is whether the current session has had its first
	// assignment: until then the instance has not joined its group, owns
	// nothing it knows of, and is not ready. Cleared when a session ends.
	joined atomic.Bool
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
	if !r.joined.Load() {
		return false, "joining the consumer group"
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
	for p := range r.assignedLocked() {
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
			// The context's own end, by cancel or by deadline (run
			// --duration), is the stop asked for, not an error.
			if err != nil && !errors.Is(err, ctx.Err()) {
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

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if _, ok := p.manual[topic]; ok {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}

// Stats returns a snapshot of the runner's counters.
func (r *Runner) Stats() Stats { return r.m.stats() }

// assignedLocked is the running session's assignment (none between
// sessions). The caller holds r.mu.
func (r *Runner) assignedLocked() map[int32]struct{} {
	if r.cur == nil {
		return nil
	}
	return r.cur.assigned
}
