package alerts

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// patientState is a patient-alerts store value: what the pipeline keeps of
// a patient between observations.
type patientState struct {
	// Seq is the patient's running count of history records.
	Seq int64
	// Open are the patient's alerts that are not retracted, oldest first,
	// at most [maxOpenAlerts].
	Open []openAlert
	// Vitals are the latest reading of each NEWS2 parameter, in event time.
	Vitals []storedVital

	// openRaw is the open-alerts array as read, kept undecoded until an
	// observation needs it (see loadOpen) and written back as it is when
	// none did: most observations only update a NEWS2 reading.
	openRaw    []byte
	openLoaded bool
	// openIDs filters the observation ids openRaw names.
	openIDs idFilter
	// openVersion is the state version openRaw was written in: its
	// layout.
	openVersion byte
	// bases holds the open alerts' bases as decoded, each alert's a
	// full slice of it: an array reused with the input, so that loading
	// the open alerts allocates no basis.
	bases []storedVital
}

// loadOpen decodes the open alerts, once. An unreadable array is dropped
// (the state is then reset in part, as an unreadable state is whole).
func (s *patientState) loadOpen() bool {
	if s.openLoaded {
		return true
	}
	s.openLoaded = true
	if s.openRaw == nil {
		return true
	}
	err := decodeOpen(s.openRaw, s)
	s.openRaw = nil
	if err != nil {
		s.Open = nil
		return false
	}
	return true
}

// maxOpenAlerts and openAlertHorizon bound a patient's open alerts: the
// oldest go first, and those notified more than the horizon (event time)
// before the observation being processed go when the open alerts are next
// read. An alert that has left can no longer be replaced or retracted (a
// late amendment raises it again, as version 1), nor suppress repeats; the
// bound keeps every patient's state, read for each of their observations,
// small. The package doc states both: a change here changes it.
const (
	maxOpenAlerts    = 32
	openAlertHorizon = 24 * time.Hour
)

// maxSuppressedIDs bounds the repeats an open alert remembers by id, to
// recognise a re-sent repeat and to uncount a repeat entered in error.
const maxSuppressedIDs = 32

// openAlert is an alert's current version as the state keeps it.
type openAlert struct {
	AlertID       string
	RuleID        string
	Rule          string
	ObservationID string
	Severity      rules.Severity
	Version       int64
	Provisional   bool
	Value         float64
	Unit          string
	// Fingerprint identifies what the current version says (value,
	// status, severity): an observation that says it again is a duplicate.
	Fingerprint string
	// At is the event time (ms since the epoch) of the version that was
	// notified: the start of the rule's suppression window.
	At            int64
	Suppressed    int64
	SuppressedIDs []string
	// Basis, for a news2 alert, are the readings its current version was
	// scored from, one per parameter present: so that a correction of any
	// of them, the alert's own observation's or another's, can find the
	// alert and re-score it from what it read, whatever readings arrived
	// since. Nil for every other rule, and for a news2 alert written by a
	// version before 3: such an alert follows only corrections of its own
	// observation, scored afresh as when it was raised.
	Basis []storedVital
}

// storedVital is a NEWS2 parameter reading kept in the state.
type storedVital struct {
	Vital         vital
	Value         float64
	At            int64
	ObservationID string
}

// candidate is an alert an observation asks for, before the state decides
// whether it is new, a new version, a duplicate or a suppressed repeat.
type candidate struct {
	alertID     string
	ruleID      string
	rule        string
	severity    rules.Severity
	description string
	value       float64
	unit        string
	compared    *float64
	comparedIn  string
	provisional bool
	news2       *NEWS2Detail
	// basis is a news2 candidate's readings (see [openAlert.Basis]).
	basis []storedVital
	// level is a news2 alert's response level; responseNone for every
	// other rule.
	level  responseLevel
	window time.Duration
	// block holds a news2 candidate's arrays (see [news2Block]).
	block *news2Block
}

func (c *candidate) fingerprint() string {
	b := make([]byte, 0, 48)
	b = strconv.AppendFloat(b, c.value, 'g', -1, 64)
	b = append(b, '|')
	b = append(b, c.severity...)
	if c.provisional {
		b = append(b, "|p"...)
	}
	if c.news2 != nil {
		for _, s := range c.news2.SubScores {
			b = append(b, '|')
			b = strconv.AppendInt(b, int64(s.Score), 10)
		}
	}
	return string(b)
}

// applier runs one observation against one patient's state.
type applier struct {
	p        *Processor
	in       *input
	st       *patientState
	out      *outcome
	table    *pipeline.GlobalTable
	patients patientLookup
	key      []byte
	at       int64  // the observation's event time, ms since the epoch
	ts       string // the same, RFC 3339; "" when the record has none
	corr     string
	pc       *patientContext
	changed  bool
	prepared bool
	hdrs     [3][]kgo.RecordHeader
}

// prepare computes what every emitted record carries, on the first record:
// most observations emit none.
func (a *applier) prepare() {
	if a.prepared {
		return
	}
	a.prepared = true
	a.key = []byte(a.in.Observation.PatientID)
	if t := a.in.eventTime(); !t.IsZero() && t.Unix() > 0 {
		a.ts = t.Format(time.RFC3339Nano)
	}
	a.corr = a.in.CorrelationID()
	switch {
	case a.table != nil:
		a.pc, _ = lookupPatient(a.table, a.in.Observation.PatientID)
	case a.patients != nil:
		a.pc, _ = a.patients(a.in.Observation.PatientID)
	}
}

// apply runs the findings of in against the patient's state prev (nil:
// none) and encodes the records to emit. An unreadable prev is replaced,
// not an error: losing the open alerts risks a duplicate alert, while
// failing would hold back every alert of the patient.
//
// The outcome goes into *out, which the caller owns (process passes the
// input's own, so the common record allocates none); patients come from
// table, or from patients where there is no table (handle).
func (p *Processor) apply(in *input, f *findings, table *pipeline.GlobalTable, patients patientLookup, prev []byte, out *outcome) {
	*out = outcome{Records: out.Records[:0], Alerts: out.Alerts[:0]}
	// The input's scratch state: its slices are reused between records.
	st := &in.state
	*st = patientState{Open: st.Open[:0], Vitals: st.Vitals[:0], bases: st.bases[:0]}
	if len(prev) > 0 {
		if err := decodeState(prev, st); err != nil || st.Seq < 0 {
			*st, out.StateReset = patientState{}, true
		}
	}
	a := applier{p: p, in: in, st: st, out: out, table: table, patients: patients, changed: out.StateReset}
	if t := in.eventTime(); !t.IsZero() {
		a.at = t.UnixMilli()
	}
	obs := &in.Observation
	if st.openIDs.mayName(obs.ID) && mentions(st.openRaw, obs.ID) {
		a.loadOpen()
	}

	switch f.class {
	case classPending:
	case classWithdrawn:
		a.withdraw(obs.ID)
	default:
		a.result(f)
	}
	if a.changed && !st.openLoaded && st.openRaw != nil && st.openVersion != stateVersion {
		// An older open section is rewritten, not carried over (see
		// appendState): read here, an unreadable one counts as a reset.
		a.loadOpen()
	}
	if a.changed {
		// The new state is the old one, give or take an alert or two.
		// Written to the input's scratch, then copied to a value of its
		// own size: the store keeps it.
		in.scratch = appendState(in.scratch[:0], st)
		out.State = append(make([]byte, 0, len(in.scratch)), in.scratch...)
	}
}

// mentions reports whether a state value may name observation id: when
// it does not, an observation that fires nothing and carries no NEWS2
// parameter has nothing there to replace, retract or uncount, and the
// state need not be decoded. It looks for id behind its length, as the
// state writes strings; a false positive costs a decode, never a wrong
// outcome.
func mentions(state []byte, id string) bool {
	if id == "" {
		return false
	}
	// strings.Index is vectorised; the state is read, never modified.
	rest := unsafe.String(unsafe.SliceData(state), len(state))
	for {
		i := strings.Index(rest, id)
		if i < 0 {
			return false
		}
		if len(id) >= 0x80 || (i > 0 && rest[i-1] == byte(len(id))) {
			return true
		}
		rest = rest[i+1:]
	}
}

// loadOpen loads the open alerts for an observation that needs them, and
// drops those past the horizon.
func (a *applier) loadOpen() {
	if a.st.openLoaded {
		return
	}
	if !a.st.loadOpen() {
		a.out.StateReset, a.changed = true, true
	}
	horizon := a.at - openAlertHorizon.Milliseconds()
	if n := len(a.st.Open); n > 0 {
		a.st.Open = slices.DeleteFunc(a.st.Open, func(o openAlert) bool { return o.At < horizon })
		a.changed = a.changed || len(a.st.Open) != n
	}
}

// withdraw handles a cancelled or entered-in-error observation: its alerts
// are retracted, a repeat it was counted as is uncounted, its NEWS2
// readings are forgotten, and the news2 alerts of other observations
// that read them are re-scored without them. (Open alerts were loaded if
// they name it.)
func (a *applier) withdraw(obsID string) {
	st := a.st
	for i := 0; i < len(st.Open); {
		o := &st.Open[i]
		if o.ObservationID == obsID {
			a.retract(i)
			continue
		}
		if j := slices.Index(o.SuppressedIDs, obsID); j >= 0 {
			o.SuppressedIDs = slices.Delete(o.SuppressedIDs, j, j+1)
			o.Suppressed--
			a.changed = true
		}
		i++
	}
	n := len(st.Vitals)
	st.Vitals = slices.DeleteFunc(st.Vitals, func(v storedVital) bool { return v.ObservationID == obsID })
	a.changed = a.changed || len(st.Vitals) != n
	if cfg := &a.p.rules.news2; cfg.Enabled {
		a.follow(cfg, nil, false)
	}
}

// result handles an observation with a result: threshold rules, then NEWS2.
func (a *applier) result(f *findings) {
	obs := &a.in.Observation
	provisional := f.class == classProvisional
	// What this observation raised before and no longer fires (an
	// amendment below the threshold) is retracted.
	// A repeat it was counted as, for a rule it no longer fires, is
	// uncounted.
	for i := 0; i < len(a.st.Open); {
		o := &a.st.Open[i]
		if o.RuleID == rules.NEWS2ID || slices.ContainsFunc(f.firings, func(fr firing) bool { return fr.rule.ID == o.RuleID }) {
			i++
			continue
		}
		if o.ObservationID == obs.ID {
			a.retract(i)
			continue
		}
		if j := slices.Index(o.SuppressedIDs, obs.ID); j >= 0 {
			o.SuppressedIDs = slices.Delete(o.SuppressedIDs, j, j+1)
			o.Suppressed--
			a.changed = true
		}
		i++
	}
	for i := range f.firings {
		fr := &f.firings[i]
		c := candidate{
			alertID: obs.ID + "-" + fr.rule.ID, ruleID: fr.rule.ID, rule: fr.rule.Code,
			severity: fr.rule.Severity, description: fr.rule.Description,
			value: fr.value, unit: fr.unit, provisional: provisional, window: fr.rule.Suppression,
		}
		if fr.rule.Component != "" {
			c.rule = fr.rule.Component
		}
		if fr.converted {
			// Rounded for display only (3.2 mmol/L is 57.6512 mg/dL, not
			// 57.651199999999996); the comparison used the exact value.
			v := math.Round(fr.compared*1e6) / 1e6
			c.compared, c.comparedIn = &v, fr.rule.Unit
		}
		a.offer(&c)
	}
	n := &a.p.rules.news2
	if !n.Enabled {
		return
	}
	// A later version of an observation (amended, corrected, re-sent,
	// made final) first re-scores the open news2 alerts that read it;
	// then its readings replace the ones in force that it made.
	own := a.follow(n, f.vitals, provisional)
	if a.updateVitals(f.vitals) && !own {
		a.news2(n, provisional)
	} else if len(f.vitals) == 0 && !own {
		// Amended to carry no NEWS2 reading (a dataAbsentReason): an
		// alert raised on it without a basis (an older state's) has
		// nothing left to stand on.
		if i := a.st.findRule(obs.ID, rules.NEWS2ID); i >= 0 {
			a.retract(i)
		}
	}
}

// updateVitals stores the observation's NEWS2 readings where they are the
// latest in event time (or amend the reading this observation made),
// forgets a reading it made of a parameter it no longer carries (amended
// to a dataAbsentReason), and reports whether any reading was stored.
//
// The state keeps one reading per parameter, not its history: a reading
// forgotten leaves the parameter missing until the next, rather than
// bringing back the one it replaced.
func (a *applier) updateVitals(readings []vitalReading) bool {
	obsID := a.in.Observation.ID
	updated := false
	for _, r := range readings {
		i := slices.IndexFunc(a.st.Vitals, func(v storedVital) bool { return v.Vital == r.vital })
		nv := storedVital{Vital: r.vital, Value: r.value, At: a.at, ObservationID: obsID}
		switch {
		case i < 0:
			a.st.Vitals = append(a.st.Vitals, nv)
		case a.st.Vitals[i].ObservationID == obsID || a.st.Vitals[i].At <= a.at:
			if a.st.Vitals[i] == nv {
				continue
			}
			a.st.Vitals[i] = nv
		default:
			continue // an older reading than the one kept
		}
		updated = true
	}
	n := len(a.st.Vitals)
	a.st.Vitals = slices.DeleteFunc(a.st.Vitals, func(v storedVital) bool {
		return v.ObservationID == obsID && !slices.ContainsFunc(readings, func(r vitalReading) bool { return r.vital == v.Vital })
	})
	a.changed = a.changed || updated || len(a.st.Vitals) != n
	return updated
}

// follow re-scores every open news2 alert whose basis holds a reading of
// this observation, which now carries readings (none: it is withdrawn or
// has no NEWS2 parameter left). In each basis the observation's readings
// are replaced by readings, or leave; the alert raised on the observation
// itself takes all of them, and is retracted when none is left (it is no
// longer that observation's score). An alert whose new score no longer
// calls for a response is retracted; one whose score changed is replaced,
// notified only if it escalates; one whose score did not change keeps its
// version and takes the new basis. Alerts are never raised here: a score
// that did not alert before a correction is not revisited, except the
// corrected observation's own, which the caller scores afresh.
//
// It reports whether the observation's own news2 alert was re-scored
// here. Open alerts were loaded if they name the observation; unloaded,
// none does.
func (a *applier) follow(cfg *rules.NEWS2Rule, readings []vitalReading, provisional bool) (own bool) {
	obsID := a.in.Observation.ID
	for i := 0; i < len(a.st.Open); {
		o := &a.st.Open[i]
		isOwn := o.ObservationID == obsID
		if len(o.Basis) == 0 || !(isOwn || slices.ContainsFunc(o.Basis, func(v storedVital) bool { return v.ObservationID == obsID })) {
			i++
			continue
		}
		own = own || isOwn
		if a.basisCurrent(o.Basis, readings, isOwn) && (!isOwn || o.Provisional == provisional) {
			// The same version again (a re-send): nothing it read
			// changed, and the duplicate is not counted twice.
			i++
			continue
		}
		basis := a.rebase(o.Basis, readings, isOwn)
		if isOwn && !slices.ContainsFunc(basis, func(v storedVital) bool { return v.ObservationID == obsID }) {
			a.retract(i)
			continue
		}
		var values [numVitals]float64
		var present [numVitals]bool
		for _, v := range basis {
			values[v.Vital], present[v.Vital] = v.Value, true
		}
		p := provisional
		if !isOwn {
			// Its status is its own observation's, not this one's.
			p = o.Provisional
		}
		c := a.scoreNEWS2(cfg, o.AlertID, values, present, p)
		if c == nil {
			a.retract(i)
			continue
		}
		c.basis = basis
		a.revise(o, c, c.fingerprint(), false)
		i++
	}
	return own
}

// rebase is basis with this observation's readings replaced by readings
// (those of parameters the basis read from it; for its own alert, all of
// them) or left out, in parameter order. A new slice: the basis may alias
// the state read.
func (a *applier) rebase(basis []storedVital, readings []vitalReading, own bool) []storedVital {
	obsID := a.in.Observation.ID
	var byVital [numVitals]storedVital
	var present [numVitals]bool
	for _, v := range basis {
		byVital[v.Vital], present[v.Vital] = v, true
	}
	for _, v := range basis {
		if v.ObservationID == obsID {
			present[v.Vital] = false
		}
	}
	for _, r := range readings {
		if own || basisHas(basis, r.vital, obsID) {
			byVital[r.vital] = storedVital{Vital: r.vital, Value: r.value, At: a.at, ObservationID: obsID}
			present[r.vital] = true
		}
	}
	out := make([]storedVital, 0, numVitals)
	for v := range numVitals {
		if present[v] {
			out = append(out, byVital[v])
		}
	}
	return out
}

// basisCurrent reports whether rebase would leave basis as it is: every
// reading it has of this observation is one of readings, and for its own
// alert every one of readings is in it. It allocates nothing, so a re-sent
// observation costs what it did before bases.
func (a *applier) basisCurrent(basis []storedVital, readings []vitalReading, own bool) bool {
	obsID := a.in.Observation.ID
	for _, v := range basis {
		if v.ObservationID == obsID && (v.At != a.at || !slices.Contains(readings, vitalReading{v.Vital, v.Value})) {
			return false
		}
	}
	if own {
		for _, r := range readings {
			if !slices.Contains(basis, storedVital{Vital: r.vital, Value: r.value, At: a.at, ObservationID: obsID}) {
				return false
			}
		}
	}
	return true
}

// basisHas reports whether basis read parameter v from observation obsID.
func basisHas(basis []storedVital, v vital, obsID string) bool {
	return slices.ContainsFunc(basis, func(b storedVital) bool { return b.Vital == v && b.ObservationID == obsID })
}

// news2 scores the fresh parameters and offers, or retracts, this
// observation's news2 alert.
func (a *applier) news2(cfg *rules.NEWS2Rule, provisional bool) {
	var values [numVitals]float64
	var present [numVitals]bool
	fresh := cfg.Freshness.Milliseconds()
	for _, v := range a.st.Vitals {
		if d := a.at - v.At; d <= fresh && d >= -fresh {
			values[v.Vital], present[v.Vital] = v.Value, true
		}
	}
	obsID := a.in.Observation.ID
	c := a.scoreNEWS2(cfg, "", values, present, provisional)
	if c == nil {
		// Most readings score nothing: look for an alert to retract
		// without building its id. A repeat it was counted as is no
		// longer one.
		if i := a.st.findRule(obsID, rules.NEWS2ID); i >= 0 {
			a.retract(i)
		}
		a.uncount(rules.NEWS2ID, obsID)
		return
	}
	c.alertID = obsID + "-" + rules.NEWS2ID
	// The basis in parameter order: the state keeps one reading per
	// parameter, so indexing them by parameter sorts them.
	var at [numVitals]int
	for i, v := range a.st.Vitals {
		if present[v.Vital] {
			at[v.Vital] = i + 1
		}
	}
	c.basis = c.block.basis[:0]
	for _, i := range at {
		if i > 0 {
			c.basis = append(c.basis, a.st.Vitals[i-1])
		}
	}
	c.basis = slices.Clip(c.basis)
	a.offer(c)
}

// scoreNEWS2 is the news2 candidate alertID for the parameters present,
// nil when their score calls for no alert.
func (a *applier) scoreNEWS2(cfg *rules.NEWS2Rule, alertID string, values [numVitals]float64, present [numVitals]bool, provisional bool) *candidate {
	n := scoreNEWS2(values, present, cfg.SpO2Scale)
	level := news2Response(cfg, n.Total, n.MaxSingle)
	var sev rules.Severity
	var trigger string
	switch level {
	case responseHigh:
		sev, trigger = rules.SeverityCritical, "emergency"
	case responseMedium:
		sev, trigger = rules.SeverityHigh, "urgent"
	case responseLowMedium:
		sev, trigger = rules.SeverityHigh, "single-parameter"
	}
	if sev == "" {
		return nil
	}
	// One allocation for the candidate and everything it points to: an
	// alerting score otherwise took up to eight as the slices grew.
	blk := new(news2Block)
	d := &blk.detail
	*d = NEWS2Detail{Score: n.Total, Trigger: trigger, SpO2Scale: cfg.SpO2Scale, SubScores: blk.subScores[:0], Missing: blk.missing[:0]}
	for v := range numVitals {
		if n.Present[v] {
			d.SubScores = append(d.SubScores, NEWS2SubScore{Parameter: v.String(), Value: values[v], Score: n.Scores[v]})
		} else {
			d.Missing = append(d.Missing, v.String())
		}
	}
	if len(d.Missing) == 0 {
		d.Missing = nil
	}
	blk.candidate = candidate{
		alertID: alertID, ruleID: rules.NEWS2ID, rule: rules.NEWS2ID, severity: sev,
		description: news2Description(trigger), value: float64(n.Total), unit: "{score}",
		provisional: provisional, news2: d, level: level, window: cfg.Suppression,
		block: blk,
	}
	return &blk.candidate
}

// news2Block is a news2 candidate with the arrays behind its detail and
// basis.
type news2Block struct {
	candidate candidate
	detail    NEWS2Detail
	subScores [numVitals]NEWS2SubScore
	missing   [numVitals]string
	basis     [numVitals]storedVital
}

func news2Description(trigger string) string {
	switch trigger {
	case "emergency":
		return "NEWS2 aggregate at the emergency response threshold"
	case "urgent":
		return "NEWS2 aggregate at the urgent response threshold"
	}
	return "NEWS2 single parameter scoring 3: urgent ward-based response"
}

// offer decides what a candidate alert is against the state: a duplicate
// of the current version, a new version of it, a repeat suppressed inside
// its rule's window, or a new alert.
func (a *applier) offer(c *candidate) {
	a.loadOpen()
	st := a.st
	fp := c.fingerprint()
	if i := st.find(c.alertID); i >= 0 {
		a.revise(&st.Open[i], c, fp, true)
		return
	}
	if st.suppresses(c.ruleID, a.in.Observation.ID) {
		if a.cover(c) >= 0 {
			a.out.Duplicates++ // a repeat already counted
			return
		}
		// A counted repeat, amended to ask for more than any alert in
		// its window did: it is news now, so it stops being a repeat and
		// is raised below.
		a.uncount(c.ruleID, a.in.Observation.ID)
	}
	if i := a.cover(c); i >= 0 {
		o := &st.Open[i]
		o.Suppressed++
		if len(o.SuppressedIDs) >= maxSuppressedIDs {
			o.SuppressedIDs = slices.Delete(o.SuppressedIDs, 0, 1)
		}
		o.SuppressedIDs = append(o.SuppressedIDs, a.in.Observation.ID)
		a.changed = true
		a.out.Suppressed++
		a.history(nil, a.in.values(a.historySize(o)), &HistoryRecord{
			AlertID: o.AlertID, ObservationID: a.in.Observation.ID, Event: EventSuppressed, Version: o.Version,
			Severity: c.severity, Channels: noChannels, SuppressedCount: o.Suppressed,
		})
		return
	}
	if len(st.Open) >= maxOpenAlerts {
		st.Open = slices.Delete(st.Open, 0, len(st.Open)-maxOpenAlerts+1)
	}
	st.Open = append(st.Open, openAlert{
		AlertID: c.alertID, RuleID: c.ruleID, Rule: c.rule, ObservationID: a.in.Observation.ID,
		Severity: c.severity, Version: 1, Provisional: c.provisional, Value: c.value, Unit: c.unit,
		Fingerprint: fp, At: a.at, Basis: c.basis,
	})
	a.changed = true
	a.emit(c, &st.Open[len(st.Open)-1], statusOf(c.provisional), EventRaised, channelsOf(c.severity))
}

// revise makes c, whose fingerprint is fp, open alert o's current
// version, unless o already says it (a duplicate). A replacement is
// notified only when it escalates; then, if window, its suppression
// window starts at this observation. A re-score of an alert raised on
// another observation leaves the window where that one put it.
func (a *applier) revise(o *openAlert, c *candidate, fp string, window bool) {
	if c.basis != nil && !slices.Equal(o.Basis, c.basis) {
		o.Basis = c.basis
		a.changed = true
	}
	if o.Fingerprint == fp {
		a.out.Duplicates++
		return
	}
	escalated := a.escalates(c, o)
	o.Version++
	o.Severity, o.Provisional, o.Value, o.Unit, o.Fingerprint = c.severity, c.provisional, c.value, c.unit, fp
	var chs []Channel
	if escalated {
		chs = channelsOf(c.severity)
		if window {
			o.At = a.at
		}
	}
	a.changed = true
	a.out.Replaced++
	a.emit(c, o, statusOf(c.provisional), EventReplaced, chs)
}

// escalates reports whether candidate c asks for a more urgent response
// than o, an open alert of the same rule, said: a more severe label, or
// for NEWS2 a higher clinical response level, which a label can hide (a
// single red parameter and an aggregate of 5 are both high, and only the
// second calls for an urgent review). Escalation is what the suppression
// window must never hold back.
func (a *applier) escalates(c *candidate, o *openAlert) bool {
	if rank(c.severity) > rank(o.Severity) {
		return true
	}
	if c.level == responseNone {
		return false
	}
	// The state keeps a news2 alert's aggregate (its value), not its
	// highest sub-score; but an open news2 alert below the urgent
	// aggregate was raised for a single parameter, which is what passing
	// SingleParameter as its highest sub-score assumes.
	cfg := &a.p.rules.news2
	return c.level > news2Response(cfg, int(o.Value), cfg.SingleParameter)
}

// uncount forgets observation obsID as a suppressed repeat of ruleID.
func (a *applier) uncount(ruleID, obsID string) {
	for i := range a.st.Open {
		o := &a.st.Open[i]
		if o.RuleID != ruleID {
			continue
		}
		if j := slices.Index(o.SuppressedIDs, obsID); j >= 0 {
			o.SuppressedIDs = slices.Delete(o.SuppressedIDs, j, j+1)
			o.Suppressed--
			a.changed = true
		}
	}
}

func statusOf(provisional bool) string {
	if provisional {
		return StatusProvisional
	}
	return StatusActive
}

// retract removes open alert i and emits its retraction: a new version
// with status retracted, notified on the channels the alert went to.
func (a *applier) retract(i int) {
	o := a.st.Open[i]
	a.st.Open = slices.Delete(a.st.Open, i, i+1)
	o.Version++
	c := candidate{
		alertID: o.AlertID, ruleID: o.RuleID, rule: o.Rule, severity: o.Severity,
		value: o.Value, unit: o.Unit, description: a.p.rules.description(o.RuleID),
	}
	a.changed = true
	a.out.Retracted++
	a.emit(&c, &o, StatusRetracted, EventRetracted, channelsOf(o.Severity))
}

// emit encodes one alert version: the alert, its history record, and a
// notification per channel in chs. The records share one array, and the
// history record and notifications one value buffer.
func (a *applier) emit(c *candidate, o *openAlert, status, event string, chs []Channel) {
	a.prepare()
	al := Alert{
		AlertID: o.AlertID, PatientID: a.in.Observation.PatientID, ObservationID: o.ObservationID,
		Rule: c.rule, RuleID: c.ruleID, Severity: c.severity, Description: c.description,
		Value: c.value, Unit: c.unit, ComparedValue: c.compared, ComparedUnit: c.comparedIn,
		Timestamp: a.ts, CorrelationID: a.corr, Status: status, Version: o.Version,
		SuppressedCount: o.Suppressed, NEWS2: c.news2,
	}
	if a.pc != nil {
		al.PatientName, al.PatientMRN, al.CareTeam = a.pc.Name, a.pc.MRN, a.pc.CareTeam
	}
	// The alert is written to the input's scratch first, for its length:
	// then one buffer, sized for it, its history record and its
	// notifications (each of which carries it), takes every value.
	// Sizing by a fixed guess allocated half as much again as was used,
	// and allocation is a tenth of the pipeline's CPU end to end.
	a.in.scratch = appendAlert(a.in.scratch[:0], &al)
	n := len(a.in.scratch)
	buf := a.in.values(n + a.historySize(o) + len(chs)*(n+a.notificationSize(o)))
	buf = append(buf, a.in.scratch...)
	alertJSON := buf[:n:n]
	a.out.Alerts = append(a.out.Alerts, al)
	recs := make([]kgo.Record, 2+len(chs))
	recs[0] = kgo.Record{Topic: TopicAlerts, Key: a.key, Value: alertJSON, Headers: a.headers(EventTypeAlert)}
	a.out.Records = append(a.out.Records, &recs[0])
	buf = a.history(&recs[1], buf, &HistoryRecord{
		AlertID: o.AlertID, ObservationID: o.ObservationID, Event: event, Version: o.Version,
		Severity: c.severity, Channels: chs, SuppressedCount: o.Suppressed,
	})
	for i, ch := range chs {
		id := o.AlertID + "-" + string(ch)
		if o.Version > 1 {
			id += "-v" + strconv.FormatInt(o.Version, 10)
		}
		start := len(buf)
		buf = appendNotification(buf, &Notification{
			NotificationID: id, Channel: ch, AlertID: o.AlertID, PatientID: al.PatientID,
			Severity: c.severity, Event: event, Timestamp: a.ts, CorrelationID: a.corr, Alert: alertJSON,
		})
		recs[2+i] = kgo.Record{Topic: ch.topic(), Key: a.key, Value: buf[start:len(buf):len(buf)], Headers: a.headers(EventTypeNotification)}
		a.out.Records = append(a.out.Records, &recs[2+i])
		a.out.Notified[ch.index()]++
	}
}

// history encodes a history record into r, its value appended to buf,
// numbering it in the patient's sequence, and emits it. r nil: a record of
// its own.
func (a *applier) history(r *kgo.Record, buf []byte, h *HistoryRecord) []byte {
	a.prepare()
	a.st.Seq++
	a.changed = true
	h.PatientID, h.Timestamp, h.CorrelationID, h.Sequence = a.in.Observation.PatientID, a.ts, a.corr, a.st.Seq
	if r == nil {
		r = new(kgo.Record)
	}
	start := len(buf)
	buf = appendHistory(buf, h)
	*r = kgo.Record{Topic: TopicHistory, Key: a.key, Value: buf[start:len(buf):len(buf)], Headers: a.headers(EventTypeHistory)}
	a.out.Records = append(a.out.Records, r)
	return buf
}

// historySize and notificationSize are what a history record and a
// notification (besides the alert it carries) of open alert o take,
// unless its strings need escaping: then append grows the buffer. The
// observation id is the longer of the alert's and the one in hand.
func (a *applier) historySize(o *openAlert) int {
	a.prepare() // for the timestamp and correlation id
	return 256 + len(o.AlertID) + max(len(o.ObservationID), len(a.in.Observation.ID)) + len(a.in.Observation.PatientID) + len(a.ts) + len(a.corr)
}

func (a *applier) notificationSize(o *openAlert) int {
	return 192 + 2*len(o.AlertID) + len(a.in.Observation.PatientID) + len(a.ts) + len(a.corr)
}

// headers are the output headers of a record of eventType, built once per
// observation and shared by its records (the producer does not modify
// them).
func (a *applier) headers(eventType string) []kgo.RecordHeader {
	i := 0
	switch eventType {
	case EventTypeHistory:
		i = 1
	case EventTypeNotification:
		i = 2
	}
	if a.hdrs[i] == nil {
		a.hdrs[i] = envelope.OutputHeaders(a.corr, EventSource, eventType)
	}
	return a.hdrs[i]
}

// find is the index of the open alert id, -1 if none.
func (s *patientState) find(id string) int {
	return slices.IndexFunc(s.Open, func(o openAlert) bool { return o.AlertID == id })
}

// findRule is find(obsID + "-" + ruleID) without building the id.
func (s *patientState) findRule(obsID, ruleID string) int {
	n := len(obsID) + 1 + len(ruleID)
	return slices.IndexFunc(s.Open, func(o openAlert) bool {
		id := o.AlertID
		return len(id) == n && id[len(obsID)] == '-' && id[:len(obsID)] == obsID && id[len(obsID)+1:] == ruleID
	})
}

// suppresses reports whether an open alert of ruleID counted observation
// obsID as a suppressed repeat.
func (s *patientState) suppresses(ruleID, obsID string) bool {
	return slices.ContainsFunc(s.Open, func(o openAlert) bool {
		return o.RuleID == ruleID && slices.Contains(o.SuppressedIDs, obsID)
	})
}

// cover is the index of the open alert that counts candidate c as a
// repeat, -1 if none: of c's rule's alerts notified inside c's window that
// asked for at least what c asks (see escalates), the most recently
// notified. Comparing with only the most recent alert would let an alert
// notified earlier in event time but at a higher level (it arrived late)
// be notified again by every repeat after a lower one.
func (a *applier) cover(c *candidate) int {
	if c.window <= 0 {
		return -1
	}
	w := c.window.Milliseconds()
	h := -1
	for i := range a.st.Open {
		o := &a.st.Open[i]
		if o.RuleID != c.ruleID || (h >= 0 && o.At < a.st.Open[h].At) {
			continue
		}
		if d := a.at - o.At; max(d, -d) < w && !a.escalates(c, o) {
			h = i
		}
	}
	return h
}

// rank orders severities: higher is more severe; 0 for an unknown one.
func rank(s rules.Severity) int {
	if i := s.Index(); i >= 0 {
		return len(severities) - i
	}
	return 0
}
