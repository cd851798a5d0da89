package alerts

import (
	"encoding/json"
	"slices"
)

// Severity is an alert's severity; it decides the delivery channels.
type Severity string

// The severities.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// severities are the severities in a fixed order (metric label values).
var severities = [...]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool { return s.index() >= 0 }

func (s Severity) index() int {
	return slices.Index(severities[:], s)
}

// Channel is a notification delivery channel, with an outbox topic each.
type Channel string

// The channels.
const (
	ChannelMobile Channel = "mobile"
	ChannelEmail  Channel = "email"
	ChannelSMS    Channel = "sms"
)

var channels = [...]Channel{ChannelMobile, ChannelEmail, ChannelSMS}

// Topic is the channel's outbox topic.
func (c Channel) Topic() string {
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

// Channels are the channels an alert of severity s is delivered on: high
// and critical go to mobile and email, critical to SMS too; medium and low
// to none (they are recorded in the history only). The slice is shared: do
// not modify it.
func (s Severity) Channels() []Channel {
	switch s {
	case SeverityCritical:
		return criticalChannels
	case SeverityHigh:
		return highChannels
	}
	return noChannels
}

// StatusActive is the status of an alert raised by a threshold rule.
const StatusActive = "active"

// Alert is a clinical.alerts record (DESIGN.md, "Alert record"). Patient
// fields are set only when the patient is in the fhir.Patient table.
type Alert struct {
	// AlertID is ObservationID + "-" + RuleID: a replay yields the same id.
	AlertID       string   `json:"alertId"`
	PatientID     string   `json:"patientId"`
	ObservationID string   `json:"observationId"`
	Rule          string   `json:"rule"` // the code that fired
	RuleID        string   `json:"ruleId"`
	Severity      Severity `json:"severity"`
	Description   string   `json:"description"`
	Value         float64  `json:"value"`
	Unit          string   `json:"unit,omitempty"`
	// Timestamp is the observation's event time in RFC 3339 (see
	// [Processor.Evaluate]); empty when the record carries no time at all.
	Timestamp     string          `json:"timestamp,omitempty"`
	CorrelationID string          `json:"correlationId"`
	Status        string          `json:"status"`
	PatientName   string          `json:"patientName,omitempty"`
	PatientMRN    string          `json:"patientMRN,omitempty"`
	CareTeam      json.RawMessage `json:"careTeam,omitempty"`
}

// HistoryRecord is a clinical.notifications.history record: one per alert,
// with the channels chosen (possibly none).
type HistoryRecord struct {
	AlertID       string    `json:"alertId"`
	PatientID     string    `json:"patientId"`
	Severity      Severity  `json:"severity"`
	Channels      []Channel `json:"channels"`
	Timestamp     string    `json:"timestamp,omitempty"`
	CorrelationID string    `json:"correlationId"`
	// Sequence is the patient's running alert count, this alert included.
	Sequence int64 `json:"sequence"`
}

// Notification is a notifications.<channel> record: a request to deliver
// one alert on one channel. Alert is the alert record as written to
// clinical.alerts.
type Notification struct {
	// NotificationID is AlertID + "-" + Channel, for gateways to dedupe on.
	NotificationID string          `json:"notificationId"`
	Channel        Channel         `json:"channel"`
	AlertID        string          `json:"alertId"`
	PatientID      string          `json:"patientId"`
	Severity       Severity        `json:"severity"`
	Timestamp      string          `json:"timestamp,omitempty"`
	CorrelationID  string          `json:"correlationId"`
	Alert          json.RawMessage `json:"alert"`
}

// RecentWindow is how many of a patient's latest alerts the patient-alerts
// store remembers to recognise duplicates.
const RecentWindow = 20

// PatientState is a patient-alerts store value.
type PatientState struct {
	// Count is the patient's running alert count.
	Count  int64         `json:"count"`
	Recent []RecentAlert `json:"recent"`
}

// RecentAlert is one remembered alert, oldest first in PatientState.Recent.
type RecentAlert struct {
	AlertID   string   `json:"alertId"`
	RuleID    string   `json:"ruleId"`
	Severity  Severity `json:"severity"`
	Timestamp string   `json:"timestamp,omitempty"`
}

// seen reports whether alertID is in the recent window.
func (s *PatientState) seen(alertID string) bool {
	for i := range s.Recent {
		if s.Recent[i].AlertID == alertID {
			return true
		}
	}
	return false
}

// add records a, keeping the window at RecentWindow, and returns the new
// count.
func (s *PatientState) add(a *Alert) int64 {
	s.Count++
	if len(s.Recent) >= RecentWindow {
		n := copy(s.Recent, s.Recent[len(s.Recent)-RecentWindow+1:])
		s.Recent = s.Recent[:n]
	}
	s.Recent = append(s.Recent, RecentAlert{AlertID: a.AlertID, RuleID: a.RuleID, Severity: a.Severity, Timestamp: a.Timestamp})
	return s.Count
}
