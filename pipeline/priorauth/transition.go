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
	// UrgentCategories are the medication categories submitted as urgent,
	// matched case-insensitively against the whole category.
	UrgentCategories []string
}

// DefaultConfig is the seed's payer table and urgent categories.
func DefaultConfig() Config {
	return Config{
		Payers: map[string]string{
			"PAYER001": "ELECTRONIC", "PAYER002": "ELECTRONIC", "PAYER003": "FAX", "PAYER004": "PORTAL",
		},
		DefaultMethod:    "FAX",
		UrgentCategories: []string{"antibiotic", "anticoagulant", "insulin"},
	}
}

// requestedDocuments are the documents every prior authorization asks for.
var requestedDocuments = []string{"patient-demographics", "diagnosis-codes", "medication-history", "lab-results", "provider-notes"}

// Recipients and channels of a determination's communication.
var (
	recipients = []string{"PROVIDER", "PHARMACY", "PATIENT"}
	channels   = []string{"EHR", "PORTAL", "EMAIL"}
)

// Output is a record the step emits, keyed by the prior-auth id.
type Output struct {
	Topic string
	Value []byte
}

// Step is what an event does to a prior authorization.
type Step struct {
	// Record is the new state; nil when the event changed nothing.
	Record *Record
	// Outputs are the records to emit, in order.
	Outputs []Output
	// Duplicate reports an event for a transition already made.
	Duplicate bool
}

// Transition applies ev to rec (nil: no prior authorization yet) and
// returns the new state and what to emit. It is pure: the same record and
// event give the same step. Errors are [pipeline.RecordError]s of type
// [pipeline.ErrInvalid]: an event for an unknown prior authorization, or
// one the state machine does not allow from the record's status.
func (c *Config) Transition(rec *Record, ev *Event) (Step, error) {
	if ev.Topic == TopicPrescriptions {
		if rec != nil {
			return Step{Duplicate: true}, nil
		}
		return c.initiate(ev)
	}
	if rec == nil {
		return Step{}, pipeline.Rejectf(pipeline.ErrInvalid, "%s for an unknown prior authorization", ev.Topic)
	}
	next := *rec
	next.StatusHistory = append([]StatusEntry(nil), rec.StatusHistory...)
	s := step{rec: &next, ev: ev}
	switch ev.Topic {
	case TopicDocumentationAssembled:
		switch {
		case rec.reached(StatusDocumentationAssembled):
			return Step{Duplicate: true}, nil
		case rec.Status != StatusInitiated:
			return Step{}, illegal(ev, rec.Status)
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
			return Step{Duplicate: true}, nil
		case rec.Status != StatusDocumentationAssembled:
			return Step{}, illegal(ev, rec.Status)
		}
		sub := *ev.Submission
		if sub.PayerID == "" {
			sub.PayerID = next.PayerID
		}
		next.Submission = &sub
		s.move(StatusSubmitted, fmt.Sprintf("Submitted via %s with ID %s", sub.Method, sub.SubmissionID))
	case TopicDeterminationReceived:
		d := ev.Determination
		switch {
		case rec.Status == d.Status:
			return Step{Duplicate: true}, nil
		case rec.Status != StatusSubmitted && rec.Status != StatusPended:
			if rec.reached(d.Status) {
				return Step{Duplicate: true}, nil
			}
			return Step{}, illegal(ev, rec.Status)
		}
		det := *d
		next.Determination = &det
		reason := d.Reason
		if reason == "" {
			reason = "Determination received from payer"
		}
		s.move(d.Status, reason)
		if d.Status.Final() {
			s.emit(TopicCommunicationRequested, communicationRequested{
				PriorAuthID: next.ID, DeterminationStatus: d.Status, Recipients: recipients, Channels: channels,
			})
		}
	case TopicCommunicationCompleted:
		switch {
		case rec.reached(StatusDeterminationCommunicated):
			return Step{Duplicate: true}, nil
		case !rec.Status.Final():
			return Step{}, illegal(ev, rec.Status)
		}
		reason := "Communication completed"
		if len(ev.Channels) > 0 {
			reason += " via " + strings.Join(ev.Channels, ", ")
		}
		s.move(StatusDeterminationCommunicated, reason)
		s.emit(TopicWorkflowCompleted, workflowCompleted{PriorAuthID: next.ID, WorkflowSummary: summarise(&next)})
	default:
		return Step{}, pipeline.Rejectf(pipeline.ErrInvalid, "records from %s are not prior-authorization events", ev.Topic)
	}
	return s.done()
}

func illegal(ev *Event, from Status) error {
	return pipeline.Rejectf(pipeline.ErrInvalid, "illegal transition: %s while %s", ev.Topic, from)
}

// initiate creates the prior authorization of a prescription.
func (c *Config) initiate(ev *Event) (Step, error) {
	p := ev.Prescription
	at := formatTime(ev.At)
	rec := &Record{
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
	for _, u := range c.UrgentCategories {
		if strings.EqualFold(strings.TrimSpace(category), u) {
			return true
		}
	}
	return false
}

// step builds a Step: status moves (each published on priorauth.status)
// and emitted requests, in order.
type step struct {
	rec  *Record
	ev   *Event
	outs []Output
	err  error
}

func (s *step) move(to Status, reason string) {
	at := formatTime(s.ev.At)
	from := s.rec.Status
	s.rec.Status, s.rec.UpdateDate = to, at
	s.rec.StatusHistory = append(s.rec.StatusHistory, StatusEntry{Status: to, Timestamp: at, Actor: actor, Reason: reason})
	s.emit(TopicStatus, statusChanged{
		PriorAuthID: s.rec.ID, Status: to, PreviousStatus: from, Timestamp: at, Actor: actor, Reason: reason,
	})
}

func (s *step) emit(topic string, v any) {
	b, err := json.Marshal(v)
	if err != nil && s.err == nil {
		s.err = pipeline.Rejectf(pipeline.ErrProcessing, "encoding %s failed", topic)
	}
	s.outs = append(s.outs, Output{Topic: topic, Value: b})
}

func (s *step) done() (Step, error) {
	if s.err != nil {
		return Step{}, s.err
	}
	return Step{Record: s.rec, Outputs: s.outs}, nil
}

// The records emitted.

type documentationRequested struct {
	PriorAuthID        string     `json:"priorAuthId"`
	PrescriptionID     string     `json:"prescriptionId"`
	PatientID          string     `json:"patientId"`
	ProviderID         string     `json:"providerId"`
	Medication         Medication `json:"medication"`
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

func summarise(rec *Record) WorkflowSummary {
	ws := WorkflowSummary{PriorAuthID: rec.ID, Steps: make([]WorkflowStep, 0, len(rec.StatusHistory))}
	for _, e := range rec.StatusHistory {
		ws.Steps = append(ws.Steps, WorkflowStep{Name: e.Status, Timestamp: e.Timestamp})
	}
	var d time.Duration
	if n := len(rec.StatusHistory); n > 1 {
		first, err1 := time.Parse(time.RFC3339Nano, rec.StatusHistory[0].Timestamp)
		last, err2 := time.Parse(time.RFC3339Nano, rec.StatusHistory[n-1].Timestamp)
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
