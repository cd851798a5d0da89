// Package loadgen is carepipe's load generator for capacity planning. It
// produces a seeded, realistic workload for one pipeline at a fixed rate,
// or ramps the rate to find the most the pipeline sustains, and measures
// what users size clusters by: the rate the pipeline commits, its consumer
// lag, and the end-to-end latency from an input's timestamp to its output
// read committed, as percentiles.
//
// Latency needs no clock shared with the pipeline: every input carries a
// correlation-id header "lg-<send time>-<sequence>", the pipelines carry
// the correlation id to every output, and loadgen reads the outputs
// itself, so both ends are read on loadgen's clock.
//
// It runs against any cluster it is given client options for; `carepipe
// loadgen` runs the pipeline in the same process on an embedded cluster
// unless told the brokers.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// Config configures [Run]. Zero values mean the documented defaults.
type Config struct {
	// Pipeline is alerts, priorauth or datasync. Required.
	Pipeline string
	// Names are the deployment's names of the pipeline's groups and
	// topics (its app id, renamed topics): the load goes to its input
	// topics as named there, and its groups are measured. Default: the
	// built-in names.
	Names pipeline.Names
	// Kafka are the client options of the cluster the pipeline runs on
	// (seed brokers, TLS, SASL). Required.
	Kafka []kgo.Opt
	// Cluster names the cluster in the report ("embedded" or the seed
	// brokers).
	Cluster string
	// InProcess says the pipeline runs in this process, so the process's
	// CPU time and RSS are reported (they include the embedded broker and
	// loadgen itself).
	InProcess bool

	// Rate is the offered rate of a fixed-rate run, records/s, held for
	// Duration (default 30s), Repeat times (default 1): the steps of a
	// long run at one rate show whether latency and memory hold steady.
	// Rate is required unless FindMax.
	Rate     float64
	Duration time.Duration
	Repeat   int

	// FindMax ramps the rate: StartRate (default 2,000/s) for
	// StepDuration (default 10s), each next step Growth (default 1.5)
	// times the last, until a step's p99 passes SLO or its lag grows, or
	// MaxRate (default 2,000,000/s); then two steps bisect between the
	// last good rate and the first bad one, and a last step runs at half
	// the maximum found (the latency at half the maximum is what a
	// cluster should be sized by).
	FindMax      bool
	StartRate    float64
	MaxRate      float64
	Growth       float64
	StepDuration time.Duration
	// SLO is the p99 latency a step must stay within. Default: 250ms for
	// alerts, 500ms for datasync (two stages), 5s for priorauth (a
	// workflow is five transactions and four round trips with the
	// simulated outside world).
	SLO time.Duration
	// Warmup runs the first rate this long before the first step, not
	// reported (default 3s): group joins, restores and first
	// connections are not the steady state.
	Warmup time.Duration
	// DrainTimeout bounds the wait, after each step, for the backlog to
	// drain (default 60s); a run whose backlog does not drain stops.
	DrainTimeout time.Duration

	// Seed selects the workload.
	Seed int64
	// Alerts: patients in the table (default 10,000) and the share of
	// observations that trip a rule (default 0.1).
	Patients      int
	AlertFraction float64
	// Data sync: entities changed (default 10,000), and the shares of
	// changes from a second source (default 0.1) and invalid (default
	// 0.02).
	Entities         int
	ConflictFraction float64
	InvalidFraction  float64

	// Progress receives a progress line; Live redraws it in place (a
	// terminal), otherwise a line is printed every 5 s. Nil: none.
	Progress io.Writer
	Live     bool
	// Settings are added to the report's settings.
	Settings map[string]string
	// BetweenSteps, when set, runs after each step has drained, outside
	// every measurement (an embedded cluster compacts its changelogs
	// there).
	BetweenSteps func()
	Logger       *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.StartRate == 0 {
		c.StartRate = 2000
	}
	if c.MaxRate == 0 {
		c.MaxRate = 2_000_000
	}
	if c.Growth == 0 {
		c.Growth = 1.5
	}
	if c.StepDuration == 0 {
		c.StepDuration = 10 * time.Second
	}
	if c.SLO == 0 {
		c.SLO = 250 * time.Millisecond
		if l, ok := loadOf(c.Pipeline); ok {
			c.SLO = l.slo
		}
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = time.Minute
	}
	if c.Patients == 0 {
		c.Patients = 10_000
	}
	if c.AlertFraction == 0 {
		c.AlertFraction = 0.1
	}
	if c.Entities == 0 {
		c.Entities = 10_000
	}
	if c.ConflictFraction == 0 {
		c.ConflictFraction = 0.1
	}
	if c.InvalidFraction == 0 {
		c.InvalidFraction = 0.02
	}
	if c.Cluster == "" {
		c.Cluster = "unnamed"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	if !slices.Contains(Pipelines, c.Pipeline) {
		errs = append(errs, fmt.Errorf("unknown pipeline %q (known: %s)", c.Pipeline, strings.Join(Pipelines, ", ")))
	}
	if len(c.Kafka) == 0 {
		errs = append(errs, errors.New("no Kafka client options"))
	}
	positive := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s %v: want a positive rate", name, v))
		}
	}
	if c.FindMax {
		positive("start rate", c.StartRate)
		positive("max rate", c.MaxRate)
		if c.MaxRate < c.StartRate {
			errs = append(errs, fmt.Errorf("max rate %v is below the start rate %v", c.MaxRate, c.StartRate))
		}
		if !(c.Growth > 1) || math.IsInf(c.Growth, 0) {
			errs = append(errs, fmt.Errorf("growth %v: want more than 1", c.Growth))
		}
	} else {
		positive("rate", c.Rate)
		if c.Repeat < 1 || c.Repeat > maxSteps {
			errs = append(errs, fmt.Errorf("repeat %d: want 1 to %d", c.Repeat, maxSteps))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"duration", c.Duration}, {"step duration", c.StepDuration}, {"SLO", c.SLO}, {"warm-up", c.Warmup}, {"drain timeout", c.DrainTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	return nil
}

// Run runs the load and returns its report. It stops early, with the steps
// run so far and ctx's error, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	wl, err := newWorkload(&cfg)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: &cfg, wl: wl}
	if err := r.open(ctx); err != nil {
		r.close()
		return nil, err
	}
	defer r.close()

	rep := &Report{
		Pipeline: cfg.Pipeline,
		Cluster:  cfg.Cluster,
		SLO:      cfg.SLO,
		Started:  time.Now().UTC(),
		Settings: map[string]string{"seed": strconv.FormatInt(cfg.Seed, 10)},
		FindMax:  cfg.FindMax,
	}
	if l, ok := loadOf(cfg.Pipeline); ok {
		for k, v := range l.settings(&cfg) {
			rep.Settings[k] = v
		}
	}
	for k, v := range cfg.Settings {
		rep.Settings[k] = v
	}
	first := cfg.Rate
	if cfg.FindMax {
		first = cfg.StartRate
	}
	if err := r.warmup(ctx, first); err != nil {
		return rep, err
	}
	run := func(target float64, d time.Duration) (Step, error) {
		s, err := r.step(ctx, target, d, len(rep.Steps)+1)
		if err == nil {
			rep.Steps = append(rep.Steps, s)
			if cfg.FindMax && s.Verdict == VerdictOK && s.Offered > rep.MaxSustainable {
				rep.MaxSustainable = s.Offered
			}
		}
		return s, err
	}
	if !cfg.FindMax {
		for range cfg.Repeat {
			if _, err := run(cfg.Rate, cfg.Duration); err != nil {
				return rep, err
			}
		}
		return rep, nil
	}
	err = r.findMax(ctx, run)
	return rep, err
}

// maxSteps bounds a find-max run whatever its settings.
const maxSteps = 40

// findMax ramps, bisects and measures at half the maximum.
func (r *runner) findMax(ctx context.Context, run func(float64, time.Duration) (Step, error)) error {
	cfg := r.cfg
	good, bad := 0.0, 0.0
	for rate, n := cfg.StartRate, 0; rate <= cfg.MaxRate && n < maxSteps; rate, n = rate*cfg.Growth, n+1 {
		s, err := run(rate, cfg.StepDuration)
		if err != nil {
			return err
		}
		if s.Verdict != VerdictOK {
			bad = rate
			break
		}
		good = rate
		// A producer that cannot offer the rate asked for is the load
		// generator's limit, not the pipeline's: asking for more
		// measures nothing new.
		if s.Offered < 0.9*s.Target {
			cfg.Logger.Warn("loadgen: the producer fell short of the target rate; stopping the ramp", "target", s.Target, "offered", s.Offered)
			break
		}
	}
	if bad > 0 && good > 0 {
		for range 2 {
			mid := (good + bad) / 2
			s, err := run(mid, cfg.StepDuration)
			if err != nil {
				return err
			}
			if s.Verdict == VerdictOK {
				good = mid
			} else {
				bad = mid
			}
		}
	}
	if good > 0 {
		_, err := run(good/2, cfg.StepDuration)
		return err
	}
	return nil
}

// runner holds a run's clients and measurements.
type runner struct {
	cfg  *Config
	wl   *workload
	prod *kgo.Client
	cons *kgo.Client
	adm  *kadm.Client
	admc *kgo.Client

	seq      atomic.Int64
	failed   atomic.Int64 // records the brokers refused
	firstErr atomic.Pointer[error]

	// written is, per input partition, one past the highest offset the
	// brokers acknowledged: a drain waits until the rate group has
	// committed that far, which a lag read cannot say of a group that
	// has not joined or committed yet (it has no lag to report).
	written map[string][]atomic.Int64

	mu   sync.Mutex
	hist *Histogram // the current step's latencies
	// answered is closed when the first output of a loadgen input
	// arrives: the pipeline, and anything it waits on, is running.
	answered     chan struct{}
	answeredOnce sync.Once

	consumeDone chan struct{}
	cancel      context.CancelFunc
}

func (r *runner) open(ctx context.Context) error {
	var err error
	if r.admc, err = kgo.NewClient(r.cfg.Kafka...); err != nil {
		return err
	}
	r.adm = kadm.NewClient(r.admc)
	if err := r.checkTopics(ctx); err != nil {
		return err
	}
	// Large batches, a short linger and no compression: the producer must
	// not be what limits the rate, and on an embedded cluster its CPU is
	// the pipeline's.
	if r.prod, err = kgo.NewClient(append(slices.Clone(r.cfg.Kafka),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1<<20),
	)...); err != nil {
		return err
	}
	if err := r.wl.prepare(ctx, r.prod); err != nil {
		return fmt.Errorf("loadgen: preparing the %s workload: %w", r.cfg.Pipeline, err)
	}
	// The outputs are read from their current ends, so that only this
	// run's are measured.
	ends, err := r.adm.ListEndOffsets(ctx, r.wl.outputs...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("loadgen: listing the outputs' end offsets: %w", err)
	}
	start := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if start[o.Topic] == nil {
			start[o.Topic] = map[int32]kgo.Offset{}
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	if r.cons, err = kgo.NewClient(append(slices.Clone(r.cfg.Kafka),
		kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...); err != nil {
		return err
	}
	r.hist = NewHistogram()
	r.answered = make(chan struct{})
	cctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.consumeDone = make(chan struct{})
	go r.consume(cctx)
	return nil
}

func (r *runner) close() {
	if r.cancel != nil {
		r.cancel()
		<-r.consumeDone
	}
	for _, c := range []*kgo.Client{r.cons, r.prod, r.admc} {
		if c != nil {
			c.Close()
		}
	}
}

// checkTopics fails naming every input or output topic the cluster lacks:
// loadgen creates nothing, the pipeline (or `carepipe topics apply`) does.
func (r *runner) checkTopics(ctx context.Context) error {
	want := append(slices.Clone(r.wl.inputs), r.wl.outputs...)
	td, err := r.adm.ListTopics(ctx, want...)
	if err != nil {
		return fmt.Errorf("loadgen: listing topics: %w", err)
	}
	var missing []string
	for _, t := range want {
		if d, ok := td[t]; !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("loadgen: the cluster lacks topics %s: start the %s pipeline with --create-topics, or run carepipe topics apply", strings.Join(missing, ", "), r.cfg.Pipeline)
	}
	r.written = make(map[string][]atomic.Int64, len(r.wl.inputs))
	for _, t := range r.wl.inputs {
		r.written[t] = make([]atomic.Int64, len(td[t].Partitions))
	}
	return nil
}

// wrote notes an input record the brokers acknowledged. A partition
// added while loadgen runs is not tracked: only the lag covers it.
func (r *runner) wrote(rec *kgo.Record) {
	ps := r.written[rec.Topic]
	if int(rec.Partition) >= len(ps) {
		return
	}
	w := &ps[rec.Partition]
	for {
		cur := w.Load()
		if rec.Offset < cur || w.CompareAndSwap(cur, rec.Offset+1) {
			return
		}
	}
}

// behind counts the input partitions on which the rate group has not
// yet committed past everything loadgen wrote there.
func (r *runner) behind(ctx context.Context) (int, error) {
	os, err := r.adm.FetchOffsets(ctx, r.wl.rateGroup)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// A group that has never committed, on some brokers.
		os, err = nil, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for t, ps := range r.written {
		for p := range ps {
			w := ps[p].Load()
			if w == 0 {
				continue
			}
			if o, ok := os.Lookup(t, int32(p)); !ok || o.Err != nil || o.At < w {
				n++
			}
		}
	}
	return n, nil
}

// correlationPrefix starts the correlation ids loadgen sends.
const correlationPrefix = "lg-"

// stamp makes rec an input sent now: its timestamp, and a correlation id
// saying when it was sent.
func (r *runner) stamp(rec *kgo.Record, now time.Time) {
	rec.Timestamp = now
	id := make([]byte, 0, 32)
	id = append(id, correlationPrefix...)
	id = strconv.AppendInt(id, now.UnixNano(), 36)
	id = append(id, '-')
	id = strconv.AppendInt(id, r.seq.Add(1), 36)
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: envelope.HeaderCorrelationID, Value: id})
}

// sentAt reads the send time from an output's correlation id; ok false
// for outputs of inputs loadgen did not send.
func sentAt(r *kgo.Record) (time.Time, bool) {
	id, ok := envelope.HeaderCorrelation(r)
	if !ok || !strings.HasPrefix(id, correlationPrefix) {
		return time.Time{}, false
	}
	ts, _, _ := strings.Cut(id[len(correlationPrefix):], "-")
	ns, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// consume reads the outputs until ctx ends, recording each one's latency.
func (r *runner) consume(ctx context.Context) {
	defer close(r.consumeDone)
	for {
		fs := r.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			if sent, ok := sentAt(rec); ok {
				r.hist.Record(now.Sub(sent))
				r.answeredOnce.Do(func() { close(r.answered) })
			}
		})
		r.mu.Unlock()
	}
}

// swapHist starts a new histogram and returns the old one.
func (r *runner) swapHist() *Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hist
	r.hist = NewHistogram()
	return h
}

// paceTick is how often the producer catches up with its schedule, and
// maxBurst how far behind it may fall before it gives the debt up: a
// stalled producer offers less, it does not burst.
const (
	paceTick = 5 * time.Millisecond
	maxBurst = 100 * time.Millisecond
)

// load offers target records/s for d and returns how many it produced.
// A step reports the pacing it could keep: Produce blocks while the
// client's buffer is full, and the schedule's debt beyond maxBurst is
// forgiven, so Offered falls below Target when the producer (or the
// cluster) cannot keep up.
func (r *runner) load(ctx context.Context, target float64, d time.Duration, tick func(elapsed time.Duration, sent int64)) int64 {
	start := time.Now()
	t := time.NewTicker(paceTick)
	defer t.Stop()
	burst := int64(math.Max(1, target*maxBurst.Seconds()))
	var sent, forgiven int64
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			r.failed.Add(1)
			r.firstErr.CompareAndSwap(nil, &err)
			return
		}
		r.wrote(rec)
	}
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return sent
		case now = <-t.C:
		}
		elapsed := now.Sub(start)
		if elapsed >= d {
			return sent
		}
		due := int64(target*elapsed.Seconds()) - sent - forgiven
		if due > burst {
			forgiven += due - burst
			due = burst
		}
		for range due {
			rec := r.wl.next()
			r.stamp(rec, time.Now())
			r.prod.Produce(ctx, rec, promise)
		}
		sent += max(due, 0)
		tick(elapsed, sent)
	}
}

// lagOf is the pipeline's backlog: the sum of its groups' lag, and the
// number of partitions counted (a partition written transactionally
// keeps a lag of one, its last commit marker, when idle).
func (r *runner) lagOf(ctx context.Context) (lag int64, partitions int, err error) {
	ls, err := r.adm.Lag(ctx, r.wl.groups...)
	if err != nil {
		return 0, 0, err
	}
	for _, g := range ls.Sorted() {
		if g.Error() != nil {
			return 0, 0, g.Error()
		}
		for _, ps := range g.Lag {
			for _, p := range ps {
				if p.Lag > 0 {
					lag += p.Lag
				}
				partitions++
			}
		}
	}
	return lag, partitions, nil
}

// committed is the sum of the rate group's committed offsets on the
// inputs.
func (r *runner) committed(ctx context.Context) (int64, error) {
	os, err := r.adm.FetchOffsets(ctx, r.wl.rateGroup)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range r.wl.inputs {
		for _, o := range os[t] {
			if o.Err == nil {
				n += o.At
			}
		}
	}
	return n, nil
}

// warmup offers rate for cfg.Warmup, unreported, drains, and repeats
// until an output has come back, for up to cfg.DrainTimeout more: the
// steps then measure a pipeline that has joined its groups, restored its
// state and (for priorauth) heard from the outside world, however long
// that took on this machine.
func (r *runner) warmup(ctx context.Context, rate float64) error {
	if r.cfg.Warmup <= 0 {
		return nil
	}
	r.progressf("warming up at %s/s for %s", formatRate(rate), r.cfg.Warmup)
	deadline := time.Now().Add(r.cfg.Warmup + r.cfg.DrainTimeout)
	for {
		r.load(ctx, rate, r.cfg.Warmup, func(time.Duration, int64) {})
		if err := r.drain(ctx); err != nil {
			return err
		}
		// The outputs may wait on more than the drained groups (a
		// payer's answer): give them a warm-up's time before more load.
		wait := time.NewTimer(r.cfg.Warmup)
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-r.answered:
			wait.Stop()
			r.swapHist()
			return nil
		case <-wait.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: no output on %s came back within %s of warming up: is the %s pipeline producing?",
				strings.Join(r.wl.outputs, ", "), r.cfg.Warmup+r.cfg.DrainTimeout, r.cfg.Pipeline)
		}
		r.progressf("no output yet; warming up for another %s", r.cfg.Warmup)
	}
}

// drain waits until the producer has delivered everything, the rate
// group has committed past all of it, and the pipeline's backlog is gone
// (a marker per partition aside), or cfg.DrainTimeout passes.
func (r *runner) drain(ctx context.Context) error {
	if err := r.prod.Flush(ctx); err != nil {
		return err
	}
	if p := r.firstErr.Load(); p != nil {
		return fmt.Errorf("loadgen: %d records failed to produce, the first: %w", r.failed.Load(), *p)
	}
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		behind, err := r.behind(ctx)
		lag, parts := int64(0), 0
		if err == nil && behind == 0 {
			lag, parts, err = r.lagOf(ctx)
			if err == nil && lag <= int64(parts) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			switch {
			case err != nil:
				return fmt.Errorf("loadgen: reading the pipeline's progress: %w", err)
			case behind > 0:
				return fmt.Errorf("loadgen: the %s group had not consumed the load on %d input partitions within %s", r.wl.rateGroup, behind, r.cfg.DrainTimeout)
			}
			return fmt.Errorf("loadgen: the backlog (%d records) did not drain within %s", lag, r.cfg.DrainTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// lagSample is the backlog at a time into a step.
type lagSample struct {
	at  time.Duration
	lag int64
}

// step offers target records/s for d, drains, and measures.
func (r *runner) step(ctx context.Context, target float64, d time.Duration, n int) (Step, error) {
	s := Step{Target: target}
	c0, err := r.committed(ctx)
	if err != nil {
		return s, err
	}
	r.swapHist()
	cpu0 := ProcessCPU()
	var peakRSS atomic.Int64
	var samplesMu sync.Mutex
	var samples []lagSample
	sctx, stop := context.WithCancel(ctx)
	sampled := make(chan struct{})
	start := time.Now()
	// The backlog and the RSS are sampled beside the load, so that a
	// slow admin request never holds the pacing up.
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			peakRSS.Store(max(peakRSS.Load(), rss()))
			if lag, _, err := r.lagOf(sctx); err == nil {
				samplesMu.Lock()
				samples = append(samples, lagSample{time.Since(start), lag})
				samplesMu.Unlock()
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var lastShown time.Time
	sent := r.load(ctx, target, d, func(elapsed time.Duration, sent int64) {
		if now := time.Now(); now.Sub(lastShown) >= r.showEvery() {
			lastShown = now
			samplesMu.Lock()
			var lag int64
			if len(samples) > 0 {
				lag = samples[len(samples)-1].lag
			}
			samplesMu.Unlock()
			r.mu.Lock()
			p99 := r.hist.Quantile(0.99)
			r.mu.Unlock()
			r.progress(n, target, elapsed, d, sent, lag, p99)
		}
	})
	elapsed := time.Since(start)
	stop()
	<-sampled
	c1, err := r.committed(ctx)
	if err != nil {
		return s, err
	}
	cpu1 := ProcessCPU()
	lagEnd, _, err := r.lagOf(ctx)
	if err != nil {
		return s, err
	}
	s.Duration = elapsed.Round(time.Millisecond)
	s.Offered = float64(sent) / elapsed.Seconds()
	s.Achieved = float64(c1-c0) / elapsed.Seconds()
	s.LagEnd = lagEnd
	if r.cfg.InProcess {
		s.PeakRSS = peakRSS.Load()
		if c1 > c0 && cpu1 > cpu0 {
			s.CPUPerRecord = (cpu1 - cpu0) / time.Duration(c1-c0)
		}
	}
	grew := lagGrew(samples, lagEnd, elapsed, s.Offered)

	// The step's inputs still in flight have outputs to come: their
	// latencies belong to this step.
	drainErr := r.drain(ctx)
	h := r.swapHist()
	if r.cfg.BetweenSteps != nil && drainErr == nil {
		r.cfg.BetweenSteps()
	}
	s.Outputs = h.Count()
	s.P50, s.P90, s.P99, s.P999, s.Max = h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.Quantile(0.999), h.Max()
	switch {
	case grew || drainErr != nil:
		s.Verdict = VerdictLag
	case s.Outputs > 0 && s.P99 > r.cfg.SLO:
		s.Verdict = VerdictSLO
	default:
		s.Verdict = VerdictOK
	}
	r.progressDone(n, s)
	if drainErr != nil && !errors.Is(drainErr, context.Canceled) {
		// A backlog that does not drain ends the run: the next step
		// would measure this one's backlog.
		return s, drainErr
	}
	return s, ctx.Err()
}

// lagGrew reports whether the backlog grew without bound through a step:
// at its end it is more than a second of the offered rate (a pipeline
// keeping up holds about a commit interval's worth), and it grew over the
// step's second half.
func lagGrew(samples []lagSample, end int64, d time.Duration, offered float64) bool {
	if float64(end) <= math.Max(1000, offered) {
		return false
	}
	mid := slices.IndexFunc(samples, func(s lagSample) bool { return s.at >= d/2 })
	if mid < 0 {
		return true
	}
	return end > samples[mid].lag
}

func (r *runner) showEvery() time.Duration {
	if r.cfg.Live {
		return 200 * time.Millisecond
	}
	return 5 * time.Second
}

// progress shows a step under way: a bar of its time, the rates, the
// backlog and the p99 so far.
func (r *runner) progress(n int, target float64, elapsed, d time.Duration, sent, lag int64, p99 time.Duration) {
	if r.cfg.Progress == nil {
		return
	}
	const width = 24
	done := min(width, int(float64(width)*elapsed.Seconds()/d.Seconds()))
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	line := fmt.Sprintf("step %d [%s] %4.0fs/%.0fs  target %s/s  offered %s/s  lag %s  p99 %s",
		n, bar, elapsed.Seconds(), d.Seconds(), formatRate(target), formatRate(float64(sent)/math.Max(elapsed.Seconds(), 1e-3)),
		formatRate(float64(lag)), formatDuration(p99))
	if r.cfg.Live {
		fmt.Fprintf(r.cfg.Progress, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(r.cfg.Progress, line)
	}
}

func (r *runner) progressDone(n int, s Step) {
	if r.cfg.Progress == nil {
		return
	}
	prefix := ""
	if r.cfg.Live {
		prefix = "\r\033[K"
	}
	fmt.Fprintf(r.cfg.Progress, "%sstep %d: target %s/s  offered %s/s  achieved %s/s  p50 %s  p99 %s  p99.9 %s  lag %s  %s\n",
		prefix, n, formatRate(s.Target), formatRate(s.Offered), formatRate(s.Achieved), formatDuration(s.P50), formatDuration(s.P99), formatDuration(s.P999),
		formatRate(float64(s.LagEnd)), s.Verdict)
}

func (r *runner) progressf(f string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, f+"\n", args...)
	}
}
