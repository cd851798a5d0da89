package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// patients is a lookup over the patient fixtures.
func patients(t testing.TB) patientLookup {
	t.Helper()
	m := map[string]*patientContext{}
	for _, f := range []string{"patient_seed.json", "patient_fhir.json"} {
		v, err := decodePatient(nil, readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		pc := v.(*patientContext)
		m[pc.ID] = pc
	}
	return func(id string) (*patientContext, bool) { pc, ok := m[id]; return pc, ok }
}

func obsRecord(value []byte, headers ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{
		Topic: TopicObservations, Partition: 2, Offset: 1234, Key: []byte("pat-1"), Value: value, Headers: headers,
		Timestamp: time.Date(2024, 4, 5, 18, 0, 0, 0, time.UTC),
	}
}

// render prints records for golden files: coordinates, headers and the
// value indented.
func render(t testing.TB, out outcome) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, r := range out.Records {
		fmt.Fprintf(&b, "topic=%s key=%s\n", r.Topic, r.Key)
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "  %s: %s\n", h.Key, h.Value)
		}
		var v bytes.Buffer
		if err := json.Indent(&v, r.Value, "  ", "  "); err != nil {
			t.Fatalf("record on %s is not JSON: %v", r.Topic, err)
		}
		fmt.Fprintf(&b, "  %s\n", v.Bytes())
	}
	// The state is binary: shown decoded.
	if out.State != nil {
		st, err := readState(out.State)
		if err != nil {
			t.Fatalf("state does not decode: %v", err)
		}
		js, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "state=%s\n", js)
	} else {
		fmt.Fprintf(&b, "state=unchanged\n")
	}
	return b.Bytes()
}

func TestAlertRecord(t *testing.T) {
	p := newProcessor(t, WithRules(rules.Seed()))
	out, err := p.handle(obsRecord(readTestdata(t, "observation_hr_envelope.json")), patients(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) == 0 || out.Records[0].Topic != TopicAlerts {
		t.Fatalf("no alert record: %+v", out.Records)
	}
	var a map[string]any
	if err := json.Unmarshal(out.Records[0].Value, &a); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"alertId":       "obs-hr-1-heart-rate-high",
		"patientId":     "pat-1",
		"observationId": "obs-hr-1",
		"rule":          "8867-4",
		"ruleId":        "heart-rate-high",
		"severity":      "high",
		"description":   "Elevated heart rate",
		"value":         134.0,
		"unit":          "beats/minute",
		"timestamp":     "2024-04-05T17:41:00Z",
		"correlationId": "corr-0001",
		"status":        "active",
		"version":       1.0,
		"patientName":   "John Doe",
		"patientMRN":    "MRN12345",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %#v, want %#v", k, a[k], v)
		}
	}
	if _, ok := a["careTeam"].([]any); !ok {
		t.Errorf("careTeam = %#v, want the patient's list", a["careTeam"])
	}
	if len(a) != len(want)+1 {
		t.Errorf("alert has %d fields, want %d: %v", len(a), len(want)+1, a)
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		severity     rules.Severity
		wantChannels []Channel
		wantTopics   []string
	}{
		{rules.SeverityCritical, []Channel{ChannelMobile, ChannelEmail, ChannelSMS}, []string{TopicAlerts, TopicHistory, TopicMobile, TopicEmail, TopicSMS}},
		{rules.SeverityHigh, []Channel{ChannelMobile, ChannelEmail}, []string{TopicAlerts, TopicHistory, TopicMobile, TopicEmail}},
		{rules.SeverityMedium, []Channel{}, []string{TopicAlerts, TopicHistory}},
		{rules.SeverityLow, []Channel{}, []string{TopicAlerts, TopicHistory}},
	}
	for _, tt := range tests {
		t.Run(string(tt.severity), func(t *testing.T) {
			rule := rules.Rule{ID: "r", Code: "8867-4", System: rules.LOINC, Unit: "/min", Comparator: rules.GT, Threshold: 0, Severity: tt.severity, Description: "d"}
			p := newProcessor(t, WithRules(rules.Pack{Rules: []rules.Rule{rule}}))
			out, err := p.handle(obsRecord(readTestdata(t, "observation_hr_normal_bare.json")), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var topics []string
			for _, r := range out.Records {
				topics = append(topics, r.Topic)
				if string(r.Key) != "pat-1" {
					t.Errorf("%s keyed %q, want the patient id", r.Topic, r.Key)
				}
				hs := map[string]string{}
				for _, h := range r.Headers {
					hs[h.Key] = string(h.Value)
				}
				if hs[envelope.HeaderCorrelationID] == "" || hs[envelope.HeaderEventSource] != EventSource || hs[envelope.HeaderEventType] == "" {
					t.Errorf("%s headers = %v", r.Topic, hs)
				}
			}
			if !slices.Equal(topics, tt.wantTopics) {
				t.Errorf("topics = %v, want %v", topics, tt.wantTopics)
			}
			var h HistoryRecord
			if err := json.Unmarshal(out.Records[1].Value, &h); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.Channels, tt.wantChannels) || h.Channels == nil || h.Sequence != 1 {
				t.Errorf("history = %+v, want channels %v and sequence 1", h, tt.wantChannels)
			}
			if !strings.Contains(string(out.Records[1].Value), `"channels":[`) {
				t.Errorf("history channels not a list: %s", out.Records[1].Value)
			}
			for _, r := range out.Records[2:] {
				var n Notification
				if err := json.Unmarshal(r.Value, &n); err != nil {
					t.Fatal(err)
				}
				if n.Channel.topic() != r.Topic || n.NotificationID != n.AlertID+"-"+string(n.Channel) || !json.Valid(n.Alert) {
					t.Errorf("notification on %s = %+v", r.Topic, n)
				}
			}
		})
	}
}

func TestDuplicatesAndSequence(t *testing.T) {
	p := newProcessor(t, WithRules(rules.Seed()))
	rec := func(id string, value float64) *kgo.Record {
		return obsRecord(observationJSON(t, func(o map[string]any) { o["id"] = id; withValue(value)(o) }))
	}
	var state []byte
	steps := []struct {
		name      string
		r         *kgo.Record
		wantAlert bool
		wantDup   int
		wantSeq   int64
	}{
		{name: "first alert", r: rec("o1", 130), wantAlert: true, wantSeq: 1},
		{name: "same observation again is a duplicate", r: rec("o1", 130), wantDup: 1},
		{name: "non-alerting leaves state alone", r: rec("o2", 80)},
		{name: "second alert", r: rec("o3", 150), wantAlert: true, wantSeq: 2},
		{name: "first still a duplicate", r: rec("o1", 130), wantDup: 1},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, err := p.handle(s.r, nil, state)
			if err != nil {
				t.Fatal(err)
			}
			if out.Duplicates != s.wantDup || (len(out.Alerts) > 0) != s.wantAlert {
				t.Fatalf("alerts %d duplicates %d, want alert %v duplicates %d", len(out.Alerts), out.Duplicates, s.wantAlert, s.wantDup)
			}
			if !s.wantAlert {
				if out.State != nil || len(out.Records) != 0 {
					t.Fatalf("emitted %d records, state %s", len(out.Records), out.State)
				}
				return
			}
			var h HistoryRecord
			if err := json.Unmarshal(out.Records[1].Value, &h); err != nil {
				t.Fatal(err)
			}
			if h.Sequence != s.wantSeq || h.Event != EventRaised || h.Version != 1 {
				t.Errorf("history = %+v, want raised, version 1, sequence %d", h, s.wantSeq)
			}
			st, err := readState(out.State)
			if err != nil {
				t.Fatal(err)
			}
			if st.Seq != s.wantSeq || st.find(h.AlertID) < 0 {
				t.Errorf("state = %s", out.State)
			}
			state = out.State
		})
	}
}

func TestOpenAlertsAreBounded(t *testing.T) {
	p := newProcessor(t, WithRules(rules.Seed()))
	var state []byte
	for i := range maxOpenAlerts + 5 {
		out, err := p.handle(obsRecord(observationJSON(t, func(o map[string]any) { o["id"] = fmt.Sprintf("o%d", i); withValue(130)(o) })), nil, state)
		if err != nil || len(out.Alerts) != 1 {
			t.Fatalf("observation %d: %d alerts, %v", i, len(out.Alerts), err)
		}
		state = out.State
	}
	st, err := readState(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Open) != maxOpenAlerts || st.Open[0].ObservationID != "o5" {
		t.Errorf("%d open alerts, oldest %s; want %d, oldest o5", len(st.Open), st.Open[0].ObservationID, maxOpenAlerts)
	}
}

func TestUnreadableStateIsReplaced(t *testing.T) {
	p := newProcessor(t, WithRules(rules.Seed()))
	out, err := p.handle(obsRecord(readTestdata(t, "observation_hr_envelope.json")), nil, []byte("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	if !out.StateReset || len(out.Alerts) != 1 || out.State == nil {
		t.Fatalf("outcome = %+v", out)
	}
}

func TestWithdrawnWithoutAlertEmitsNothing(t *testing.T) {
	p := newProcessor(t)
	for _, status := range []string{"entered-in-error", "cancelled", "registered"} {
		t.Run(status, func(t *testing.T) {
			out, err := p.handle(obsRecord(observationJSON(t, func(o map[string]any) { o["status"] = status; withValue(300)(o) })), nil, nil)
			if err != nil || len(out.Records) != 0 || out.State != nil {
				t.Fatalf("records %d, state %s, err %v", len(out.Records), out.State, err)
			}
		})
	}
}

func TestCorrelationIDInAlerts(t *testing.T) {
	p := newProcessor(t)
	env := readTestdata(t, "observation_hr_envelope.json") // metadata.correlationId corr-0001
	bare := observationJSON(t, withValue(130))
	tests := []struct {
		name string
		r    *kgo.Record
		want string
	}{
		{name: "header", r: obsRecord(env, kgo.RecordHeader{Key: "correlation-id", Value: []byte("h-1")}), want: "h-1"},
		{name: "metadata", r: obsRecord(env), want: "corr-0001"},
		{name: "derived", r: obsRecord(bare), want: envelope.DerivedCorrelationID(TopicObservations, 2, 1234)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.handle(tt.r, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				if !strings.Contains(string(r.Value), `"correlationId":"`+tt.want+`"`) {
					t.Errorf("%s value lacks correlation id %s: %s", r.Topic, tt.want, r.Value)
				}
				if got := string(r.Headers[0].Value); r.Headers[0].Key != "correlation-id" || got != tt.want {
					t.Errorf("%s header = %s, want %s", r.Topic, got, tt.want)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	set := metrics.NewSet()
	p := newProcessor(t, WithMetrics(set), WithRules(rules.Pack{Rules: []rules.Rule{
		{ID: "crit", Code: "8867-4", System: rules.LOINC, Unit: "/min", Comparator: rules.GT, Threshold: 0, Severity: rules.SeverityCritical, Description: "d"},
		{ID: "low", Code: "8867-4", System: rules.LOINC, Unit: "/min", Comparator: rules.GT, Threshold: 0, Severity: rules.SeverityLow, Description: "d"},
	}}))
	out, err := p.handle(obsRecord(readTestdata(t, "observation_hr_envelope.json")), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.count(&out)
	dup, err := p.handle(obsRecord(readTestdata(t, "observation_hr_envelope.json")), nil, out.State)
	if err != nil {
		t.Fatal(err)
	}
	p.count(&dup)
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, want := range []string{
		`carepipe_alerts_alerts_total{pipeline="alerts",severity="critical"} 1`,
		`carepipe_alerts_alerts_total{pipeline="alerts",severity="low"} 1`,
		`carepipe_alerts_alerts_total{pipeline="alerts",severity="high"} 0`,
		`carepipe_alerts_notifications_total{pipeline="alerts",channel="sms"} 1`,
		`carepipe_alerts_notifications_total{pipeline="alerts",channel="mobile"} 1`,
		`carepipe_alerts_duplicates_total{pipeline="alerts"} 2`,
		`carepipe_alerts_repartitioned_total{pipeline="alerts"} 0`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "pat-1") || strings.Contains(b.String(), "obs-hr-1") {
		t.Error("metrics carry patient data")
	}
}

func TestNewAndSpec(t *testing.T) {
	t.Run("invalid options", func(t *testing.T) {
		for name, opts := range map[string][]Option{
			"bad rules":      {WithRules(rules.Pack{Rules: []rules.Rule{{ID: "x"}}})},
			"empty rules":    {WithRules(rules.Pack{})},
			"zero max bytes": {WithMaxRecordBytes(0)},
		} {
			if _, err := New(opts...); err == nil {
				t.Errorf("%s: New succeeded", name)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		p, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if p.m.duplicates == nil || p.maxRecordBytes != 256<<10 || !reflect.DeepEqual(rules.Pack{Rules: p.rules.rules, NEWS2: p.rules.news2}, rules.Default()) {
			t.Errorf("defaults: %+v", p)
		}
	})
	t.Run("spec", func(t *testing.T) {
		s := newProcessor(t).Spec()
		if s.Name != "alerts" || s.Group != "clinical-alerts-stream-processor" || s.ErrorTopic != "clinical.alerts.errors" ||
			!slices.Equal(s.Inputs, []string{"fhir.Observation"}) ||
			!slices.Equal(s.Outputs, []string{"clinical.alerts", "clinical.notifications.history", "notifications.mobile", "notifications.email", "notifications.sms"}) ||
			!slices.Equal(s.Stores, []string{"patient-alerts"}) || !slices.Equal(s.Repartitions, []string{"observations-by-patient"}) ||
			len(s.GlobalTables) != 1 || s.GlobalTables[0].Topic != "fhir.Patient" || s.GlobalTables[0].Decode == nil || s.Process == nil {
			t.Errorf("spec = %+v", s)
		}
		var _ pipeline.ProcessFunc = s.Process
	})
}

// TestAlertValuesShareOneBuffer: an alert's records (the alert, its
// history record, its notifications) are written into one buffer sized
// for them all, with no regrowth: each value starts where the one before
// it ends. Notifications carry the patient's name and care team, so
// this is the largest record set the fixtures make.
func TestAlertValuesShareOneBuffer(t *testing.T) {
	p := newProcessor(t)
	out, err := p.handle(obsRecord(readTestdata(t, "observation_hr_envelope.json")), patients(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	groups := 0
	for i := 0; i < len(out.Records); {
		if out.Records[i].Topic != TopicAlerts {
			t.Fatalf("record %d is on %s, not the start of an alert's records", i, out.Records[i].Topic)
		}
		groups++
		end := uintptr(unsafe.Pointer(unsafe.SliceData(out.Records[i].Value))) + uintptr(len(out.Records[i].Value))
		for i++; i < len(out.Records) && out.Records[i].Topic != TopicAlerts; i++ {
			v := out.Records[i].Value
			if got := uintptr(unsafe.Pointer(unsafe.SliceData(v))); got != end {
				t.Errorf("record %d (%s) is not where the previous value ends: the buffer was regrown", i, out.Records[i].Topic)
			}
			end += uintptr(len(v))
		}
	}
	if groups != 2 {
		t.Fatalf("%d alerts, want 2 (heart-rate-high and NEWS2)", groups)
	}
}
