package priorauth

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// event is a decoded input event.
type event struct {
	// Topic is the input topic it came from (the prescription topic for a
	// prescription that came back through the repartition topic).
	Topic string
	// PriorAuthID is the event's priorAuthId; for a prescription, the id
	// derived from its prescription id.
	PriorAuthID string
	// At is when the event happened: its own date field where it has one
	// (submissionDate, determinationDate; a date alone read as the package
	// doc says), else the envelope's timestamp, else the record's.
	At time.Time
	// CorrelationID is the record's correlation id (header, metadata, or
	// derived from its coordinates).
	CorrelationID string

	Prescription  *prescription
	Documents     []byte // documentation.assembled: documents, raw JSON
	Submission    *submission
	Determination *determination
	Channels      []string // communication.completed: completedChannels
}

type prescription struct {
	PrescriptionID string     `json:"prescriptionId"`
	PatientID      string     `json:"patientId"`
	ProviderID     string     `json:"providerId"`
	Medication     medication `json:"medication"`
	PayerID        string     `json:"payerId"`
	PharmacyID     string     `json:"pharmacyId"`
}

// wireEvent is every later event's fields; each topic reads its own.
type wireEvent struct {
	PriorAuthID         string   `json:"priorAuthId"`
	Documents           rawJSON  `json:"documents"`
	SubmissionID        string   `json:"submissionId"`
	SubmissionDate      string   `json:"submissionDate"`
	SubmissionMethod    string   `json:"submissionMethod"`
	PayerID             string   `json:"payerId"`
	DeterminationStatus string   `json:"determinationStatus"`
	DeterminationDate   string   `json:"determinationDate"`
	DeterminationReason string   `json:"determinationReason"`
	ExpirationDate      string   `json:"expirationDate"`
	CompletedChannels   []string `json:"completedChannels"`
}

// rawJSON keeps a value's JSON as it is (copied: the record's buffer is
// not kept).
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// decodeIn decodes r as the event its topic carries. Dates are read as
// the package doc says, in zone (the payer's time zone) where the value
// has none: a date alone, a time without an offset. Errors are
// [pipeline.RecordError]s: [pipeline.TypeDecode] for a value that is not
// JSON of the event's shape, [pipeline.TypeInvalid] for one that lacks what
// the event needs (ids, a known determination status, readable dates).
// Messages never quote the record.
func decodeIn(r *kgo.Record, topic string, zone *time.Location) (event, error) {
	ev := event{Topic: topic}
	var meta envelope.Metadata
	var err error
	if topic == TopicPrescriptions {
		var p prescription
		if meta, err = envelope.Decode(r.Value, &p); err != nil {
			return event{}, classify(err)
		}
		switch {
		case p.PrescriptionID == "":
			return event{}, pipeline.Rejectf(pipeline.TypeInvalid, "prescription has no prescriptionId")
		case p.PatientID == "" || p.ProviderID == "" || p.PayerID == "":
			return event{}, pipeline.Rejectf(pipeline.TypeInvalid, "prescription lacks patientId, providerId or payerId")
		case p.Medication.Name == "" && p.Medication.Code == "":
			return event{}, pipeline.Rejectf(pipeline.TypeInvalid, "prescription has no medication")
		}
		ev.Prescription = &p
		ev.PriorAuthID = PriorAuthID(p.PrescriptionID)
	} else {
		var w wireEvent
		if meta, err = envelope.Decode(r.Value, &w); err != nil {
			return event{}, classify(err)
		}
		if w.PriorAuthID == "" {
			return event{}, pipeline.Rejectf(pipeline.TypeInvalid, "event has no priorAuthId")
		}
		ev.PriorAuthID = w.PriorAuthID
		recordTime := meta.Timestamp
		if recordTime.IsZero() {
			recordTime = r.Timestamp
		}
		if err := ev.fill(&w, recordTime, zone); err != nil {
			return event{}, err
		}
	}
	ev.CorrelationID = envelope.CorrelationID(r, meta)
	if ev.At.IsZero() {
		ev.At = meta.Timestamp
	}
	if ev.At.IsZero() {
		ev.At = r.Timestamp
	}
	ev.At = ev.At.UTC()
	if d := ev.Determination; d != nil {
		d.At = formatTime(ev.At)
	}
	return ev, nil
}

// fill reads what the event's topic needs from w; recordTime is the
// record's own time, for a date alone.
func (ev *event) fill(w *wireEvent, recordTime time.Time, zone *time.Location) error {
	switch ev.Topic {
	case TopicDocumentationAssembled:
		ev.Documents = w.Documents
	case TopicSubmissionCompleted:
		if w.SubmissionID == "" || w.SubmissionMethod == "" {
			return pipeline.Rejectf(pipeline.TypeInvalid, "submission lacks submissionId or submissionMethod")
		}
		at, err := eventDate(w.SubmissionDate, "submissionDate", recordTime, zone)
		if err != nil {
			return err
		}
		ev.At = at
		ev.Submission = &submission{SubmissionID: w.SubmissionID, SubmissionDate: w.SubmissionDate, Method: w.SubmissionMethod, PayerID: w.PayerID}
	case TopicDeterminationReceived:
		s := Status(w.DeterminationStatus)
		if !s.determination() {
			return pipeline.Rejectf(pipeline.TypeInvalid, "determination status is not one of APPROVED, DENIED, PENDED, PARTIALLY_APPROVED, CANCELLED")
		}
		at, err := eventDate(w.DeterminationDate, "determinationDate", recordTime, zone)
		if err != nil {
			return err
		}
		ev.At = at
		ev.Determination = &determination{Status: s, Date: w.DeterminationDate, Reason: w.DeterminationReason, ExpirationDate: w.ExpirationDate}
		if w.ExpirationDate != "" {
			exp, err := parsePeriod(w.ExpirationDate, zone)
			if err != nil {
				return pipeline.Rejectf(pipeline.TypeInvalid, "expirationDate %v", err)
			}
			ev.Determination.ExpiresAt = formatTime(exp.end)
		}
	case TopicCommunicationCompleted:
		ev.Channels = w.CompletedChannels
	}
	return nil
}

// eventDate is when an event dated s happened (see [period.eventTime]);
// the zero time when s is empty.
func eventDate(s, field string, recordTime time.Time, zone *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	p, err := parsePeriod(s, zone)
	if err != nil {
		return time.Time{}, pipeline.Rejectf(pipeline.TypeInvalid, "%s %v", field, err)
	}
	return p.eventTime(recordTime), nil
}

func classify(err error) error {
	if errors.Is(err, envelope.ErrTimestamp) {
		return pipeline.Reject(pipeline.TypeInvalid, err)
	}
	return pipeline.Rejectf(pipeline.TypeDecode, "event: %w", err)
}
