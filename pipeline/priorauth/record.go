package priorauth

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Status is a prior authorization's status.
type Status string

// The statuses (DESIGN.md): the workflow's, then the payer's
// determinations, then the communication of the determination.
const (
	StatusInitiated                 Status = "INITIATED"
	StatusDocumentationAssembled    Status = "DOCUMENTATION_ASSEMBLED"
	StatusSubmitted                 Status = "SUBMITTED"
	StatusApproved                  Status = "APPROVED"
	StatusDenied                    Status = "DENIED"
	StatusPended                    Status = "PENDED"
	StatusPartiallyApproved         Status = "PARTIALLY_APPROVED"
	StatusCancelled                 Status = "CANCELLED"
	StatusDeterminationCommunicated Status = "DETERMINATION_COMMUNICATED"
	// StatusExpired: an approval past its expiration date.
	StatusExpired Status = "EXPIRED"
)

// statuses are every status in workflow order, for metric labels.
var statuses = [...]Status{
	StatusInitiated, StatusDocumentationAssembled, StatusSubmitted, StatusApproved, StatusDenied,
	StatusPended, StatusPartiallyApproved, StatusCancelled, StatusDeterminationCommunicated, StatusExpired,
}

// final reports whether s is a final determination: one that ends the
// payer's part (PENDED waits for another).
func (s Status) final() bool {
	switch s {
	case StatusApproved, StatusDenied, StatusPartiallyApproved, StatusCancelled:
		return true
	}
	return false
}

// determination reports whether s is one of the payer's determinations.
func (s Status) determination() bool { return s.final() || s == StatusPended }

// medication is the prescribed medication.
type medication struct {
	Name     string `json:"name"`
	Code     string `json:"code"`
	Category string `json:"category"`
}

// statusEntry is one step of a prior authorization's history.
type statusEntry struct {
	Status    Status `json:"status"`
	Timestamp string `json:"timestamp"`
	Actor     string `json:"actor"`
	Reason    string `json:"reason"`
	// Late marks an event the case had moved past, recorded for the
	// reader: Status is the status it found, unchanged, and Timestamp the
	// event's own date. Workflow summaries leave it out.
	Late bool `json:"late,omitempty"`
}

// submission is what the submission gateway reported.
type submission struct {
	SubmissionID   string `json:"submissionId"`
	SubmissionDate string `json:"submissionDate"`
	Method         string `json:"submissionMethod"`
	PayerID        string `json:"payerId"`
}

// determination is the payer's latest determination.
type determination struct {
	Status         Status `json:"determinationStatus"`
	Date           string `json:"determinationDate"`
	Reason         string `json:"determinationReason,omitempty"`
	ExpirationDate string `json:"expirationDate,omitempty"`
	// At is when it was made, as read from Date (see the package doc),
	// RFC 3339 in UTC.
	At string `json:"at,omitempty"`
	// ExpiresAt is the instant an approval stops being valid, as read
	// from ExpirationDate, RFC 3339 in UTC: for a date alone, the first
	// instant of the next day in the payer's time zone.
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// madeAt is when d was made: At, or for a determination stored before At
// was kept, its date when that is a date and time.
func (d *determination) madeAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, d.At); err == nil {
		return t
	}
	t, _ := time.Parse(time.RFC3339Nano, d.Date)
	return t
}

// expiresAt is when d's approval expires: ExpiresAt, or for a
// determination stored before ExpiresAt was kept, its expirationDate read
// in UTC.
func (d *determination) expiresAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, d.ExpiresAt); err == nil {
		return t
	}
	p, _ := parsePeriod(d.ExpirationDate, time.UTC)
	return p.end
}

// record is the state of one prior authorization: the seed's record plus
// the submission and determination details. It is the priorauths store's
// value and what the query API returns.
type record struct {
	ID             string         `json:"id"`
	PrescriptionID string         `json:"prescriptionId"`
	PatientID      string         `json:"patientId"`
	ProviderID     string         `json:"providerId"`
	Medication     medication     `json:"medication"`
	PayerID        string         `json:"payerId"`
	PharmacyID     string         `json:"pharmacyId"`
	Status         Status         `json:"status"`
	CreateDate     string         `json:"createDate"`
	UpdateDate     string         `json:"updateDate"`
	StatusHistory  []statusEntry  `json:"statusHistory"`
	Submission     *submission    `json:"submission,omitempty"`
	Determination  *determination `json:"determination,omitempty"`
	// Urgent is the medication's urgency (its category is one of the
	// urgent categories), decided at initiation.
	Urgent bool `json:"urgent"`
	// CorrelationID is the prescription's, carried to every output.
	CorrelationID string `json:"correlationId"`
	// Timers are the pending timers: the decision deadline, status
	// checks, the approval's expiry.
	Timers []timer `json:"timers,omitempty"`
	// Parked are determinations that arrived before the submission was
	// recorded, in arrival order. The payer answers the submission, but
	// its determination and the gateway's submission report travel on
	// different topics, and either may be read first; they are applied
	// when the submission is.
	Parked []determination `json:"parked,omitempty"`
}

// timerKind is what a timer does when it fires.
type timerKind string

// The timers.
const (
	// timerSLA: the payer's decision deadline; firing emits
	// priorauth.sla.breached, once.
	timerSLA timerKind = "sla"
	// timerStatusCheck: an ELECTRONIC submission's next status check;
	// firing emits priorauth.status.check.requested and sets the next.
	timerStatusCheck timerKind = "status-check"
	// timerExpiry: an approval's expiration; firing moves it to EXPIRED.
	timerExpiry timerKind = "expiry"
	// timerPurge: a settled prior authorization's end of retention;
	// firing deletes it from the state store.
	timerPurge timerKind = "purge"
)

// timer is a pending timer of a prior authorization.
type timer struct {
	Kind timerKind `json:"kind"`
	// Due is when it fires, RFC 3339 in UTC.
	Due string `json:"due"`
	// Count numbers status checks (1 for the first).
	Count int `json:"count,omitempty"`
}

// due is t's due time; the zero time if unreadable (which fires at once:
// a timer is never silently lost).
func (t *timer) due() time.Time {
	d, _ := time.Parse(time.RFC3339Nano, t.Due)
	return d
}

// nextDue is the earliest due time of r's timers; zero when none.
func (r *record) nextDue() (time.Time, bool) {
	var first time.Time
	for i := range r.Timers {
		if d := r.Timers[i].due(); i == 0 || d.Before(first) {
			first = d
		}
	}
	return first, len(r.Timers) > 0
}

// dropTimers removes r's timers of the given kinds.
func (r *record) dropTimers(kinds ...timerKind) {
	out := r.Timers[:0:0]
	for _, t := range r.Timers {
		keep := true
		for _, k := range kinds {
			if t.Kind == k {
				keep = false
			}
		}
		if keep {
			out = append(out, t)
		}
	}
	r.Timers = out
}

// decidedAt is when the record's final determination was recorded: the
// date of its first final status in the history.
func (r *record) decidedAt() time.Time {
	for _, h := range r.StatusHistory {
		if h.Status.final() && !h.Late {
			t, _ := time.Parse(time.RFC3339Nano, h.Timestamp)
			return t
		}
	}
	return time.Time{}
}

// reached reports whether the record's history holds s.
func (r *record) reached(s Status) bool {
	for i := range r.StatusHistory {
		if r.StatusHistory[i].Status == s {
			return true
		}
	}
	return false
}

// PriorAuthID is the prior-auth id of a prescription: derived from its id
// alone, so that a replayed or re-sent prescription names the same one.
func PriorAuthID(prescriptionID string) string {
	sum := sha256.Sum256([]byte("priorauth\x00" + prescriptionID))
	return "pa-" + hex.EncodeToString(sum[:10])
}

// formatTime is the timestamp format of records: RFC 3339 in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
