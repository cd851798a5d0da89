package alerts

import "github.com/carepipe/carepipe/pipeline/jsontext"

// The records are encoded by hand, member by member, in the order and with
// the omissions of their struct tags: these appenders write the bytes that
// encoding/json writes for the structs (without HTML escaping; tested),
// at a fraction of a reflective encoder's cost on the alerting path.

func appendAlert(b []byte, a *Alert) []byte {
	b = append(b, `{"alertId":`...)
	b = jsontext.AppendString(b, a.AlertID)
	b = append(b, `,"patientId":`...)
	b = jsontext.AppendString(b, a.PatientID)
	b = append(b, `,"observationId":`...)
	b = jsontext.AppendString(b, a.ObservationID)
	b = append(b, `,"rule":`...)
	b = jsontext.AppendString(b, a.Rule)
	b = append(b, `,"ruleId":`...)
	b = jsontext.AppendString(b, a.RuleID)
	b = append(b, `,"severity":`...)
	b = jsontext.AppendString(b, string(a.Severity))
	b = append(b, `,"description":`...)
	b = jsontext.AppendString(b, a.Description)
	b = append(b, `,"value":`...)
	b = jsontext.AppendFloat(b, a.Value)
	b = appendOptString(b, `,"unit":`, a.Unit)
	if a.ComparedValue != nil {
		b = append(b, `,"comparedValue":`...)
		b = jsontext.AppendFloat(b, *a.ComparedValue)
	}
	b = appendOptString(b, `,"comparedUnit":`, a.ComparedUnit)
	b = appendOptString(b, `,"timestamp":`, a.Timestamp)
	b = append(b, `,"correlationId":`...)
	b = jsontext.AppendString(b, a.CorrelationID)
	b = append(b, `,"status":`...)
	b = jsontext.AppendString(b, a.Status)
	b = append(b, `,"version":`...)
	b = jsontext.AppendInt(b, a.Version)
	if a.SuppressedCount != 0 {
		b = append(b, `,"suppressedCount":`...)
		b = jsontext.AppendInt(b, a.SuppressedCount)
	}
	if a.NEWS2 != nil {
		b = append(b, `,"news2":`...)
		b = appendNEWS2(b, a.NEWS2)
	}
	b = appendOptString(b, `,"patientName":`, a.PatientName)
	b = appendOptString(b, `,"patientMRN":`, a.PatientMRN)
	if len(a.CareTeam) > 0 {
		// Compact JSON by construction (decodePatient compacts it).
		b = append(b, `,"careTeam":`...)
		b = append(b, a.CareTeam...)
	}
	return append(b, '}')
}

// appendOptString appends member (`,"name":`) and s, unless s is empty
// (omitempty).
func appendOptString(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, member...)
	return jsontext.AppendString(b, s)
}

func appendNEWS2(b []byte, d *NEWS2Detail) []byte {
	b = append(b, `{"score":`...)
	b = jsontext.AppendInt(b, int64(d.Score))
	b = append(b, `,"trigger":`...)
	b = jsontext.AppendString(b, d.Trigger)
	b = append(b, `,"spo2Scale":`...)
	b = jsontext.AppendInt(b, int64(d.SpO2Scale))
	b = append(b, `,"subScores":`...)
	if d.SubScores == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range d.SubScores {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"parameter":`...)
			b = jsontext.AppendString(b, s.Parameter)
			b = append(b, `,"value":`...)
			b = jsontext.AppendFloat(b, s.Value)
			b = append(b, `,"score":`...)
			b = jsontext.AppendInt(b, int64(s.Score))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(d.Missing) > 0 {
		b = append(b, `,"missing":`...)
		b = appendStrings(b, d.Missing)
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, s)
	}
	return append(b, ']')
}

func appendHistory(b []byte, h *HistoryRecord) []byte {
	b = append(b, `{"alertId":`...)
	b = jsontext.AppendString(b, h.AlertID)
	b = append(b, `,"patientId":`...)
	b = jsontext.AppendString(b, h.PatientID)
	b = append(b, `,"observationId":`...)
	b = jsontext.AppendString(b, h.ObservationID)
	b = append(b, `,"event":`...)
	b = jsontext.AppendString(b, h.Event)
	b = append(b, `,"version":`...)
	b = jsontext.AppendInt(b, h.Version)
	b = append(b, `,"severity":`...)
	b = jsontext.AppendString(b, string(h.Severity))
	b = append(b, `,"channels":`...)
	b = appendChannels(b, h.Channels)
	b = append(b, `,"suppressedCount":`...)
	b = jsontext.AppendInt(b, h.SuppressedCount)
	b = appendOptString(b, `,"timestamp":`, h.Timestamp)
	b = append(b, `,"correlationId":`...)
	b = jsontext.AppendString(b, h.CorrelationID)
	b = append(b, `,"sequence":`...)
	b = jsontext.AppendInt(b, h.Sequence)
	return append(b, '}')
}

func appendChannels(b []byte, chs []Channel) []byte {
	if chs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, ch := range chs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, string(ch))
	}
	return append(b, ']')
}

func appendNotification(b []byte, n *Notification) []byte {
	b = append(b, `{"notificationId":`...)
	b = jsontext.AppendString(b, n.NotificationID)
	b = append(b, `,"channel":`...)
	b = jsontext.AppendString(b, string(n.Channel))
	b = append(b, `,"alertId":`...)
	b = jsontext.AppendString(b, n.AlertID)
	b = append(b, `,"patientId":`...)
	b = jsontext.AppendString(b, n.PatientID)
	b = append(b, `,"severity":`...)
	b = jsontext.AppendString(b, string(n.Severity))
	b = append(b, `,"event":`...)
	b = jsontext.AppendString(b, n.Event)
	b = appendOptString(b, `,"timestamp":`, n.Timestamp)
	b = append(b, `,"correlationId":`...)
	b = jsontext.AppendString(b, n.CorrelationID)
	b = append(b, `,"alert":`...)
	if len(n.Alert) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, n.Alert...) // an alert appendAlert wrote
	}
	return append(b, '}')
}
