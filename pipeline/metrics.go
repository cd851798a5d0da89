package pipeline

import (
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runnerMetrics are the runtime's metrics. Every pipeline has them, so
// each is named carepipe_<what> and says its pipeline in the label
// pipeline (carepipe_records_in_total{pipeline="alerts"}); other labels
// come only from error types, topics and partitions, never from records.
type runnerMetrics struct {
	set      *metrics.Set
	pipeline string // the label pipeline="<name>", for series with more labels

	recordsIn          *metrics.Counter
	recordsOut         *metrics.Counter
	commits            *metrics.Counter
	aborts             *metrics.Counter
	sessionRestarts    *metrics.Counter
	globalDecodeErrors *metrics.Counter
	truncatedErrors    *metrics.Counter
	restoredRecords    *metrics.Counter
	restores           [restoreFull + 1]*metrics.Counter
	fencedTimerTxns    *metrics.Counter
	invalidHeaders     [invalidClasses]*metrics.Counter // by invalidHeaderLabels
	txnSeconds         *metrics.PrometheusHistogram
	processSeconds     *metrics.PrometheusHistogram
	eventAgeSeconds    *metrics.PrometheusHistogram

	group string

	mu   sync.Mutex
	errs map[ErrorType]*metrics.Counter
	lags map[topicPartition]*lagState
}

type topicPartition struct {
	topic     string
	partition int32
}

// lagState is what a partition's lag is worked out from: the high
// watermark of its last fetch, whether that fetch ended inside a
// transaction (a marker follows its last record, and is no record to
// process), and the group's committed offset.
type lagState struct {
	name      string
	gauge     *metrics.Gauge
	hw        int64
	txnTail   bool
	committed int64 // -1: none known yet
}

func newRunnerMetrics(set *metrics.Set, name, group string) *runnerMetrics {
	// The latency histograms have fixed buckets (le), so that
	// histogram_quantile works in plain Prometheus; each spans the range
	// its latency is expected in, with room either side.
	var (
		// A transaction: a few milliseconds on a quiet broker, seconds
		// when it is slow or a batch is large.
		txnBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
		// Processing one record: microseconds, a millisecond or more for
		// a record that takes a store lookup or a large body.
		recordBuckets = []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1}
		// The age of an event when processed: milliseconds when the
		// pipeline keeps up, hours after an outage or a replay.
		ageBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}
	)
	pl := `pipeline="` + name + `"`
	one := func(family string) string { return family + "{" + pl + "}" }
	m := &runnerMetrics{
		set:                set,
		pipeline:           pl,
		group:              group,
		recordsIn:          set.GetOrCreateCounter(one("carepipe_records_in_total")),
		recordsOut:         set.GetOrCreateCounter(one("carepipe_records_out_total")),
		commits:            set.GetOrCreateCounter(one("carepipe_txn_commits_total")),
		aborts:             set.GetOrCreateCounter(one("carepipe_txn_aborts_total")),
		sessionRestarts:    set.GetOrCreateCounter(one("carepipe_session_restarts_total")),
		globalDecodeErrors: set.GetOrCreateCounter(one("carepipe_global_table_decode_errors_total")),
		truncatedErrors:    set.GetOrCreateCounter(one("carepipe_error_records_truncated_total")),
		restoredRecords:    set.GetOrCreateCounter(one("carepipe_state_restored_records_total")),
		fencedTimerTxns:    set.GetOrCreateCounter(one("carepipe_txn_membership_check_failures_total")),
		txnSeconds:         set.GetOrCreatePrometheusHistogramExt(one("carepipe_txn_duration_seconds"), txnBuckets),
		processSeconds:     set.GetOrCreatePrometheusHistogramExt(one("carepipe_process_seconds_per_record"), recordBuckets),
		eventAgeSeconds:    set.GetOrCreatePrometheusHistogramExt(one("carepipe_event_age_at_processing_seconds"), ageBuckets),
		errs:               make(map[ErrorType]*metrics.Counter),
		lags:               make(map[topicPartition]*lagState),
	}
	for _, t := range []ErrorType{TypeDecode, TypeInvalid, TypeOversized, TypeProcessing, TypePanic} {
		m.errorCounter(t)
	}
	for i, h := range invalidHeaderLabels {
		m.invalidHeaders[i] = set.GetOrCreateCounter(`carepipe_invalid_headers_total{` + pl + `,header="` + h + `"}`)
	}
	for a := restoreKeep; a <= restoreFull; a++ {
		m.restores[a] = set.GetOrCreateCounter(`carepipe_state_preparations_total{` + pl + `,how="` + a.String() + `"}`)
	}
	return m
}

// gauges registers the gauges the runner answers when scraped: whether it
// is ready (see [Runner.Health]), how many partitions it is assigned, and
// how many of them are restoring their state.
func (m *runnerMetrics) gauges(r *Runner) {
	m.set.GetOrCreateGauge(`carepipe_ready{`+m.pipeline+`}`, func() float64 {
		if r.Ready() {
			return 1
		}
		return 0
	})
	m.set.GetOrCreateGauge(`carepipe_assigned_partitions{`+m.pipeline+`}`, func() float64 {
		return float64(r.AssignedPartitions())
	})
	m.set.GetOrCreateGauge(`carepipe_restoring_partitions{`+m.pipeline+`}`, func() float64 {
		return float64(r.restoring.Load())
	})
}

// restore counts a store brought up to date when its partition was
// assigned, by how: kept, caught up from its position, or restored in full.
func (m *runnerMetrics) restore(a restoreAction) *metrics.Counter { return m.restores[a] }

func (m *runnerMetrics) errorCounter(t ErrorType) *metrics.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.errs[t]
	if c == nil {
		c = m.set.GetOrCreateCounter(`carepipe_errors_total{` + m.pipeline + `,type="` + string(t) + `"}`)
		m.errs[t] = c
	}
	return c
}

// The consumer lag of a partition is measured from the group's committed
// offset, not from the fetch position: a partition whose transactions keep
// aborting fetches on but commits nothing, and its lag must say so. It is
// the high watermark of the last fetch less the committed offset, less the
// transaction marker that follows a transactional last record. Only
// partitions this instance owns have a series: one that moves away drops
// it, so that two instances never both report it.

// fetched records a fetch of partition's records, first to last, with
// high watermark hw. Before any commit is known, the first record's offset
// is where the group's committed offset stood.
func (m *runnerMetrics) fetched(topic string, partition int32, first, last *kgo.Record, hw int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.lagOf(topic, partition)
	if l.committed < 0 {
		l.committed = first.Offset
	}
	l.hw, l.txnTail = hw, last.Attrs.IsTransactional()
	l.set()
}

// committedAt records the group's committed offset of partition.
func (m *runnerMetrics) committedAt(topic string, partition int32, offset int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.lags[topicPartition{topic, partition}]; l != nil {
		l.committed = offset
		l.set()
	}
}

// assignedLag gives partition of each of topics a lag series, at zero
// until its first fetch, so that an assigned partition has one before
// any traffic.
func (m *runnerMetrics) assignedLag(topics []string, partition int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range topics {
		m.lagOf(t, partition)
	}
}

// dropLag removes the lag series of partition of each of topics.
func (m *runnerMetrics) dropLag(topics []string, partition int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range topics {
		tp := topicPartition{t, partition}
		if l := m.lags[tp]; l != nil {
			m.set.UnregisterMetric(l.name)
			delete(m.lags, tp)
		}
	}
}

func (m *runnerMetrics) lagOf(topic string, partition int32) *lagState {
	tp := topicPartition{topic, partition}
	l := m.lags[tp]
	if l == nil {
		name := `carepipe_consumer_lag_records{` + m.pipeline + `,group="` + m.group + `",topic="` + topic + `",partition="` + strconv.Itoa(int(partition)) + `"}`
		l = &lagState{name: name, gauge: m.set.GetOrCreateGauge(name, nil), committed: -1}
		m.lags[tp] = l
	}
	return l
}

func (l *lagState) set() {
	lag := l.hw - l.committed
	if l.txnTail {
		lag--
	}
	l.gauge.Set(float64(max(lag, 0)))
}

// globalFetchError counts a fetch error of a global table's reader, by
// error class (one of the fixed set fetchErrorClass returns). The counters
// are not cached: errors are rare, and the set's own lookup is enough.
func (m *runnerMetrics) globalFetchError(topic, class string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`carepipe_global_table_fetch_errors_total{` + m.pipeline + `,topic="` + topic + `",class="` + class + `"}`)
}

// globalRebuild counts the times a global table was read again from its
// topic's start while the pipeline ran (after data loss or a recreated
// topic).
func (m *runnerMetrics) globalRebuild(topic string) *metrics.Counter {
	return m.set.GetOrCreateCounter(`carepipe_global_table_rebuilds_total{` + m.pipeline + `,topic="` + topic + `"}`)
}

// observeBatch records a processed batch: the mean processing time per
// record (one histogram update per batch keeps the hot path cheap) and the
// age of its last event.
func (m *runnerMetrics) observeBatch(n int, took time.Duration, last *kgo.Record) {
	m.processSeconds.Update(took.Seconds() / float64(n))
	if !last.Timestamp.IsZero() {
		m.eventAgeSeconds.Update(max(time.Since(last.Timestamp).Seconds(), 0))
	}
}

// Stats is a snapshot of a runner's counters, for summaries and tests.
type Stats struct {
	RecordsIn, RecordsOut, Errors, Commits, Aborts, SessionRestarts uint64
	// Conflicts counts, of Errors, the records of type [TypeConflict]:
	// updates that lost to newer state. They are an expected outcome that
	// the error topic keeps for audit, not a failure, and a summary shows
	// them apart.
	Conflicts uint64
	// Preparations counts the stores brought up to date on assignment, by
	// how (see [Runner] on restoring): kept as they were, caught up from
	// their changelog position, or restored from the changelog's start.
	Kept, CaughtUp, FullRestores uint64
	// MembershipCheckFailures counts transactions that fired timers only
	// and were aborted because the group no longer had this instance as a
	// member of its current generation.
	MembershipCheckFailures uint64
	// Lag is the consumer lag summed over the partitions this instance
	// has fetched from, as of their last fetch.
	Lag int64
}

func (m *runnerMetrics) stats() Stats {
	s := Stats{
		RecordsIn:       m.recordsIn.Get(),
		RecordsOut:      m.recordsOut.Get(),
		Commits:         m.commits.Get(),
		Aborts:          m.aborts.Get(),
		SessionRestarts: m.sessionRestarts.Get(),
		Kept:            m.restores[restoreKeep].Get(),
		CaughtUp:        m.restores[restoreCatchUp].Get(),
		FullRestores:    m.restores[restoreFull].Get(),

		MembershipCheckFailures: m.fencedTimerTxns.Get(),
	}
	s.Lag = m.lag()
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, c := range m.errs {
		n := c.Get()
		s.Errors += n
		if t == TypeConflict {
			s.Conflicts += n
		}
	}
	return s
}

// lag is the consumer lag summed over the partitions this instance owns.
func (m *runnerMetrics) lag() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, l := range m.lags {
		n += int64(l.gauge.Get())
	}
	return n
}
