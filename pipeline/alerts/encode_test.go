package alerts

import (
	"bytes"
	"encoding/json"
	"testing"
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
	alerts := []Alert{
		{AlertID: "obs-1-hr", PatientID: "pat-1", ObservationID: "obs-1", Rule: "8867-4", RuleID: "hr", Severity: SeverityHigh,
			Description: "Heart rate high", Value: 138, Unit: "/min", Timestamp: "2025-01-01T00:00:00Z", CorrelationID: "c-1",
			Status: StatusActive, PatientName: odd, PatientMRN: "MRN1", CareTeam: careTeam},
		{AlertID: "a", Severity: SeverityLow, Value: 0, Status: StatusActive},
		{AlertID: odd, Description: odd, Value: -1.5e-7, Unit: odd, CorrelationID: odd, Status: StatusActive},
		{Value: 1e21},
	}
	for _, a := range alerts {
		if got, want := appendAlert(nil, &a), stdJSON(t, &a); !bytes.Equal(got, want) {
			t.Errorf("alert:\n got %s\nwant %s", got, want)
		}
		alertJSON := appendAlert(nil, &a)
		for _, chs := range [][]Channel{nil, noChannels, criticalChannels} {
			h := HistoryRecord{AlertID: a.AlertID, PatientID: a.PatientID, Severity: a.Severity, Channels: chs,
				Timestamp: a.Timestamp, CorrelationID: a.CorrelationID, Sequence: 42}
			if got, want := appendHistory(nil, &h), stdJSON(t, &h); !bytes.Equal(got, want) {
				t.Errorf("history:\n got %s\nwant %s", got, want)
			}
		}
		for _, raw := range []json.RawMessage{nil, alertJSON} {
			n := Notification{NotificationID: a.AlertID + "-sms", Channel: ChannelSMS, AlertID: a.AlertID, PatientID: a.PatientID,
				Severity: a.Severity, Timestamp: a.Timestamp, CorrelationID: a.CorrelationID, Alert: raw}
			if got, want := appendNotification(nil, &n), stdJSON(t, &n); !bytes.Equal(got, want) {
				t.Errorf("notification:\n got %s\nwant %s", got, want)
			}
		}
	}
	for _, st := range []PatientState{
		{},
		{Count: 3, Recent: []RecentAlert{}},
		{Count: 7, Recent: []RecentAlert{{AlertID: "a", RuleID: "r", Severity: SeverityCritical, Timestamp: "t"}, {AlertID: odd}}},
	} {
		if got, want := appendState(nil, &st), stdJSON(t, &st); !bytes.Equal(got, want) {
			t.Errorf("state:\n got %s\nwant %s", got, want)
		}
	}
}

func TestDecodeStateRoundTrip(t *testing.T) {
	want := PatientState{Count: 7, Recent: []RecentAlert{
		{AlertID: "obs-1-hr", RuleID: "hr", Severity: SeverityHigh, Timestamp: "2025-01-01T00:00:00Z"},
		{AlertID: "odd \"é\" \n", RuleID: "r", Severity: SeverityCritical},
	}}
	var got PatientState
	if err := decodeState(appendState(nil, &want), &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != want.Count || len(got.Recent) != len(want.Recent) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want.Recent {
		if got.Recent[i] != want.Recent[i] {
			t.Errorf("recent %d: got %+v, want %+v", i, got.Recent[i], want.Recent[i])
		}
	}
	for _, bad := range []string{`{"count":1.5,"recent":[]}`, `{"count":"7"}`, `{"recent":[{"alertId":7}]}`, `{"count":1`, `not json`} {
		var st PatientState
		if err := decodeState([]byte(bad), &st); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
}
