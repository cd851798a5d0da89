package alerts

import (
	"encoding/json"
	"slices"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// severities are the severities in a fixed order (metric label values).
var severities = rules.Severities()

// Channel is a notification delivery channel, with an outbox topic each.
type Channel string

// The channels.
const (
	ChannelMobile Channel = "mobile"
	ChannelEmail  Channel = "email"
	ChannelSMS    Channel = "sms"
)

var channels = [...]Channel{ChannelMobile, ChannelEmail, ChannelSMS}

// topic is the channel's outbox topic.
func (c Channel) topic() string {
	switch c {
	case ChannelMobile:
		return TopicMobile
	case ChannelEmail:
		return TopicEmail
	case ChannelSMS:
		return TopicSMS
	}
	return ""
}

func (c Channel) index() int { return slices.Index(channels[:], c) }

var (
	noChannels       = []Channel{}
	highChannels     = []Channel{ChannelMobile, ChannelEmail}
	criticalChannels = []Channel{ChannelMobile, ChannelEmail, ChannelSMS}
)

// channelsOf are the channels an alert of severity s is delivered on: high
// and critical go to mobile and email, critical to SMS too; medium and low
// to none (they are recorded in the history only). The slice is shared: do
// not modify it.
func channelsOf(s rules.Severity) []Channel {
	switch s {
	case rules.SeverityCritical:
		return criticalChannels
	case rules.SeverityHigh:
		return highChannels
	}
	return noChannels
}

// Alert statuses (DESIGN.md, "Alert record").
const (
	// StatusActive: raised by a final, amended or corrected observation.
	StatusActive = "active"
	// StatusProvisional: raised by a preliminary observation (or one of
	// unknown status); a final one replaces it.
	StatusProvisional = "provisional"
	// StatusRetracted: the observation was entered in error, cancelled,
	// or amended below the threshold.
	StatusRetracted = "retracted"
)

// Alert is a clinical.alerts record (DESIGN.md, "Alert record"). Patient
// fields are set only when the patient is in the fhir.Patient table.
//
// An alert has versions: version 1 raises it, a later version replaces it
// (an amended or corrected value that still crosses the threshold, a
// preliminary result made final) or retracts it (status retracted). Every
// version has the same AlertID.
type Alert struct {
	// AlertID is ObservationID + "-" + RuleID: a replay yields the same id.
	AlertID       string `json:"alertId"`
	PatientID     string `json:"patientId"`
	ObservationID string `json:"observationId"`
	// Rule is the code that fired, or "news2".
	Rule        string         `json:"rule"`
	RuleID      string         `json:"ruleId"`
	Severity    rules.Severity `json:"severity"`
	Description string         `json:"description"`
	// Value and Unit are the value as observed (the NEWS2 aggregate for
	// news2); ComparedValue and ComparedUnit the value in the rule's unit,
	// when it was converted.
	Value         float64  `json:"value"`
	Unit          string   `json:"unit,omitempty"`
	ComparedValue *float64 `json:"comparedValue,omitempty"`
	ComparedUnit  string   `json:"comparedUnit,omitempty"`
	// Timestamp is the event time of the observation this version comes
	// from, RFC 3339 in UTC; empty when the record carries no time at all.
	Timestamp     string `json:"timestamp,omitempty"`
	CorrelationID string `json:"correlationId"`
	Status        string `json:"status"`
	Version       int64  `json:"version"`
	// SuppressedCount is how many repeats were counted on this alert
	// inside its suppression window.
	SuppressedCount int64           `json:"suppressedCount,omitempty"`
	NEWS2           *NEWS2Detail    `json:"news2,omitempty"`
	PatientName     string          `json:"patientName,omitempty"`
	PatientMRN      string          `json:"patientMRN,omitempty"`
	CareTeam        json.RawMessage `json:"careTeam,omitempty"`
}

// NEWS2Detail is what a news2 alert says of its score.
type NEWS2Detail struct {
	Score int `json:"score"`
	// Trigger is what crossed: "emergency" (aggregate at or above the
	// emergency threshold), "urgent" (aggregate at or above the urgent
	// one) or "single-parameter" (one parameter scoring the single-
	// parameter threshold).
	Trigger   string `json:"trigger"`
	SpO2Scale int    `json:"spo2Scale"`
	// SubScores are the present, fresh parameters, in chart order.
	SubScores []NEWS2SubScore `json:"subScores"`
	// Missing are the parameters with no fresh value: the score is a lower
	// bound, since each could only add to it.
	Missing []string `json:"missing,omitempty"`
}

// NEWS2SubScore is one parameter's value and score.
type NEWS2SubScore struct {
	Parameter string  `json:"parameter"`
	Value     float64 `json:"value"`
	Score     int     `json:"score"`
}

// History events.
const (
	EventRaised     = "raised"
	EventReplaced   = "replaced"
	EventRetracted  = "retracted"
	EventSuppressed = "suppressed"
)

// HistoryRecord is a clinical.notifications.history record: one per alert
// version and one per suppressed repeat, with the channels notified
// (possibly none).
type HistoryRecord struct {
	AlertID   string `json:"alertId"`
	PatientID string `json:"patientId"`
	// ObservationID is the observation behind the event: for a suppressed
	// repeat, the repeat's, not the alert's.
	ObservationID string         `json:"observationId"`
	Event         string         `json:"event"`
	Version       int64          `json:"version"`
	Severity      rules.Severity `json:"severity"`
	Channels      []Channel      `json:"channels"`
	// SuppressedCount is the alert's count of suppressed repeats after
	// this event.
	SuppressedCount int64  `json:"suppressedCount"`
	Timestamp       string `json:"timestamp,omitempty"`
	CorrelationID   string `json:"correlationId"`
	// Sequence is the patient's running history count, this record
	// included.
	Sequence int64 `json:"sequence"`
}

// Notification is a notifications.<channel> record: a request to deliver
// one alert version on one channel. Alert is the alert record as written to
// clinical.alerts.
type Notification struct {
	// NotificationID is AlertID + "-" + Channel for version 1, with
	// "-v<version>" after it for later ones: unique per delivery, for
	// gateways to dedupe on.
	NotificationID string          `json:"notificationId"`
	Channel        Channel         `json:"channel"`
	AlertID        string          `json:"alertId"`
	PatientID      string          `json:"patientId"`
	Severity       rules.Severity  `json:"severity"`
	Event          string          `json:"event"`
	Timestamp      string          `json:"timestamp,omitempty"`
	CorrelationID  string          `json:"correlationId"`
	Alert          json.RawMessage `json:"alert"`
}
