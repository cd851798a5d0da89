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
	restoredRecords    *metrics.Counter
	restores           [restoreFull + 1]*metrics.Counter
	fencedTimerTxns    *metrics.Counter
	txnSeconds         *metrics.Histogram
	processSeconds     *metrics.Histogram
	eventAgeSeconds    *metrics.Histogram

	mu     sync.Mutex
	errs   map[ErrorType]*metrics.Counter
	lags   map[string]*metrics.Gauge
	labels []byte
}

func newRunnerMetrics(set *metrics.Set, name string) *runnerMetrics {
	p := "carepipe_" + name + "_"
	m := &runnerMetrics{
		set:                set,
		prefix:             p,
		recordsIn:          set.GetOrCreateCounter(p + "records_in_total"),
		recordsOut:         set.GetOrCreateCounter(p + "records_out_total"),
		commits:            set.GetOrCreateCounter(p + "txn_commits_total"),
		aborts:             set.GetOrCreateCounter(p + "txn_aborts_total"),
		sessionRestarts:    set.GetOrCreateCounter(p + "session_restarts_total"),
		globalDecodeErrors: set.GetOrCreateCounter(p + "global_table_decode_errors_total"),
		restoredRecords:    set.GetOrCreateCounter(p + "state_restored_records_total"),
		fencedTimerTxns:    set.GetOrCreateCounter(p + "txn_membership_check_failures_total"),
		txnSeconds:         set.GetOrCreateHistogram(p + "txn_duration_seconds"),
		processSeconds:     set.GetOrCreateHistogram(p + "process_seconds_per_record"),
		eventAgeSeconds:    set.GetOrCreateHistogram(p + "event_age_at_processing_seconds"),
		errs:               make(map[ErrorType]*metrics.Counter),
		lags:               make(map[string]*metrics.Gauge),
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

func (m *runnerMetrics) lag(topic string, partition int32) *metrics.Gauge {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels = append(m.labels[:0], topic...)
	m.labels = strconv.AppendInt(append(m.labels, '/'), int64(partition), 10)
	g := m.lags[string(m.labels)]
	if g == nil {
		g = m.set.GetOrCreateGauge(m.prefix+`consumer_lag_records{topic="`+topic+`",partition="`+
			strconv.Itoa(int(partition))+`"}`, nil)
		m.lags[string(m.labels)] = g
	}
	return g
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
	for _, g := range m.lags {
		s.Lag += int64(g.Get())
	}
	return s
}
