package alerts

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// stdJSON is v as encoding/json writes it without HTML escaping: what the
// hand-written appenders must reproduce byte for byte.
func stdJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendersMatchEncodingJSON(t *testing.T) {
	odd := "Ünïcode \"quoted\" \\ <tag> & \n\t\x01 \u2028 \xff"
	careTeam := json.RawMessage(`[{"reference":"Practitioner/p1","display":"Dr \"X\""}]`)
	cmp := 99.088
	alerts := []Alert{
		{AlertID: "obs-1-hr", PatientID: "pat-1", ObservationID: "obs-1", Rule: "8867-4", RuleID: "hr", Severity: rules.SeverityHigh,
			Description: "Heart rate high", Value: 138, Unit: "/min", Timestamp: "2025-01-01T00:00:00Z", CorrelationID: "c-1",
			Status: StatusActive, Version: 1, PatientName: odd, PatientMRN: "MRN1", CareTeam: careTeam},
		{AlertID: "a", Severity: rules.SeverityLow, Value: 0, Status: StatusActive},
		{AlertID: odd, Description: odd, Value: -1.5e-7, Unit: odd, CorrelationID: odd, Status: StatusRetracted, Version: 3, SuppressedCount: 4},
		{Value: 1e21, ComparedValue: &cmp, ComparedUnit: "mg/dL", Status: StatusProvisional},
		{RuleID: "news2", Rule: "news2", Value: 7, Unit: "{score}", NEWS2: &NEWS2Detail{
			Score: 7, Trigger: "emergency", SpO2Scale: 1,
			SubScores: []NEWS2SubScore{{Parameter: "pulse", Value: 131, Score: 3}, {Parameter: "temperature", Value: 38.5, Score: 1}},
			Missing:   []string{"consciousness"},
		}},
		{RuleID: "news2", NEWS2: &NEWS2Detail{}},
	}
	for _, a := range alerts {
		if got, want := appendAlert(nil, &a), stdJSON(t, &a); !bytes.Equal(got, want) {
			t.Errorf("alert:\n got %s\nwant %s", got, want)
		}
		alertJSON := appendAlert(nil, &a)
		for _, chs := range [][]Channel{nil, noChannels, criticalChannels} {
			h := HistoryRecord{AlertID: a.AlertID, PatientID: a.PatientID, ObservationID: odd, Event: EventSuppressed, Version: 2,
				Severity: a.Severity, Channels: chs, SuppressedCount: 3, Timestamp: a.Timestamp, CorrelationID: a.CorrelationID, Sequence: 42}
			if got, want := appendHistory(nil, &h), stdJSON(t, &h); !bytes.Equal(got, want) {
				t.Errorf("history:\n got %s\nwant %s", got, want)
			}
		}
		for _, raw := range []json.RawMessage{nil, alertJSON} {
			n := Notification{NotificationID: a.AlertID + "-sms", Channel: ChannelSMS, AlertID: a.AlertID, PatientID: a.PatientID,
				Severity: a.Severity, Event: EventRetracted, Timestamp: a.Timestamp, CorrelationID: a.CorrelationID, Alert: raw}
			if got, want := appendNotification(nil, &n), stdJSON(t, &n); !bytes.Equal(got, want) {
				t.Errorf("notification:\n got %s\nwant %s", got, want)
			}
		}
	}
}

func TestDecodeStateRoundTrip(t *testing.T) {
	want := patientState{
		Seq: 7,
		Open: []openAlert{
			{AlertID: "obs-1-hr", RuleID: "hr", Rule: "8867-4", ObservationID: "obs-1", Severity: rules.SeverityHigh, Version: 2,
				Provisional: true, Value: 138, Unit: "/min", Fingerprint: "138|high|p", At: 1735689600000,
				Suppressed: 2, SuppressedIDs: []string{"obs-2", "odd \"é\" \n"}},
			{AlertID: "obs-9-news2", RuleID: "news2", Rule: "news2", ObservationID: "obs-9", Severity: rules.SeverityCritical, Version: 1, Value: 7, At: -5,
				Basis: []storedVital{{Vital: vitalRespiratoryRate, Value: 26, At: -6, ObservationID: "obs-8"}, {Vital: vitalSpO2, Value: 91, At: -5, ObservationID: "obs-9"}}},
		},
		Vitals: []storedVital{{Vital: vitalPulse, Value: 138, At: 1735689600000, ObservationID: "obs-1"}, {Vital: vitalTemperature, Value: 38.55, At: 1, ObservationID: "obs-3"}},
	}
	got, err := readState(appendState(nil, &want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	good := appendState(nil, &want)
	badVital := appendState(nil, &patientState{Vitals: []storedVital{{Vital: numVitals}}})
	badBasis := appendState(nil, &patientState{Open: []openAlert{{AlertID: "a", Basis: []storedVital{{Vital: numVitals}}}}})
	for name, bad := range map[string][]byte{
		"JSON":              []byte(`{"seq":1,"open":[]}`),
		"empty":             {},
		"other version":     append([]byte{stateVersion + 1}, good[1:]...),
		"no section filter": append(append([]byte{stateVersion}, good[1:18]...), 0, 0),
		"truncated":         good[:len(good)-3],
		"trailing bytes":    append(append([]byte(nil), good...), 0),
		"unknown vital":     badVital,
		"unknown basis":     badBasis,
		"huge count":        {stateVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := readState(bad); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// appendOpenV2 writes an open section in the layout of versions 1 and 2,
// which had no bases.
func appendOpenV2(b []byte, open []openAlert) []byte {
	b = binary.AppendUvarint(b, uint64(len(open)))
	for i := range open {
		o := &open[i]
		for _, s := range []string{o.AlertID, o.RuleID, o.Rule, o.ObservationID, string(o.Severity)} {
			b = appendStr(b, s)
		}
		b = binary.AppendVarint(b, o.Version)
		var flags byte
		if o.Provisional {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.Value))
		b = appendStr(b, o.Unit)
		b = appendStr(b, o.Fingerprint)
		b = binary.AppendVarint(b, o.At)
		b = binary.AppendVarint(b, o.Suppressed)
		b = binary.AppendUvarint(b, uint64(len(o.SuppressedIDs)))
		for _, id := range o.SuppressedIDs {
			b = appendStr(b, id)
		}
	}
	return b
}

// appendStateV2 writes s in the layout of version 2, whose open alerts
// had no bases: values that changelogs written before version 3 still
// hold.
func appendStateV2(b []byte, s *patientState) []byte {
	b = append(b, stateVersionV2)
	b = appendFilter(b, anyID)
	b = binary.AppendUvarint(b, uint64(s.Seq))
	open := appendOpenV2(nil, s.Open)
	b = binary.AppendUvarint(b, uint64(16+len(open)))
	b = appendFilter(b, openFilter(s.Open))
	b = append(b, open...)
	b = binary.AppendUvarint(b, uint64(len(s.Vitals)))
	for i := range s.Vitals {
		b = appendReading(b, &s.Vitals[i])
	}
	return b
}

// appendStateV1 writes s in the layout of version 1, which had no
// filters: values that changelogs written before version 2 still hold.
func appendStateV1(b []byte, s *patientState) []byte {
	b = append(b, stateVersionV1)
	b = binary.AppendUvarint(b, uint64(s.Seq))
	open := appendOpenV2(nil, s.Open)
	b = binary.AppendUvarint(b, uint64(len(open)))
	b = append(b, open...)
	b = binary.AppendUvarint(b, uint64(len(s.Vitals)))
	for _, v := range s.Vitals {
		b = append(b, byte(v.Vital))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Value))
		b = binary.AppendVarint(b, v.At)
		b = appendStr(b, v.ObservationID)
	}
	return b
}

func TestDecodeStateVersion1(t *testing.T) {
	want := patientState{
		Seq:    4,
		Open:   []openAlert{{AlertID: "obs-1-hr", RuleID: "hr", ObservationID: "obs-1", Severity: rules.SeverityHigh, Version: 1, At: 9, SuppressedIDs: []string{"obs-2"}}},
		Vitals: []storedVital{{Vital: vitalPulse, Value: 130, At: 9, ObservationID: "obs-3"}},
	}
	v1 := appendStateV1(nil, &want)
	got, err := readState(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	for _, id := range []string{"obs-1", "obs-2", "obs-3"} {
		if !stateMayName(v1, id) {
			t.Errorf("a version-1 value is said not to name %s", id)
		}
	}
	// Not read, a version-1 section is still rewritten in the current
	// layout, whole, with its own filter.
	var st patientState
	if err := decodeState(v1, &st); err != nil {
		t.Fatal(err)
	}
	v3 := appendState(nil, &st)
	if v3[0] != stateVersion {
		t.Fatalf("rewritten as version %d", v3[0])
	}
	back, err := readState(v3)
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("rewritten: %+v, %v", back, err)
	}
	if !stateMayName(v3, "obs-2") {
		t.Fatal("a rewritten version-1 section lost ids")
	}
}

// TestDecodeStateVersion2: a version-2 value (open alerts without bases)
// is read, and rewritten as version 3 even when its open alerts are not
// read, so that no version-2 section is ever labelled version 3.
func TestDecodeStateVersion2(t *testing.T) {
	want := patientState{
		Seq: 5,
		Open: []openAlert{
			{AlertID: "obs-1-hr", RuleID: "hr", ObservationID: "obs-1", Severity: rules.SeverityHigh, Version: 1, At: 9, SuppressedIDs: []string{"obs-2"}},
			{AlertID: "obs-4-news2", RuleID: rules.NEWS2ID, Rule: rules.NEWS2ID, ObservationID: "obs-4", Severity: rules.SeverityHigh, Version: 1, Value: 3, At: 9},
		},
		Vitals: []storedVital{{Vital: vitalRespiratoryRate, Value: 26, At: 9, ObservationID: "obs-4"}},
	}
	v2 := appendStateV2(nil, &want)
	got, err := readState(v2)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v, %v\nwant %+v", got, err, want)
	}
	var st patientState
	if err := decodeState(v2, &st); err != nil {
		t.Fatal(err)
	}
	st.Vitals[0].Value = 27
	v3 := appendState(nil, &st)
	back, err := readState(v3)
	if err != nil || v3[0] != stateVersion || len(back.Open) != 2 || back.Vitals[0].Value != 27 {
		t.Fatalf("rewritten: version %d, %+v, %v", v3[0], back, err)
	}
}

// TestStateFilter: a value's filters let through every id it names, and
// turn away most others.
func TestStateFilter(t *testing.T) {
	var st patientState
	named := map[string]bool{}
	for i := range 8 {
		o := openAlert{AlertID: fmt.Sprintf("obs-%d-hr", i), RuleID: "hr", ObservationID: fmt.Sprintf("obs-%d", i)}
		for j := range 3 {
			o.SuppressedIDs = append(o.SuppressedIDs, fmt.Sprintf("obs-%d-%d", i, j))
		}
		st.Open = append(st.Open, o)
	}
	for i := range 7 {
		st.Vitals = append(st.Vitals, storedVital{Vital: vital(i), ObservationID: fmt.Sprintf("vital-%d", i)})
	}
	for _, o := range st.Open {
		named[o.ObservationID] = true
		for _, id := range o.SuppressedIDs {
			named[id] = true
		}
	}
	for _, v := range st.Vitals {
		named[v.ObservationID] = true
	}
	b := appendState(nil, &st)
	var back patientState
	if err := decodeState(b, &back); err != nil {
		t.Fatal(err)
	}
	for id := range named {
		if !stateMayName(b, id) {
			t.Errorf("value filter misses %s", id)
		}
	}
	for _, o := range st.Open {
		if !back.openIDs.mayName(o.ObservationID) {
			t.Errorf("open-section filter misses %s", o.ObservationID)
		}
	}
	// Carried over unread, the section keeps its filter.
	back.Vitals = back.Vitals[:1]
	again := appendState(nil, &back)
	for _, o := range st.Open {
		if !stateMayName(again, o.ObservationID) {
			t.Errorf("carried-over section's filter misses %s", o.ObservationID)
		}
	}
	// 39 ids named: a Bloom filter of 128 bits and three hashes lets
	// through about a fifth of the others (each then searched for).
	passed := 0
	for i := range 1000 {
		if readFilter(b[1:17]).mayName(fmt.Sprintf("other-%d", i)) {
			passed++
		}
	}
	if passed > 350 {
		t.Errorf("%d of 1000 ids not named pass the filter", passed)
	}
}

// readState decodes a whole patient-alerts value, open alerts included,
// as tests compare it.
func readState(b []byte) (patientState, error) {
	var st patientState
	if err := decodeState(b, &st); err != nil {
		return st, err
	}
	if !st.loadOpen() {
		return st, errState
	}
	st.openRaw, st.openLoaded, st.openIDs, st.openVersion, st.bases = nil, false, idFilter{}, 0, nil
	return st, nil
}

func TestStateKeepsUnreadOpenAlertsVerbatim(t *testing.T) {
	st := patientState{Seq: 3, Open: []openAlert{{AlertID: "a", RuleID: "r", Version: 1, Fingerprint: "1|high", At: 5}}}
	b := appendState(nil, &st)
	var back patientState
	if err := decodeState(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Vitals = append(back.Vitals, storedVital{Vital: vitalPulse, Value: 80, At: 6, ObservationID: "o"})
	again, err := readState(appendState(nil, &back))
	if err != nil || len(again.Open) != 1 || !reflect.DeepEqual(again.Open[0], st.Open[0]) || len(again.Vitals) != 1 {
		t.Fatalf("after a vitals-only change: %+v, %v", again, err)
	}
}

// FuzzDecodeState: whatever a changelog holds, reading it fails cleanly or
// yields a state that writes back to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add(appendState(nil, &patientState{Seq: 3, Open: []openAlert{{AlertID: "a", SuppressedIDs: []string{"x"}}}, Vitals: []storedVital{{Vital: vitalSpO2, Value: 93}}}))
	f.Add([]byte{stateVersion, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := readState(b)
		if err != nil {
			return
		}
		// Compared as bytes: a value may be NaN, which DeepEqual never
		// finds equal to itself.
		enc := appendState(nil, &st)
		again, err := readState(enc)
		if err != nil || !bytes.Equal(appendState(nil, &again), enc) {
			t.Fatalf("re-encoded state reads back as %+v, %v; want %+v", again, err, st)
		}
	})
}

// TestGPCareTeamIsEncodingJSON: the hand-written careTeam of general
// practitioners is what encoding/json writes for them.
func TestGPCareTeamIsEncodingJSON(t *testing.T) {
	for _, gps := range [][]reference{
		{{Reference: "Practitioner/pract-7", Display: "Dr. Adam Careful"}},
		{{Reference: "Organization/org-1"}, {Display: `Dr. "Q" <Quinn> & Co \ é ` + "\u2028\x01"}},
		{{Display: "only a display"}, {Reference: "Practitioner/1", Display: "x"}},
	} {
		if got, want := gpCareTeam(gps), stdJSON(t, gps); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
