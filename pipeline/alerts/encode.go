package alerts

import (
	"errors"
	"strconv"

	"github.com/carepipe/carepipe/pipeline/jsontext"
)

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
	if a.Unit != "" {
		b = append(b, `,"unit":`...)
		b = jsontext.AppendString(b, a.Unit)
	}
	if a.Timestamp != "" {
		b = append(b, `,"timestamp":`...)
		b = jsontext.AppendString(b, a.Timestamp)
	}
	b = append(b, `,"correlationId":`...)
	b = jsontext.AppendString(b, a.CorrelationID)
	b = append(b, `,"status":`...)
	b = jsontext.AppendString(b, a.Status)
	if a.PatientName != "" {
		b = append(b, `,"patientName":`...)
		b = jsontext.AppendString(b, a.PatientName)
	}
	if a.PatientMRN != "" {
		b = append(b, `,"patientMRN":`...)
		b = jsontext.AppendString(b, a.PatientMRN)
	}
	if len(a.CareTeam) > 0 {
		// Compact JSON by construction (DecodePatient compacts it).
		b = append(b, `,"careTeam":`...)
		b = append(b, a.CareTeam...)
	}
	return append(b, '}')
}

func appendHistory(b []byte, h *HistoryRecord) []byte {
	b = append(b, `{"alertId":`...)
	b = jsontext.AppendString(b, h.AlertID)
	b = append(b, `,"patientId":`...)
	b = jsontext.AppendString(b, h.PatientID)
	b = append(b, `,"severity":`...)
	b = jsontext.AppendString(b, string(h.Severity))
	b = append(b, `,"channels":`...)
	b = appendChannels(b, h.Channels)
	if h.Timestamp != "" {
		b = append(b, `,"timestamp":`...)
		b = jsontext.AppendString(b, h.Timestamp)
	}
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
	if n.Timestamp != "" {
		b = append(b, `,"timestamp":`...)
		b = jsontext.AppendString(b, n.Timestamp)
	}
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

func appendState(b []byte, s *PatientState) []byte {
	b = append(b, `{"count":`...)
	b = jsontext.AppendInt(b, s.Count)
	b = append(b, `,"recent":`...)
	if s.Recent == nil {
		b = append(b, "null"...)
		return append(b, '}')
	}
	b = append(b, '[')
	for i := range s.Recent {
		r := &s.Recent[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"alertId":`...)
		b = jsontext.AppendString(b, r.AlertID)
		b = append(b, `,"ruleId":`...)
		b = jsontext.AppendString(b, r.RuleID)
		b = append(b, `,"severity":`...)
		b = jsontext.AppendString(b, string(r.Severity))
		if r.Timestamp != "" {
			b = append(b, `,"timestamp":`...)
			b = jsontext.AppendString(b, r.Timestamp)
		}
		b = append(b, '}')
	}
	return append(b, ']', '}')
}

// decodeState reads a patient-alerts value that appendState wrote. Its
// strings alias b. Errors never quote b.
func decodeState(b []byte, st *PatientState) error {
	var s jsontext.Scanner
	s.Reset(b)
	for more := s.Object(); more; more = s.NextMember() {
		switch string(s.Key()) {
		case "count":
			n, err := strconv.ParseInt(string(s.Raw()), 10, 64)
			if err != nil && s.Err() == nil {
				return errors.New("patient state count is not an integer")
			}
			st.Count = n
		case "recent":
			st.Recent = st.Recent[:0]
			for more := s.Array(); more; more = s.NextElement() {
				var r RecentAlert
				for more := s.Object(); more; more = s.NextMember() {
					switch string(s.Key()) {
					case "alertId":
						r.AlertID = s.String()
					case "ruleId":
						r.RuleID = s.String()
					case "severity":
						r.Severity = Severity(s.String())
					case "timestamp":
						r.Timestamp = s.String()
					default:
						s.Skip()
					}
				}
				st.Recent = append(st.Recent, r)
			}
		default:
			s.Skip()
		}
	}
	s.End()
	return s.Err()
}
