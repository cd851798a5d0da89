package pipeline

import (
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runnerMetrics are the runtime's metrics, named carepipe_<pipeline>_...;
// labels come only from error types, topics and partitions.
type runnerMetrics struct {
	set    *metrics.Set
	prefix string

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
	txnSeconds         *metrics.Histogram
	processSeconds     *metrics.Histogram
	eventAgeSeconds    *metrics.Histogram

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
	p := "carepipe_" + name + "_"
	m := &runnerMetrics{
		set:                set,
		prefix:             p,
		group:              group,
		recordsIn:          set.GetOrCreateCounter(p + "records_in_total"),
		recordsOut:         set.GetOrCreateCounter(p + "records_out_total"),
		commits:            set.GetOrCreateCounter(p + "txn_commits_total"),
		aborts:             set.GetOrCreateCounter(p + "txn_aborts_total"),
		sessionRestarts:    set.GetOrCreateCounter(p + "session_restarts_total"),
		globalDecodeErrors: set.GetOrCreateCounter(p + "global_table_decode_errors_total"),
		truncatedErrors:    set.GetOrCreateCounter(p + "error_records_truncated_total"),
		restoredRecords:    set.GetOrCreateCounter(p + "state_restored_records_total"),
		fencedTimerTxns:    set.GetOrCreateCounter(p + "txn_membership_check_failures_total"),
		txnSeconds:         set.GetOrCreateHistogram(p + "txn_duration_seconds"),
		processSeconds:     set.GetOrCreateHistogram(p + "process_seconds_per_record"),
		eventAgeSeconds:    set.GetOrCreateHistogram(p + "event_age_at_processing_seconds"),
		errs:               make(map[ErrorType]*metrics.Counter),
		lags:               make(map[topicPartition]*lagState),
	}
	for _, t := range []ErrorType{ErrDecode, ErrInvalid, ErrOversized, ErrProcessing, ErrPanic} {
		m.errorCounter(t)
	}
	for a := restoreKeep; a <= restoreFull; a++ {
		m.restores[a] = set.GetOrCreateCounter(p + `state_preparations_total{how="` + a.String() + `"}`)
	}
	return m
}

// restore counts a store brought up to date when its partition was
// assigned, by how: kept, caught up from its position, or restored in full.
func (m *runnerMetrics) restore(a restoreAction) *metrics.Counter { return m.restores[a] }

func (m *runnerMetrics) errorCounter(t ErrorType) *metrics.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.errs[t]
	if c == nil {
		c = m.set.GetOrCreateCounter(m.prefix + `errors_total{type="` + string(t) + `"}`)
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
		name := m.prefix + `consumer_lag_records{group="` + m.group + `",topic="` + topic + `",partition="` + strconv.Itoa(int(partition)) + `"}`
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
	return m.set.GetOrCreateCounter(m.prefix + `global_table_fetch_errors_total{topic="` + topic + `",class="` + class + `"}`)
}

// globalRebuild counts the times a global table was read again from its
// topic's start while the pipeline ran (after data loss or a recreated
// topic).
func (m *runnerMetrics) globalRebuild(topic string) *metrics.Counter {
	return m.set.GetOrCreateCounter(m.prefix + `global_table_rebuilds_total{topic="` + topic + `"}`)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.errs {
		s.Errors += c.Get()
	}
	for _, l := range m.lags {
		s.Lag += int64(l.gauge.Get())
	}
	return s
}
