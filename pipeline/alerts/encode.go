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
		// Compact JSON by construction (DecodePatient compacts it).
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

// The patient-alerts value is JSON with short member names: it is written
// for every observation that changes it and read back for the next.
//
//	{"seq":7,
//	 "open":[{"id":"obs-1-hr","rule":"hr","code":"8867-4","obs":"obs-1","sev":"high","ver":1,
//	          "prov":false,"value":138,"unit":"/min","fp":"138|high","at":1735689600000,
//	          "sup":2,"supIds":["obs-2","obs-3"]}],
//	 "vitals":[{"v":"pulse","value":138,"at":1735689600000,"obs":"obs-1"}]}
func appendState(b []byte, s *PatientState) []byte {
	b = append(b, `{"seq":`...)
	b = jsontext.AppendInt(b, s.Seq)
	b = append(b, `,"open":`...)
	if !s.openLoaded && s.openRaw != nil {
		b = append(b, s.openRaw...)
	} else {
		b = appendOpen(b, s.Open)
	}
	b = append(b, `,"vitals":[`...)
	for i := range s.Vitals {
		v := &s.Vitals[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"v":`...)
		b = jsontext.AppendString(b, v.Vital.String())
		b = append(b, `,"value":`...)
		b = jsontext.AppendFloat(b, v.Value)
		b = append(b, `,"at":`...)
		b = jsontext.AppendInt(b, v.At)
		b = append(b, `,"obs":`...)
		b = jsontext.AppendString(b, v.ObservationID)
		b = append(b, '}')
	}
	return append(b, ']', '}')
}

func appendOpen(b []byte, open []OpenAlert) []byte {
	b = append(b, '[')
	for i := range open {
		o := &open[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = jsontext.AppendString(b, o.AlertID)
		b = append(b, `,"rule":`...)
		b = jsontext.AppendString(b, o.RuleID)
		b = append(b, `,"code":`...)
		b = jsontext.AppendString(b, o.Rule)
		b = append(b, `,"obs":`...)
		b = jsontext.AppendString(b, o.ObservationID)
		b = append(b, `,"sev":`...)
		b = jsontext.AppendString(b, string(o.Severity))
		b = append(b, `,"ver":`...)
		b = jsontext.AppendInt(b, o.Version)
		if o.Provisional {
			b = append(b, `,"prov":true`...)
		}
		b = append(b, `,"value":`...)
		b = jsontext.AppendFloat(b, o.Value)
		b = appendOptString(b, `,"unit":`, o.Unit)
		b = append(b, `,"fp":`...)
		b = jsontext.AppendString(b, o.Fingerprint)
		b = append(b, `,"at":`...)
		b = jsontext.AppendInt(b, o.At)
		if o.Suppressed != 0 {
			b = append(b, `,"sup":`...)
			b = jsontext.AppendInt(b, o.Suppressed)
		}
		if len(o.SuppressedIDs) > 0 {
			b = append(b, `,"supIds":`...)
			b = appendStrings(b, o.SuppressedIDs)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// errState: a patient-alerts value that appendState did not write.
var errState = errors.New("patient state is not readable")

// decodeState reads a patient-alerts value that appendState wrote. Its
// strings alias b. Errors never quote b.
func decodeState(b []byte, st *PatientState) error {
	var s jsontext.Scanner
	s.Reset(b)
	bad := false
	for more := s.Object(); more; more = s.NextMember() {
		switch string(s.Key()) {
		case "seq":
			st.Seq, bad = scanInt(&s, bad)
		case "open":
			// Kept raw: see PatientState.openRaw. Its syntax is checked
			// here, its contents when loaded.
			if raw := s.Raw(); string(raw) != "null" {
				st.openRaw = raw
			}
		case "vitals":
			st.Vitals = st.Vitals[:0]
			for more := s.Array(); more; more = s.NextElement() {
				var v StoredVital
				known := false
				for more := s.Object(); more; more = s.NextMember() {
					switch string(s.Key()) {
					case "v":
						v.Vital, known = vitalNamed(s.String())
					case "value":
						v.Value, bad = scanFloat(&s, bad)
					case "at":
						v.At, bad = scanInt(&s, bad)
					case "obs":
						v.ObservationID = s.String()
					default:
						s.Skip()
					}
				}
				if !known {
					bad = true
				}
				st.Vitals = append(st.Vitals, v)
			}
		default:
			s.Skip()
		}
	}
	s.End()
	if err := s.Err(); err != nil {
		return err
	}
	if bad {
		return errState
	}
	return nil
}

// decodeOpen reads an open-alerts array that appendOpen wrote into st.
func decodeOpen(b []byte, st *PatientState) error {
	var s jsontext.Scanner
	s.Reset(b)
	bad := false
	st.Open = st.Open[:0]
	for more := s.Array(); more; more = s.NextElement() {
		var o OpenAlert
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "id":
				o.AlertID = s.String()
			case "rule":
				o.RuleID = s.String()
			case "code":
				o.Rule = s.String()
			case "obs":
				o.ObservationID = s.String()
			case "sev":
				o.Severity = Severity(s.String())
			case "ver":
				o.Version, bad = scanInt(&s, bad)
			case "prov":
				o.Provisional = string(s.Raw()) == "true"
			case "value":
				o.Value, bad = scanFloat(&s, bad)
			case "unit":
				o.Unit = s.String()
			case "fp":
				o.Fingerprint = s.String()
			case "at":
				o.At, bad = scanInt(&s, bad)
			case "sup":
				o.Suppressed, bad = scanInt(&s, bad)
			case "supIds":
				for more := s.Array(); more; more = s.NextElement() {
					o.SuppressedIDs = append(o.SuppressedIDs, s.String())
				}
			default:
				s.Skip()
			}
		}
		st.Open = append(st.Open, o)
	}
	s.End()
	if err := s.Err(); err != nil {
		return err
	}
	if bad {
		return errState
	}
	return nil
}

func scanInt(s *jsontext.Scanner, bad bool) (int64, bool) {
	n, err := strconv.ParseInt(string(s.Raw()), 10, 64)
	return n, bad || err != nil
}

func scanFloat(s *jsontext.Scanner, bad bool) (float64, bool) {
	f, err := strconv.ParseFloat(string(s.Raw()), 64)
	return f, bad || err != nil
}

// vitalNamed is the vital whose String is name.
func vitalNamed(name string) (Vital, bool) {
	for v := range NumVitals {
		if v.String() == name {
			return v, true
		}
	}
	return 0, false
}
