package priorauth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/carepipe/carepipe/pipeline"
)

// Config is what the orchestrator decides by table.
type Config struct {
	// Payers maps a payer id to its submission method (ELECTRONIC, FAX,
	// PORTAL, ...); others get DefaultMethod.
	Payers        map[string]string
	DefaultMethod string
	// UrgentCategories are the medication categories submitted as urgent.
	// A prescription's category matches an entry when both normalize to
	// the same key (see categoryKey): case, surrounding and inner
	// spaces, hyphens and underscores, and English plurals do not count,
	// so "Blood-Thinners" matches "blood thinner". A synonym is one more
	// entry: the built-in list names each category's usual synonyms.
	UrgentCategories []string
	// PayerTimeZone is the payers' time zone: a date alone (2025-09-01)
	// and a time without an offset are read in it (see the package doc).
	// Nil: UTC.
	PayerTimeZone *time.Location
	// ExpeditedDeadline and StandardDeadline are the payer's decision
	// deadlines from submission, for urgent and other requests.
	ExpeditedDeadline time.Duration
	StandardDeadline  time.Duration
	// StatusCheckEvery is the interval of status checks of an ELECTRONIC
	// submission until a final determination.
	StatusCheckEvery time.Duration
	// Retention is how long a settled prior authorization (its
	// determination communicated, or its approval expired, and no timer
	// left) stays in the state store, and so in the query API, before it
	// is deleted; 0 keeps it for ever. Without it the store grows with
	// every prior authorization ever made. Its outputs (status history,
	// workflow.completed) are the lasting record; an event for it after
	// the deletion is an error-topic record, and a re-sent prescription
	// starts a new workflow.
	Retention time.Duration
}

// DefaultConfig is the seed's payer table and urgent categories.
func DefaultConfig() Config {
	return Config{
		Payers: map[string]string{
			"PAYER001": "ELECTRONIC", "PAYER002": "ELECTRONIC", "PAYER003": "FAX", "PAYER004": "PORTAL",
		},
		DefaultMethod:    "FAX",
		UrgentCategories: DefaultUrgentCategories(),
		// Medicare Part D coverage-determination clocks for drugs:
		// 24 hours expedited, 72 hours standard.
		ExpeditedDeadline: 24 * time.Hour,
		StandardDeadline:  72 * time.Hour,
		StatusCheckEvery:  4 * time.Hour,
		Retention:         90 * 24 * time.Hour,
	}
}

// DefaultUrgentCategories are the built-in urgent categories with their
// synonyms: antibiotics (antibacterials, anti-infectives), anticoagulants
// (blood thinners, antithrombotics), insulins.
func DefaultUrgentCategories() []string {
	return []string{
		"antibiotic", "antibacterial", "anti-infective",
		"anticoagulant", "blood thinner", "antithrombotic",
		"insulin",
	}
}

// zone is the payers' time zone.
func (c *Config) zone() *time.Location {
	if c.PayerTimeZone == nil {
		return time.UTC
	}
	return c.PayerTimeZone
}

// validate checks c's durations, default method and urgent categories.
func (c *Config) validate() error {
	for _, u := range c.UrgentCategories {
		if categoryKey(u) == "" {
			return fmt.Errorf("priorauth: an urgent category is empty")
		}
	}
	switch {
	case c.DefaultMethod == "":
		return fmt.Errorf("priorauth: the default submission method is empty")
	case c.ExpeditedDeadline <= 0 || c.StandardDeadline <= 0:
		return fmt.Errorf("priorauth: decision deadlines must be positive")
	case c.StatusCheckEvery <= 0:
		return fmt.Errorf("priorauth: the status check interval must be positive")
	case c.Retention < 0:
		return fmt.Errorf("priorauth: the retention must not be negative (0 keeps settled prior authorizations)")
	}
	return nil
}

// requestedDocuments are the documents every prior authorization asks for.
var requestedDocuments = []string{"patient-demographics", "diagnosis-codes", "medication-history", "lab-results", "provider-notes"}

// Recipients and channels of a determination's communication.
var (
	recipients = []string{"PROVIDER", "PHARMACY", "PATIENT"}
	channels   = []string{"EHR", "PORTAL", "EMAIL"}
)

// output is a record the step emits, keyed by the prior-auth id.
type output struct {
	Topic string
	Value []byte
}

// result is what an event does to a prior authorization.
type result struct {
	// Record is the new state; nil when the event changed nothing.
	Record *record
	// Outputs are the records to emit, in order.
	Outputs []output
	// Duplicate reports an event for a transition already made.
	Duplicate bool
	// Purge reports a settled prior authorization whose retention has
	// passed: delete it (Record is nil).
	Purge bool
	// Late reports an event the case had moved past (a determination
	// dated before the final one, a communication report after the
	// approval expired): it changes no status and emits nothing, and
	// Record, when set, only adds a late entry to the history.
	Late bool
}

// apply applies ev to rec (nil: no prior authorization yet) and
// returns the new state and what to emit. It is pure: the same record and
// event give the same step. An event the case has moved past is not an
// error: a repeat is a Duplicate, a late one is Late. Errors are
// [pipeline.RecordError]s of type [pipeline.TypeInvalid]: an event for an
// unknown prior authorization, one that comes too early (a communication
// report before a final determination), or a final determination dated
// after a different final one (the state machine does not reverse a
// decision: a person must look at it).
func (c *Config) apply(rec *record, ev *event) (result, error) {
	st, err := c.transition(rec, ev)
	if err == nil {
		c.schedulePurge(&st, ev.At)
	}
	return st, err
}

func (c *Config) transition(rec *record, ev *event) (result, error) {
	if ev.Topic == TopicPrescriptions {
		if rec != nil {
			return result{Duplicate: true}, nil
		}
		return c.initiate(ev)
	}
	if rec == nil {
		return result{}, pipeline.Rejectf(pipeline.TypeInvalid, "%s for an unknown prior authorization", ev.Topic)
	}
	next := *rec
	next.StatusHistory = append([]statusEntry(nil), rec.StatusHistory...)
	s := step{rec: &next, ev: ev}
	switch ev.Topic {
	case TopicDocumentationAssembled:
		switch {
		case rec.reached(StatusDocumentationAssembled):
			return result{Duplicate: true}, nil
		case rec.Status != StatusInitiated:
			return result{}, illegal(ev, rec.Status)
		}
		s.move(StatusDocumentationAssembled, "Documentation has been assembled")
		docs := json.RawMessage(ev.Documents)
		if len(docs) == 0 {
			docs = json.RawMessage("null")
		}
		method := c.Payers[next.PayerID]
		if method == "" {
			method = c.DefaultMethod
		}
		s.emit(TopicSubmissionRequested, submissionRequested{
			PriorAuthID: next.ID, PrescriptionID: next.PrescriptionID, Documents: docs,
			SubmissionMethod: method, PayerID: next.PayerID, Urgent: next.Urgent,
		})
	case TopicSubmissionCompleted:
		switch {
		case rec.reached(StatusSubmitted):
			return result{Duplicate: true}, nil
		case rec.Status != StatusDocumentationAssembled:
			return result{}, illegal(ev, rec.Status)
		}
		sub := *ev.Submission
		if sub.PayerID == "" {
			sub.PayerID = next.PayerID
		}
		next.Submission = &sub
		s.move(StatusSubmitted, fmt.Sprintf("Submitted via %s with ID %s", sub.Method, sub.SubmissionID))
		deadline := c.StandardDeadline
		if next.Urgent {
			deadline = c.ExpeditedDeadline
		}
		next.Timers = append(next.Timers, timer{Kind: timerSLA, Due: formatTime(ev.At.Add(deadline))})
		if sub.Method == "ELECTRONIC" {
			next.Timers = append(next.Timers, timer{Kind: timerStatusCheck, Due: formatTime(ev.At.Add(c.StatusCheckEvery)), Count: 1})
		}
		// Determinations read before the submission now apply, in order,
		// each at its own date.
		parked := next.Parked
		next.Parked = nil
		for i := range parked {
			d := parked[i]
			if next.Status == d.Status || next.Status.final() {
				continue
			}
			at := d.madeAt()
			if at.IsZero() || at.Before(ev.At) {
				at = ev.At
			}
			s.ev = &event{PriorAuthID: ev.PriorAuthID, At: at}
			s.determine(&d)
		}
	case TopicDeterminationReceived:
		d := ev.Determination
		switch {
		case rec.Status == d.Status:
			return result{Duplicate: true}, nil
		case rec.Status == StatusInitiated || rec.Status == StatusDocumentationAssembled:
			for _, p := range rec.Parked {
				if p.Status == d.Status {
					return result{Duplicate: true}, nil
				}
			}
			next.Parked = append(append([]determination(nil), rec.Parked...), *d)
			return result{Record: &next}, nil
		case rec.Status != StatusSubmitted && rec.Status != StatusPended:
			if rec.reached(d.Status) {
				return result{Duplicate: true}, nil
			}
			// Decided already. A PENDED cannot follow a final
			// determination, and a different final one dated no later
			// was overtaken by it: both are late. A final one dated
			// after it reverses the decision.
			decided, final := rec.decidedAt(), rec.Status
			if rec.Determination != nil {
				final = rec.Determination.Status
			}
			if d.Status.final() && ev.At.After(decided) {
				return result{}, pipeline.Rejectf(pipeline.TypeInvalid,
					"a %s determination dated after the %s one: a final determination is not reversed", d.Status, final)
			}
			return s.late(fmt.Sprintf("Late %s determination ignored: the payer decided %s at %s",
				d.Status, final, formatTime(decided)))
		}
		s.determine(d)
	case TopicCommunicationCompleted:
		switch {
		case rec.reached(StatusDeterminationCommunicated):
			return result{Duplicate: true}, nil
		}
		reason := "Communication completed"
		if len(ev.Channels) > 0 {
			reason += " via " + strings.Join(ev.Channels, ", ")
		}
		switch {
		case rec.Status == StatusExpired:
			return s.late(reason + ", reported after the approval expired")
		case !rec.Status.final():
			return result{}, illegal(ev, rec.Status)
		}
		s.move(StatusDeterminationCommunicated, reason)
		s.emit(TopicWorkflowCompleted, workflowCompleted{PriorAuthID: next.ID, WorkflowSummary: summarise(&next)})
	default:
		return result{}, pipeline.Rejectf(pipeline.TypeInvalid, "records from %s are not prior-authorization events", ev.Topic)
	}
	return s.done()
}

// fire runs rec's timers due at now, earliest first, and returns the step
// (nil Record when none was due). It is pure, like apply: the time is
// the caller's (the injected clock).
func (c *Config) fire(rec *record, now time.Time) result {
	next := *rec
	next.StatusHistory = append([]statusEntry(nil), rec.StatusHistory...)
	next.Timers = nil
	ev := &event{PriorAuthID: rec.ID, At: now}
	s := step{rec: &next, ev: ev}
	fired := false
	for _, t := range rec.Timers {
		due := t.due()
		if now.Before(due) {
			next.Timers = append(next.Timers, t)
			continue
		}
		fired = true
		switch t.Kind {
		case timerSLA:
			urgency := "standard"
			if rec.Urgent {
				urgency = "expedited"
			}
			s.emit(TopicSLABreached, slaBreached{
				PriorAuthID: rec.ID, Deadline: t.Due, Urgency: urgency, Status: next.Status, BreachedAt: formatTime(now),
			})
		case timerStatusCheck:
			sub := next.Submission
			if sub == nil {
				continue
			}
			s.emit(TopicStatusCheckRequested, statusCheckRequested{
				PriorAuthID: rec.ID, PayerID: sub.PayerID, SubmissionID: sub.SubmissionID, CheckNumber: t.Count,
			})
			// The next check keeps this one's schedule (a late punctuation
			// does not shift it), skipping the checks missed while nothing
			// ran: one check after an outage, not a burst.
			nextDue := due.Add(c.StatusCheckEvery)
			for !nextDue.After(now) {
				nextDue = nextDue.Add(c.StatusCheckEvery)
			}
			next.Timers = append(next.Timers, timer{Kind: timerStatusCheck, Due: formatTime(nextDue), Count: t.Count + 1})
		case timerExpiry:
			reason := "Authorization expired at " + t.Due
			if d := next.Determination; d != nil && d.ExpirationDate != "" {
				reason += " (expirationDate " + d.ExpirationDate + ")"
			}
			s.move(StatusExpired, reason)
		case timerPurge:
			// Set while a retention applied; one turned off since
			// keeps the record, without the timer.
			if c.Retention > 0 {
				return result{Purge: true}
			}
		}
	}
	if !fired {
		return result{}
	}
	st, _ := s.done()
	c.schedulePurge(&st, now)
	return st
}

// schedulePurge gives a step's record that has just settled its purge
// timer, Retention after at.
func (c *Config) schedulePurge(st *result, at time.Time) {
	r := st.Record
	if c.Retention <= 0 || r == nil || len(r.Timers) > 0 ||
		(r.Status != StatusDeterminationCommunicated && r.Status != StatusExpired) {
		return
	}
	r.Timers = append(r.Timers, timer{Kind: timerPurge, Due: formatTime(at.Add(c.Retention))})
}

func illegal(ev *event, from Status) error {
	return pipeline.Rejectf(pipeline.TypeInvalid, "illegal transition: %s while %s", ev.Topic, from)
}

// initiate creates the prior authorization of a prescription.
func (c *Config) initiate(ev *event) (result, error) {
	p := ev.Prescription
	at := formatTime(ev.At)
	rec := &record{
		ID: ev.PriorAuthID, PrescriptionID: p.PrescriptionID, PatientID: p.PatientID, ProviderID: p.ProviderID,
		Medication: p.Medication, PayerID: p.PayerID, PharmacyID: p.PharmacyID, CreateDate: at,
		Urgent: c.urgent(p.Medication.Category), CorrelationID: ev.CorrelationID,
	}
	s := step{rec: rec, ev: ev}
	s.move(StatusInitiated, "New prescription requires prior authorization")
	s.emit(TopicDocumentationRequested, documentationRequested{
		PriorAuthID: rec.ID, PrescriptionID: rec.PrescriptionID, PatientID: rec.PatientID, ProviderID: rec.ProviderID,
		Medication: rec.Medication, PayerID: rec.PayerID, RequestedDocuments: requestedDocuments,
	})
	return s.done()
}

func (c *Config) urgent(category string) bool {
	key := categoryKey(category)
	if key == "" {
		return false
	}
	for _, u := range c.UrgentCategories {
		if categoryKey(u) == key {
			return true
		}
	}
	return false
}

// step builds a Step: status moves (each published on priorauth.status)
// and emitted requests, in order.
type step struct {
	rec  *record
	ev   *event
	outs []output
	err  error
}

// determine records a determination: the status, and for a final one
// the end of the deadline and checks, the expiry timer of an approval, and
// the communication request.
func (s *step) determine(d *determination) {
	next := s.rec
	det := *d
	next.Determination = &det
	reason := d.Reason
	if reason == "" {
		reason = "Determination received from payer"
	}
	s.move(d.Status, reason)
	if !d.Status.final() {
		return
	}
	// Decided: no deadline to watch, nothing to check.
	next.dropTimers(timerSLA, timerStatusCheck)
	if (d.Status == StatusApproved || d.Status == StatusPartiallyApproved) && d.ExpirationDate != "" {
		next.Timers = append(next.Timers, timer{Kind: timerExpiry, Due: formatTime(d.expiresAt())})
	}
	s.emit(TopicCommunicationRequested, communicationRequested{
		PriorAuthID: next.ID, DeterminationStatus: d.Status, Recipients: recipients, Channels: channels,
	})
}

// late records a late event in the history, once: the status stays, and
// nothing is emitted (priorauth.status carries status changes alone). The
// entry is dated at the event's date.
func (s *step) late(reason string) (result, error) {
	e := statusEntry{Status: s.rec.Status, Timestamp: formatTime(s.ev.At), Actor: actor, Reason: reason, Late: true}
	for _, h := range s.rec.StatusHistory {
		if h == e {
			return result{Duplicate: true}, nil
		}
	}
	s.rec.StatusHistory = append(s.rec.StatusHistory, e)
	st, err := s.done()
	st.Late = true
	return st, err
}

func (s *step) move(to Status, reason string) {
	at := formatTime(s.ev.At)
	from := s.rec.Status
	s.rec.Status, s.rec.UpdateDate = to, at
	s.rec.StatusHistory = append(s.rec.StatusHistory, statusEntry{Status: to, Timestamp: at, Actor: actor, Reason: reason})
	s.emit(TopicStatus, statusChanged{
		PriorAuthID: s.rec.ID, Status: to, PreviousStatus: from, Timestamp: at, Actor: actor, Reason: reason,
	})
}

func (s *step) emit(topic string, v any) {
	b, err := json.Marshal(v)
	if err != nil && s.err == nil {
		s.err = pipeline.Rejectf(pipeline.TypeProcessing, "encoding %s failed", topic)
	}
	s.outs = append(s.outs, output{Topic: topic, Value: b})
}

func (s *step) done() (result, error) {
	if s.err != nil {
		return result{}, s.err
	}
	return result{Record: s.rec, Outputs: s.outs}, nil
}

// The records emitted.

type documentationRequested struct {
	PriorAuthID        string     `json:"priorAuthId"`
	PrescriptionID     string     `json:"prescriptionId"`
	PatientID          string     `json:"patientId"`
	ProviderID         string     `json:"providerId"`
	Medication         medication `json:"medication"`
	PayerID            string     `json:"payerId"`
	RequestedDocuments []string   `json:"requestedDocuments"`
}

type submissionRequested struct {
	PriorAuthID      string          `json:"priorAuthId"`
	PrescriptionID   string          `json:"prescriptionId"`
	Documents        json.RawMessage `json:"documents"`
	SubmissionMethod string          `json:"submissionMethod"`
	PayerID          string          `json:"payerId"`
	Urgent           bool            `json:"urgent"`
}

type communicationRequested struct {
	PriorAuthID         string   `json:"priorAuthId"`
	DeterminationStatus Status   `json:"determinationStatus"`
	Recipients          []string `json:"recipients"`
	Channels            []string `json:"channels"`
}

type statusChanged struct {
	PriorAuthID    string `json:"priorAuthId"`
	Status         Status `json:"status"`
	PreviousStatus Status `json:"previousStatus,omitempty"`
	Timestamp      string `json:"timestamp"`
	Actor          string `json:"actor"`
	Reason         string `json:"reason"`
}

type slaBreached struct {
	PriorAuthID string `json:"priorAuthId"`
	Deadline    string `json:"deadline"`
	Urgency     string `json:"urgency"`
	Status      Status `json:"status"`
	BreachedAt  string `json:"breachedAt"`
}

type statusCheckRequested struct {
	PriorAuthID  string `json:"priorAuthId"`
	PayerID      string `json:"payerId"`
	SubmissionID string `json:"submissionId"`
	CheckNumber  int    `json:"checkNumber"`
}

type workflowCompleted struct {
	PriorAuthID     string          `json:"priorAuthId"`
	WorkflowSummary WorkflowSummary `json:"workflowSummary"`
}

// WorkflowSummary is a completed workflow's steps, from the real status
// history.
type WorkflowSummary struct {
	PriorAuthID string         `json:"priorAuthId"`
	Steps       []WorkflowStep `json:"steps"`
	// TotalDuration is from the first step to the last, ISO 8601
	// ("PT47H45M"); TotalSeconds the same in seconds.
	TotalDuration string  `json:"totalDuration"`
	TotalSeconds  float64 `json:"totalDurationSeconds"`
}

// WorkflowStep is one status of the history.
type WorkflowStep struct {
	Name      Status `json:"name"`
	Timestamp string `json:"timestamp"`
}

func summarise(rec *record) WorkflowSummary {
	ws := WorkflowSummary{PriorAuthID: rec.ID, Steps: make([]WorkflowStep, 0, len(rec.StatusHistory))}
	for _, e := range rec.StatusHistory {
		if !e.Late {
			ws.Steps = append(ws.Steps, WorkflowStep{Name: e.Status, Timestamp: e.Timestamp})
		}
	}
	var d time.Duration
	if n := len(ws.Steps); n > 1 {
		first, err1 := time.Parse(time.RFC3339Nano, ws.Steps[0].Timestamp)
		last, err2 := time.Parse(time.RFC3339Nano, ws.Steps[n-1].Timestamp)
		if err1 == nil && err2 == nil && last.After(first) {
			d = last.Sub(first)
		}
	}
	ws.TotalDuration, ws.TotalSeconds = isoDuration(d), d.Seconds()
	return ws
}

// isoDuration formats d as an ISO 8601 duration in hours, minutes and
// seconds: PT47H45M, PT0S.
func isoDuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	h := int64(d / time.Hour)
	m := int64(d % time.Hour / time.Minute)
	sec := d % time.Minute
	var b strings.Builder
	b.WriteString("PT")
	if h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	if sec > 0 {
		fmt.Fprintf(&b, "%gS", sec.Seconds())
	}
	return b.String()
}
