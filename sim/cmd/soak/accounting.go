package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/sim/check"
)

// result is what one seed (or all) found.
type result struct {
	records, faults                                   int
	byFault                                           map[string]int
	lost, duplicated, order, errMismatch, diff, state int
	examples                                          []string
	// eventTime is the span of the inputs' timestamps, summed over
	// seeds: the time the workloads stand for (the pipelines themselves
	// run on the wall clock, compressed).
	eventTime time.Duration
}

func (r *result) add(o result) {
	r.records += o.records
	r.faults += o.faults
	if r.byFault == nil {
		r.byFault = map[string]int{}
	}
	for k, v := range o.byFault {
		r.byFault[k] += v
	}
	r.lost += o.lost
	r.duplicated += o.duplicated
	r.order += o.order
	r.errMismatch += o.errMismatch
	r.diff += o.diff
	r.state += o.state
	r.eventTime += o.eventTime
	r.examples = append(r.examples, o.examples...)
}

func (r result) problems() int {
	return r.lost + r.duplicated + r.order + r.errMismatch + r.diff + r.state
}

func (r result) String() string {
	kinds := make([]string, 0, len(r.byFault))
	for k, v := range r.byFault {
		kinds = append(kinds, k+"="+strconv.Itoa(v))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("records %d  faults %d (%s)  lost %d  duplicated %d  order violations %d  error-topic mismatches %d  outcome mismatches %d  state mismatches %d",
		r.records, r.faults, strings.Join(kinds, " "), r.lost, r.duplicated, r.order, r.errMismatch, r.diff, r.state)
	if len(r.examples) > 0 {
		s += "\n  first problems: " + strings.Join(r.examples[:min(len(r.examples), 10)], "; ")
	}
	return s
}

// addFault counts a fault step that fired kind; a missed one is named but
// not counted as a fault.
func (r *result) addFault(kind string) {
	if r.byFault == nil {
		r.byFault = map[string]int{}
	}
	if !strings.HasSuffix(kind, "-missed") {
		r.faults++
	}
	r.byFault[kind]++
}

// drain lets the pipelines finish the workloads and stops them: every
// prior authorization completed, every group caught up with its inputs.
// The accounting then reads what they committed.
func (w *world) drain(ctx context.Context) error {
	// Prior authorizations go back and forth with the world: wait for
	// every workflow to complete before waiting for the groups.
	if err := w.waitFor(3*time.Minute, "every prior authorization completed", func() (bool, error) {
		done, err := readCommitted(ctx, w, priorauth.TopicWorkflowCompleted)
		seen := map[string]bool{}
		for _, r := range done {
			seen[string(r.Key)] = true
		}
		return len(seen) >= len(w.work.paIDs), err
	}); err != nil && !errors.Is(err, errWaitedOut) {
		return err
	}
	// Past the limit, the workflows still open are what a pipeline lost
	// (a stale task's state, say, sent an event to the error topic): the
	// accounting counts them.
	if err := w.waitFor(3*time.Minute, "caught up", func() (bool, error) {
		return w.caughtUp(ctx, slices.Sorted(maps.Keys(w.specs))...)
	}); err != nil {
		return err
	}
	return w.stopAll()
}

// account reads a drained world's outputs and stores, read_committed, and
// holds them to the workloads' truths: every input record accounted for,
// each outcome and store as the models from the inputs say. Faults are
// the caller's to add.
func account(ctx context.Context, w *world) (result, error) {
	a := &accounting{ctx: ctx, w: w, res: result{
		byFault:   map[string]int{},
		records:   w.records(),
		eventTime: w.work.eventTime,
	}}
	for _, part := range []func() error{a.orders, a.alerts, a.priorAuth, a.dataSync, a.validationStore, a.priorAuthStore} {
		if err := part(); err != nil {
			return a.res, err
		}
	}
	return a.res, nil
}

// accounting is account's progress: each method accounts for one
// pipeline's outputs or one store, adding what it finds to res.
type accounting struct {
	ctx context.Context
	w   *world
	res result
}

func (a *accounting) read(topic string) ([]*kgo.Record, error) {
	return readCommitted(a.ctx, a.w, topic)
}

// orders: one processed record per submitted order.
func (a *accounting) orders() error {
	out, err := a.read(orders.TopicProcessed)
	if err != nil {
		return err
	}
	errs, err := a.read(orders.TopicErrors)
	if err != nil {
		return err
	}
	rep := check.Account(a.w.work.orders, out, errs, check.Expect{
		InputID:  func(r *kgo.Record) string { return string(r.Key) },
		OutputID: func(r *kgo.Record) (string, bool) { return string(r.Key), true },
	})
	a.res.addReport("orders", rep)
	return nil
}

// alerts: the expected alert ids as a multiset; each poison record in the
// error topic, whole.
func (a *accounting) alerts() error {
	res := &a.res
	al, err := a.read(alerts.TopicAlerts)
	if err != nil {
		return err
	}
	want := map[string]int{}
	for _, id := range sim.ExpectedAlertIDs(a.w.work.obsTruths) {
		want[id]++
	}
	for _, r := range al {
		var v struct{ AlertID string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			res.diff++
			res.examples = append(res.examples, "alerts: an alert that does not decode")
			continue
		}
		want[v.AlertID]--
	}
	for id, c := range want {
		switch {
		case c > 0:
			res.lost += c
			res.examples = append(res.examples, "alerts: missing "+id)
		case c < 0:
			res.duplicated -= c
			res.examples = append(res.examples, "alerts: extra "+id)
		}
	}
	var poison []*kgo.Record
	for i, t := range a.w.work.obsTruths {
		if t.Poison != "" {
			poison = append(poison, a.w.work.observations[i])
		}
	}
	errs, err := a.read(alerts.TopicErrors)
	if err != nil {
		return err
	}
	rep := check.Account(poison, nil, errs, check.Expect{
		InputID:  func(r *kgo.Record) string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) },
		OutputID: func(*kgo.Record) (string, bool) { return "", false },
	})
	res.addReport("alerts errors", rep)
	return nil
}

// priorAuth: each workflow completed once, with the payer's decision in
// its steps; each request made once; no error record.
func (a *accounting) priorAuth() error {
	res, work := &a.res, &a.w.work
	done, err := a.read(priorauth.TopicWorkflowCompleted)
	if err != nil {
		return err
	}
	per := map[string]int{}
	for _, r := range done {
		per[string(r.Key)]++
		var v struct {
			WorkflowSummary priorauth.WorkflowSummary `json:"workflowSummary"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return err
		}
		want := paSteps(work.paCfg, string(r.Key))
		var got []priorauth.Status
		for _, st := range v.WorkflowSummary.Steps {
			got = append(got, st.Name)
		}
		if !slices.Equal(got, want) {
			res.diff++
			res.examples = append(res.examples, fmt.Sprintf("priorauth %s: steps %v, want %v", r.Key, got, want))
		}
	}
	for _, id := range work.paIDs {
		switch c := per[id]; {
		case c == 0:
			res.lost++
			res.examples = append(res.examples, "priorauth: never completed "+id)
		case c > 1:
			res.duplicated += c - 1
			res.examples = append(res.examples, "priorauth: completed more than once "+id)
		}
	}
	for _, topic := range []string{priorauth.TopicDocumentationRequested, priorauth.TopicSubmissionRequested, priorauth.TopicCommunicationRequested} {
		reqs, err := a.read(topic)
		if err != nil {
			return err
		}
		per := map[string]int{}
		for _, r := range reqs {
			per[string(r.Key)]++
		}
		for id, c := range per {
			if c > 1 {
				res.duplicated += c - 1
				res.examples = append(res.examples, fmt.Sprintf("priorauth %s: %d requests for %s", topic, c, id))
			}
		}
	}
	errs, err := a.read(priorauth.TopicErrors)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		res.diff += len(errs)
		res.examples = append(res.examples, fmt.Sprintf("priorauth: %d error records, want none", len(errs)))
	}
	return nil
}

// dataSync: exactly the validated and error records the truth says, each
// entity's versions in order.
func (a *accounting) dataSync() error {
	res, truth := &a.res, a.w.work.syncTruth
	for _, e := range datasync.Entities() {
		vs, err := a.read(datasync.ValidatedTopic(e))
		if err != nil {
			return err
		}
		applied, resolved := 0, 0
		last := map[string]int64{}
		for _, r := range vs {
			if envelope.HeaderValue(r, datasync.HeaderConflictResolved) == "true" {
				resolved++
			} else {
				applied++
			}
			_, _, v, _, err := a.w.work.codec.DecodeValue(r.Value, e)
			if err != nil || v != last[string(r.Key)]+1 {
				res.order++
				res.examples = append(res.examples, fmt.Sprintf("datasync %s %s: version %d after %d", e, r.Key, v, last[string(r.Key)]))
			}
			last[string(r.Key)] = v
		}
		if d := applied - truth.Applied[string(e)]; d != 0 {
			res.diffCount(d, fmt.Sprintf("datasync %s: %d validated, want %d", e, applied, truth.Applied[string(e)]))
		}
		if d := resolved - truth.ConflictResolved[string(e)]; d != 0 {
			res.diffCount(d, fmt.Sprintf("datasync %s: %d conflict-resolved, want %d", e, resolved, truth.ConflictResolved[string(e)]))
		}
	}
	errs, err := a.read(datasync.TopicErrors)
	if err != nil {
		return err
	}
	wantErrs := 0
	for _, e := range datasync.Entities() {
		wantErrs += truth.Stale[string(e)] + truth.Invalid[string(e)] + truth.Undecodable[string(e)]
	}
	if d := len(errs) - wantErrs; d != 0 {
		res.diffCount(d, fmt.Sprintf("datasync: %d error records, want %d", len(errs), wantErrs))
	}
	return nil
}

// validationStore holds the data synchronization validation store, as a
// restore loads it (its changelog, read_committed, last value per key),
// to each entity's version, deletion and fields as the workload's truth
// works them out.
func (a *accounting) validationStore() error {
	cl, err := a.read(pipeline.ChangelogTopic(datasync.GroupValidation, datasync.StoreEntities))
	if err != nil {
		return err
	}
	held := map[string]any{}
	for k, b := range check.Changelog(cl) {
		st, err := datasync.UnmarshalState(b)
		if err != nil {
			return fmt.Errorf("validation store: %w", err)
		}
		e, id, _ := strings.Cut(k, "/")
		ch := st.Materialize(datasync.Entity(e), id)
		held[k] = map[string]any{"version": st.Version, "deleted": ch.Op == datasync.OpDelete, "fields": ch.Fields}
	}
	a.res.addStates("datasync validation store", check.States(a.w.work.syncTruth.StateModel(), held))
	return nil
}

// priorAuthStore holds the prior-authorization store, as a restore loads
// it, to its model: every case communicated, its status history the
// payer's decision for it.
func (a *accounting) priorAuthStore() error {
	cl, err := a.read(pipeline.ChangelogTopic(priorauth.Group, priorauth.StorePriorAuths))
	if err != nil {
		return err
	}
	held := map[string]any{}
	for k, b := range check.Changelog(cl) {
		// The stored record, in the query API's JSON (priorauth's doc).
		var rec struct {
			Status        priorauth.Status `json:"status"`
			StatusHistory []struct {
				Status priorauth.Status `json:"status"`
			} `json:"statusHistory"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("prior-authorization store: %w", err)
		}
		history := make([]priorauth.Status, len(rec.StatusHistory))
		for i, e := range rec.StatusHistory {
			history[i] = e.Status
		}
		held[k] = map[string]any{"status": rec.Status, "history": history}
	}
	model := map[string]any{}
	for _, id := range a.w.work.paIDs {
		model[id] = map[string]any{"status": priorauth.StatusDeterminationCommunicated, "history": paSteps(a.w.work.paCfg, id)}
	}
	a.res.addStates("prior-authorization store", check.States(model, held))
	return nil
}

// paSteps are the statuses a prior authorization goes through, by the
// payer's decision for it.
func paSteps(cfg sim.PriorAuthWorldConfig, id string) []priorauth.Status {
	final, pended := cfg.PriorAuthOutcome(id)
	steps := []priorauth.Status{priorauth.StatusInitiated, priorauth.StatusDocumentationAssembled, priorauth.StatusSubmitted}
	if pended {
		steps = append(steps, priorauth.StatusPended)
	}
	return append(steps, priorauth.Status(final), priorauth.StatusDeterminationCommunicated)
}

func (r *result) addStates(what string, rep check.StateReport) {
	r.state += rep.Problems()
	for _, e := range rep.Examples {
		r.examples = append(r.examples, what+": "+e)
	}
}

// diffCount records an outcome count that is d off the truth: more is
// duplication, fewer is loss.
func (r *result) diffCount(d int, example string) {
	if d > 0 {
		r.duplicated += d
	} else {
		r.lost -= d
	}
	r.examples = append(r.examples, example)
}

func (r *result) addReport(what string, rep check.Report) {
	r.lost += rep.Lost
	r.duplicated += rep.Duplicated + rep.Unexpected
	r.order += rep.OrderViolations
	r.errMismatch += rep.ErrorMismatches
	for _, e := range rep.Examples {
		r.examples = append(r.examples, what+": "+e)
	}
}
