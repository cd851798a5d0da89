package app

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/carepipe/carepipe/version"
)

// Metric naming. Every carepipe series carries the label pipeline (the
// [pipeline.Spec] name: alerts, priorauth, orders, datasync_cdc, ...),
// except carepipe_build_info and carepipe_embedded_demo, which describe
// the process. A runtime metric, which every pipeline has,
// is named carepipe_<what>, so that one query covers every pipeline and
// a dashboard picks them by label. A use-case metric, which only one use
// case has, keeps the use case in its name (carepipe_alerts_skipped_total,
// carepipe_datasync_acks_total{pipeline="datasync_reconciliation"}).
// Labels never hold record content.

// family is what /metrics says of a metric family in # HELP and # TYPE.
type family struct{ typ, help string }

// families is every metric family carepipe exports, with its type and
// help text. The VictoriaMetrics sets the pipelines register in write
// samples only; /metrics adds this metadata, so that each family has
// # HELP and # TYPE as Prometheus tools expect. A family missing here
// fails the exposition test (no help text).
func families() map[string]family {
	return map[string]family{
		// Runtime metrics, labelled pipeline (pipeline/metrics.go).
		"carepipe_build_info":                          {"gauge", "Always 1: the version, VCS revision and Go version of the running binary, as labels."},
		"carepipe_embedded_demo":                       {"gauge", "1 when this process runs the embedded demo (in-process Kafka, simulated traffic; not for production), else 0."},
		"carepipe_ready":                               {"gauge", "1 when the pipeline does its work (as /readyz reports), 0 when it is starting, preparing state, failing its session or stalled."},
		"carepipe_assigned_partitions":                 {"gauge", "Partitions of each consumed topic the consumer group has assigned this instance."},
		"carepipe_restoring_partitions":                {"gauge", "Assigned partitions whose state stores are still being brought up to date."},
		"carepipe_records_in_total":                    {"counter", "Input records processed, in committed or aborted transactions."},
		"carepipe_records_out_total":                   {"counter", "Records produced to output topics (error records excluded)."},
		"carepipe_errors_total":                        {"counter", "Input records sent to the error topic, by error type."},
		"carepipe_txn_commits_total":                   {"counter", "Transactions committed."},
		"carepipe_txn_aborts_total":                    {"counter", "Transactions aborted; their inputs are processed again."},
		"carepipe_session_restarts_total":              {"counter", "Consumer sessions started again after a failure."},
		"carepipe_txn_membership_check_failures_total": {"counter", "Timer-only transactions aborted because this instance was no longer a member of the group's current generation."},
		"carepipe_txn_duration_seconds":                {"histogram", "Time from a transaction's first record to its commit or abort."},
		"carepipe_process_seconds_per_record":          {"histogram", "Processing time per record, the mean of each batch."},
		"carepipe_event_age_at_processing_seconds":     {"histogram", "Age of a batch's last event (its record timestamp) when processed."},
		"carepipe_consumer_lag_records":                {"gauge", "Records of an assigned partition not yet committed by the group: high watermark less committed offset."},
		"carepipe_state_preparations_total":            {"counter", "State stores brought up to date on assignment, by how: kept, caught up, or restored in full."},
		"carepipe_state_restored_records_total":        {"counter", "Changelog records read to bring state stores up to date."},
		"carepipe_error_records_truncated_total":       {"counter", "Error records truncated to fit the error topic's record limit."},
		"carepipe_global_table_decode_errors_total":    {"counter", "Global table records that could not be decoded and were skipped."},
		"carepipe_invalid_headers_total":               {"counter", "Input headers too long or not valid text (or not W3C trace context) that were not carried to the outputs, by header: a correlation-id replaced by another id, trace context and other carried headers dropped."},
		"carepipe_global_table_fetch_errors_total":     {"counter", "Fetch errors of a global table's reader, by topic and error class."},
		"carepipe_global_table_rebuilds_total":         {"counter", "Global tables read again from their topic's start while running (data loss or a recreated topic)."},

		// Clinical alerts (pipeline/alerts).
		"carepipe_alerts_alerts_total":        {"counter", "Alerts raised, by severity."},
		"carepipe_alerts_notifications_total": {"counter", "Notifications sent, by channel."},
		"carepipe_alerts_duplicates_total":    {"counter", "Observations already seen, not evaluated again."},
		"carepipe_alerts_suppressed_total":    {"counter", "Alerts suppressed as repeats within their rule's window."},
		"carepipe_alerts_replaced_total":      {"counter", "Alerts replaced by a corrected observation."},
		"carepipe_alerts_retracted_total":     {"counter", "Alerts retracted because their observation was withdrawn."},
		"carepipe_alerts_news2_total":         {"counter", "NEWS2 aggregate scores computed."},
		"carepipe_alerts_repartitioned_total": {"counter", "Observations sent through the repartition topic to be keyed by patient."},
		"carepipe_alerts_state_resets_total":  {"counter", "Patient alert states reset."},
		"carepipe_alerts_skipped_total":       {"counter", "Observations not evaluated, by reason (not errors: nothing to alert on)."},

		// Prior authorization (pipeline/priorauth).
		"carepipe_priorauth_transitions_total":        {"counter", "Workflow transitions made, by the status reached."},
		"carepipe_priorauth_duplicates_total":         {"counter", "Events for a transition already made."},
		"carepipe_priorauth_stale_events_total":       {"counter", "Events older than the workflow's current step, by kind."},
		"carepipe_priorauth_repartitioned_total":      {"counter", "Events sent through the repartition topic to be keyed by request."},
		"carepipe_priorauth_sla_breaches_total":       {"counter", "Workflows that passed their determination deadline."},
		"carepipe_priorauth_status_checks_total":      {"counter", "Status checks of pending workflows."},
		"carepipe_priorauth_unreadable_records_total": {"counter", "Stored workflow records that could not be read."},
		"carepipe_priorauth_purged_total":             {"counter", "Finished workflows purged from state after their retention."},

		// Orders (pipeline/orders).
		"carepipe_orders_processed_total": {"counter", "Orders processed."},

		// Data synchronization (pipeline/datasync), one stage each.
		"carepipe_datasync_changes_total":                      {"counter", "Source changes mapped to canonical changes, by entity (CDC stage)."},
		"carepipe_datasync_tombstones_total":                   {"counter", "Source tombstones passed over (CDC stage)."},
		"carepipe_datasync_validation_total":                   {"counter", "Canonical changes validated, by entity and outcome (validation stage)."},
		"carepipe_datasync_validation_repartitioned_total":     {"counter", "Changes sent through the validation stage's repartition topic."},
		"carepipe_datasync_reconciliations_completed_total":    {"counter", "Records every target acknowledged, by entity (reconciliation stage)."},
		"carepipe_datasync_reconciliations_overdue_total":      {"counter", "Records not acknowledged by every target in time, by entity (reconciliation stage)."},
		"carepipe_datasync_acks_total":                         {"counter", "Target acknowledgements, by target and status (reconciliation stage)."},
		"carepipe_datasync_reconciliation_repartitioned_total": {"counter", "Records sent through the reconciliation stage's repartition topic."},
	}
}

// exposition writes /metrics: the pipelines' sets with each family's
// metadata, the build info, and the Go runtime's and the process's
// metrics from Prometheus' own collectors (whose names and types are the
// ones dashboards for Go programs expect).
type exposition struct {
	sets      []*metrics.Set
	families  map[string]family
	buildInfo string
	runtime   *prometheus.Registry

	// demo: the process runs the embedded demo (carepipe_embedded_demo).
	demo bool
}

func newExposition(ps []*built) *exposition {
	e := &exposition{families: families(), runtime: prometheus.NewRegistry()}
	for _, p := range ps {
		// The datasync stages share nothing, but a set may serve more
		// than one runner: write each once.
		if s := p.runner.Metrics(); !slices.Contains(e.sets, s) {
			e.sets = append(e.sets, s)
		}
	}
	// The version, revision and Go version that `carepipe version` says,
	// linker stamps included.
	v := version.Get()
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	e.buildInfo = fmt.Sprintf(`carepipe_build_info{version="%s",revision="%s",go_version="%s"} 1`,
		esc.Replace(v.Version), esc.Replace(v.Revision), esc.Replace(v.GoVersion))
	e.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return e
}

// write writes the exposition to w. Several sets may hold series of one
// family (one set per pipeline, each with its own pipeline label): their
// lines are gathered by family, so that each family is written once, as
// the text format requires.
func (e *exposition) write(w io.Writer) error {
	var raw bytes.Buffer
	for _, s := range e.sets {
		s.WritePrometheus(&raw)
	}
	raw.WriteString(e.buildInfo + "\n")
	demo := 0
	if e.demo {
		demo = 1
	}
	fmt.Fprintf(&raw, "carepipe_embedded_demo %d\n", demo)
	byFamily := make(map[string][]string)
	sc := bufio.NewScanner(&raw)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			continue
		}
		f := e.familyOf(line[:i])
		byFamily[f] = append(byFamily[f], line)
	}
	names := make([]string, 0, len(byFamily))
	for f := range byFamily {
		names = append(names, f)
	}
	slices.Sort(names)
	bw := bufio.NewWriter(w)
	for _, f := range names {
		if m, ok := e.families[f]; ok {
			fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f, m.help, f, m.typ)
		}
		for _, l := range byFamily[f] {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	mfs, err := e.runtime.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// familyOf is the family a sample named name belongs to: a histogram's
// _bucket, _sum and _count samples belong to the histogram.
func (e *exposition) familyOf(name string) string {
	if _, ok := e.families[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if stem, ok := strings.CutSuffix(name, suffix); ok && e.families[stem].typ == "histogram" {
			return stem
		}
	}
	return name
}
