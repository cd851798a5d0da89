package alerts

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// fixture returns a testdata observation with mutate applied to its
// decoded form.
func fixture(t testing.TB, name string, mutate func(o map[string]any)) []byte {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(readTestdata(t, name), &o); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(o)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vitalObservation is a bare vital-sign observation of pat-2 at 20:00 plus minutes.
func vitalObservation(t testing.TB, id, code string, value float64, unit string, minutes int) []byte {
	return fixture(t, "observation_hr_normal_bare.json", func(o map[string]any) {
		o["id"] = id
		o["subject"] = map[string]any{"reference": "Patient/pat-2"}
		o["code"] = map[string]any{"coding": []any{map[string]any{"system": rules.LOINC, "code": code}}}
		o["valueQuantity"] = map[string]any{"value": value, "unit": unit, "system": rules.UCUM, "code": unit}
		o["effectiveDateTime"] = time.Date(2024, 4, 5, 20, minutes, 0, 0, time.UTC).Format(time.RFC3339)
		delete(o, "issued")
	})
}

// hr is the bare heart-rate fixture (pat-1) as observation id with status,
// value and effective time 19:00 plus minutes.
func hr(t testing.TB, id, status string, value float64, minutes int) []byte {
	return fixture(t, "observation_hr_normal_bare.json", func(o map[string]any) {
		o["id"], o["status"] = id, status
		withValue(value)(o)
		o["effectiveDateTime"] = time.Date(2024, 4, 5, 19, minutes, 0, 0, time.UTC).Format(time.RFC3339)
		delete(o, "issued")
	})
}

type step struct {
	name  string
	value []byte
}

// run handles steps in order against one patient state per patient,
// with the default rule pack, and returns each step's outcome.
func run(t *testing.T, p *Processor, steps []step) []outcome {
	t.Helper()
	state := map[string][]byte{}
	var outs []outcome
	for _, s := range steps {
		var obs observation
		if _, err := decodeObservation(s.value, &obs, nil); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		out, err := p.handle(obsRecord(s.value), patients(t), state[obs.PatientID])
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if out.State != nil {
			state[obs.PatientID] = out.State
		}
		outs = append(outs, out)
	}
	return outs
}

// alertsOf decodes the alert records of an outcome.
func alertsOf(t testing.TB, out outcome) []Alert {
	t.Helper()
	var as []Alert
	for _, r := range out.Records {
		if r.Topic != TopicAlerts {
			continue
		}
		var a Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	return as
}

func historyOf(t testing.TB, out outcome) []HistoryRecord {
	t.Helper()
	var hs []HistoryRecord
	for _, r := range out.Records {
		if r.Topic != TopicHistory {
			continue
		}
		var h HistoryRecord
		if err := json.Unmarshal(r.Value, &h); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

func topicsOf(out outcome) []string {
	var ts []string
	for _, r := range out.Records {
		ts = append(ts, r.Topic)
	}
	return ts
}

// TestGolden runs real-shaped FHIR R4 observations, alone or in sequences
// for one patient, through the default rule pack and compares every
// record emitted with testdata/golden/<name>.golden.
func TestGolden(t *testing.T) {
	p := newProcessor(t)
	cases := []struct {
		name  string
		steps []step
	}{
		{"high_enriched_envelope", []step{{"envelope, 134/min", readTestdata(t, "observation_hr_envelope.json")}}},
		{"non_alerting", []step{{"72/min", readTestdata(t, "observation_hr_normal_bare.json")}}},
		{"bp_panel_component", []step{{"panel, systolic 186 in a component", readTestdata(t, "observation_bp_panel.json")}}},
		{"glucose_mmol_converted", []step{{"3.2 mmol/L", readTestdata(t, "observation_glucose_mmol.json")}}},
		{"temperature_fahrenheit_converted", []step{{"104 [degF]", readTestdata(t, "observation_temperature_degf.json")}}},
		{"data_absent_reason", []step{{"heart rate not performed", readTestdata(t, "observation_hr_data_absent.json")}}},
		{"status_lifecycle", []step{
			{"preliminary 125", hr(t, "obs-life", "preliminary", 125, 0)},
			{"final 125", hr(t, "obs-life", "final", 125, 0)},
			{"amended 128", hr(t, "obs-life", "amended", 128, 0)},
			{"corrected 118, below the threshold", hr(t, "obs-life", "corrected", 118, 0)},
		}},
		{"entered_in_error", []step{
			{"final 125", hr(t, "obs-eie", "final", 125, 0)},
			{"entered-in-error", hr(t, "obs-eie", "entered-in-error", 125, 0)},
			{"entered-in-error again", hr(t, "obs-eie", "entered-in-error", 125, 0)},
		}},
		{"cancelled", []step{
			{"final 125", hr(t, "obs-can", "final", 125, 0)},
			{"cancelled", hr(t, "obs-can", "cancelled", 125, 0)},
		}},
		{"registered", []step{{"registered", hr(t, "obs-reg", "registered", 125, 0)}}},
		{"suppression_window", []step{
			{"125 at 19:00", hr(t, "obs-s1", "final", 125, 0)},
			{"126 at 19:05, inside the window", hr(t, "obs-s2", "final", 126, 5)},
			{"the 19:05 observation re-sent", hr(t, "obs-s2", "final", 126, 5)},
			{"127 at 19:16, past the window", hr(t, "obs-s3", "final", 127, 16)},
		}},
		{"news2_escalation", []step{
			{"respiratory rate 26 (3)", vitalObservation(t, "obs-n1", "9279-1", 26, "/min", 0)},
			{"SpO2 93 (2): aggregate 5, up from low-medium to medium response, notified", vitalObservation(t, "obs-n2", "59408-5", 93, "%", 1)},
			{"temperature 38.5 (1): aggregate 6, still medium, suppressed", vitalObservation(t, "obs-n3", "8310-5", 38.5, "Cel", 2)},
			{"responds to voice (3): aggregate 9, escalates", readTestdata(t, "observation_acvpu_voice.json")},
			{"pulse 115 (2): aggregate 11, suppressed", vitalObservation(t, "obs-n5", "8867-4", 115, "/min", 4)},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outs := run(t, p, tc.steps)
			var b bytes.Buffer
			for i, out := range outs {
				fmt.Fprintf(&b, "# step %d: %s\n", i+1, tc.steps[i].name)
				b.Write(render(t, out))
			}
			got := b.Bytes()
			path := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
			}
			// A replay of the steps from no state yields identical records.
			var again bytes.Buffer
			for i, out := range run(t, p, tc.steps) {
				fmt.Fprintf(&again, "# step %d: %s\n", i+1, tc.steps[i].name)
				again.Write(render(t, out))
			}
			if !bytes.Equal(again.Bytes(), got) {
				t.Error("a second run produced different records")
			}
		})
	}
}

func TestStatusLifecycle(t *testing.T) {
	p := newProcessor(t)
	outs := run(t, p, []step{
		{"preliminary", hr(t, "o", "preliminary", 125, 0)},
		{"final", hr(t, "o", "final", 125, 0)},
		{"amended, still above", hr(t, "o", "amended", 128, 0)},
		{"amended again, same", hr(t, "o", "amended", 128, 0)},
		{"corrected below", hr(t, "o", "corrected", 118, 0)},
		{"corrected below again", hr(t, "o", "corrected", 118, 0)},
	})
	want := []struct {
		status  string
		version int64
		topics  []string
	}{
		{StatusProvisional, 1, []string{TopicAlerts, TopicHistory, TopicMobile, TopicEmail}},
		{StatusActive, 2, []string{TopicAlerts, TopicHistory}},
		{StatusActive, 3, []string{TopicAlerts, TopicHistory}},
		{},
		{StatusRetracted, 4, []string{TopicAlerts, TopicHistory, TopicMobile, TopicEmail}},
		{},
	}
	for i, w := range want {
		as := alertsOf(t, outs[i])
		if w.status == "" {
			if len(outs[i].Records) != 0 {
				t.Errorf("step %d: emitted %v, want nothing", i+1, topicsOf(outs[i]))
			}
			continue
		}
		if len(as) != 1 || as[0].AlertID != "o-heart-rate-high" || as[0].Status != w.status || as[0].Version != w.version {
			t.Fatalf("step %d: alerts %+v, want o-heart-rate-high %s v%d", i+1, as, w.status, w.version)
		}
		if got := topicsOf(outs[i]); !slices.Equal(got, w.topics) {
			t.Errorf("step %d: topics %v, want %v", i+1, got, w.topics)
		}
	}
	if v := alertsOf(t, outs[2])[0].Value; v != 128 {
		t.Errorf("amended version carries value %v, want 128", v)
	}
	for _, r := range outs[4].Records[2:] {
		var n Notification
		if err := json.Unmarshal(r.Value, &n); err != nil {
			t.Fatal(err)
		}
		if n.Event != EventRetracted || n.NotificationID != "o-heart-rate-high-"+string(n.Channel)+"-v4" {
			t.Errorf("retraction notice %+v", n)
		}
	}
}

func TestSuppression(t *testing.T) {
	p := newProcessor(t)
	outs := run(t, p, []step{
		{"first", hr(t, "s1", "final", 125, 0)},
		{"repeat at +5 min", hr(t, "s2", "final", 130, 5)},
		{"repeat at +14 min", hr(t, "s3", "final", 121, 14)},
		{"repeat re-sent", hr(t, "s3", "final", 121, 14)},
		{"repeat entered in error", hr(t, "s2", "entered-in-error", 130, 5)},
		{"repeat amended below the threshold", hr(t, "s3", "amended", 100, 14)},
		{"past the window", hr(t, "s4", "final", 125, 15)},
	})
	hs := historyOf(t, outs[1])
	if len(alertsOf(t, outs[1])) != 0 || len(hs) != 1 || hs[0].Event != EventSuppressed || hs[0].AlertID != "s1-heart-rate-high" ||
		hs[0].ObservationID != "s2" || hs[0].SuppressedCount != 1 || len(hs[0].Channels) != 0 {
		t.Errorf("repeat: topics %v history %+v, want one suppressed history record on s1's alert", topicsOf(outs[1]), hs)
	}
	if hs := historyOf(t, outs[2]); len(hs) != 1 || hs[0].SuppressedCount != 2 || outs[2].Suppressed != 1 {
		t.Errorf("second repeat: history %+v", hs)
	}
	if len(outs[3].Records) != 0 || outs[3].Duplicates != 1 {
		t.Errorf("re-sent repeat: %v, %d duplicates; want nothing and a duplicate", topicsOf(outs[3]), outs[3].Duplicates)
	}
	if len(outs[4].Records) != 0 || outs[4].State == nil {
		t.Errorf("withdrawn repeat: %v; want no record, a state change", topicsOf(outs[4]))
	}
	st, err := readState(outs[4].State)
	if err != nil || st.Open[0].Suppressed != 1 {
		t.Errorf("after the withdrawn repeat: %+v, %v; want 1 suppressed", st.Open, err)
	}
	if st, err := readState(outs[5].State); err != nil || len(outs[5].Records) != 0 || st.Open[0].Suppressed != 0 {
		t.Errorf("amended repeat: %v, state %+v, %v; want no record and nothing suppressed", topicsOf(outs[5]), st.Open, err)
	}
	if as := alertsOf(t, outs[6]); len(as) != 1 || as[0].AlertID != "s4-heart-rate-high" {
		t.Errorf("past the window: %+v, want a new alert", as)
	}

	t.Run("off", func(t *testing.T) {
		p := newProcessor(t, WithRules(rules.Seed()))
		outs := run(t, p, []step{{"first", hr(t, "s1", "final", 125, 0)}, {"repeat", hr(t, "s2", "final", 130, 1)}})
		if len(alertsOf(t, outs[1])) != 1 {
			t.Errorf("without a window, a repeat alerts: %v", topicsOf(outs[1]))
		}
	})
}

func TestNEWS2(t *testing.T) {
	p := newProcessor(t)
	t.Run("escalation passes the window, sub-scores listed", func(t *testing.T) {
		outs := run(t, p, []step{
			{"RR 26", vitalObservation(t, "n1", "9279-1", 26, "/min", 0)},
			{"SpO2 93", vitalObservation(t, "n2", "59408-5", 93, "%", 1)},
			{"SBP 88", vitalObservation(t, "n3", "8480-6", 88, "mm[Hg]", 2)},
		})
		first := alertsOf(t, outs[0])
		if len(first) != 1 || first[0].RuleID != "news2" || first[0].Severity != rules.SeverityHigh || first[0].NEWS2.Trigger != "single-parameter" {
			t.Fatalf("RR 26: %+v, want a high single-parameter news2 alert", first)
		}
		// Aggregate 5 is the RCP's medium clinical response, above the
		// single red parameter's low-medium: notified although both are
		// labelled high.
		if as := alertsOf(t, outs[1]); outs[1].Suppressed != 0 || len(as) != 1 || as[0].Severity != rules.SeverityHigh || as[0].NEWS2.Trigger != "urgent" ||
			!slices.Contains(topicsOf(outs[1]), TopicMobile) {
			t.Errorf("aggregate 5 inside the window: %v, want a notified urgent alert", topicsOf(outs[1]))
		}
		// SBP 88 scores 3 and fires systolic-bp-low; the aggregate 8 is an
		// emergency, more severe than the open high alert.
		var news []Alert
		for _, a := range alertsOf(t, outs[2]) {
			if a.RuleID == "news2" {
				news = append(news, a)
			}
		}
		if len(news) != 1 || news[0].Severity != rules.SeverityCritical || news[0].Value != 8 || news[0].NEWS2.Trigger != "emergency" {
			t.Fatalf("SBP 88: news2 %+v, want critical aggregate 8", news)
		}
		d := news[0].NEWS2
		want := []NEWS2SubScore{{"respiratoryRate", 26, 3}, {"spo2", 93, 2}, {"systolicBP", 88, 3}}
		if !slices.Equal(d.SubScores, want) || !slices.Equal(d.Missing, []string{"supplementalOxygen", "pulse", "consciousness", "temperature"}) {
			t.Errorf("detail %+v, want sub-scores %v", d, want)
		}
	})
	t.Run("stale parameters do not count", func(t *testing.T) {
		outs := run(t, p, []step{
			{"SpO2 93 at 20:00", vitalObservation(t, "f1", "59408-5", 93, "%", 0)},
			{"temperature 38.5, 5 hours later", fixture(t, "observation_hr_normal_bare.json", func(o map[string]any) {
				o["id"], o["subject"] = "f2", map[string]any{"reference": "Patient/pat-2"}
				o["code"] = map[string]any{"coding": []any{map[string]any{"system": rules.LOINC, "code": "8310-5"}}}
				o["valueQuantity"] = map[string]any{"value": 39.2, "unit": "Cel", "system": rules.UCUM, "code": "Cel"}
				o["effectiveDateTime"] = "2024-04-06T01:00:00Z"
			})},
			{"SpO2 91 at 01:01", fixture(t, "observation_hr_normal_bare.json", func(o map[string]any) {
				o["id"], o["subject"] = "f3", map[string]any{"reference": "Patient/pat-2"}
				o["code"] = map[string]any{"coding": []any{map[string]any{"system": rules.LOINC, "code": "2708-6"}}}
				o["valueQuantity"] = map[string]any{"value": 91, "unit": "%", "system": rules.UCUM, "code": "%"}
				o["effectiveDateTime"] = "2024-04-06T01:01:00Z"
			})},
		})
		if len(outs[0].Records)+len(outs[1].Records) != 0 {
			t.Errorf("SpO2 93 (2) then, 5 h later, temperature 39.2 (2) alone: %v %v, want no alert", topicsOf(outs[0]), topicsOf(outs[1]))
		}
		as := alertsOf(t, outs[2])
		if len(as) != 1 || as[0].NEWS2.Score != 5 || as[0].NEWS2.Trigger != "urgent" {
			t.Errorf("SpO2 91 (3) with temperature 39.2 (2) fresh: %+v, want aggregate 5", as)
		}
	})
	t.Run("a withdrawn reading retracts its alert and leaves the score", func(t *testing.T) {
		outs := run(t, p, []step{
			{"RR 26", vitalObservation(t, "w1", "9279-1", 26, "/min", 0)},
			{"RR 26 entered in error", fixture(t, "observation_hr_normal_bare.json", func(o map[string]any) {
				o["id"], o["status"], o["subject"] = "w1", "entered-in-error", map[string]any{"reference": "Patient/pat-2"}
			})},
			{"SpO2 93 at +20 min", vitalObservation(t, "w2", "59408-5", 93, "%", 20)},
		})
		as := alertsOf(t, outs[1])
		if len(as) != 1 || as[0].AlertID != "w1-news2" || as[0].Status != StatusRetracted {
			t.Fatalf("withdrawn: %+v, want w1-news2 retracted", as)
		}
		if len(outs[2].Records) != 0 {
			t.Errorf("SpO2 93 (2) without the withdrawn RR: %v, want no alert", topicsOf(outs[2]))
		}
	})
	t.Run("unknown consciousness answer is an error record", func(t *testing.T) {
		v := fixture(t, "observation_acvpu_voice.json", func(o map[string]any) {
			o["valueCodeableConcept"] = map[string]any{"coding": []any{map[string]any{"system": rules.LOINC, "code": "LA0000-0"}}}
		})
		if _, err := p.handle(obsRecord(v), nil, nil); errorType(err) != pipeline.TypeInvalid {
			t.Errorf("error %v, want an invalid record", err)
		}
	})
	t.Run("off", func(t *testing.T) {
		p := newProcessor(t, WithRules(rules.Seed()))
		if outs := run(t, p, []step{{"RR 26", vitalObservation(t, "x1", "9279-1", 26, "/min", 0)}}); len(outs[0].Records) != 0 || outs[0].State != nil {
			t.Errorf("NEWS2 off: %v", topicsOf(outs[0]))
		}
	})
}

func TestUnconvertibleUnitIsAnErrorRecord(t *testing.T) {
	p := newProcessor(t)
	v := fixture(t, "observation_glucose_mmol.json", func(o map[string]any) {
		o["valueQuantity"] = map[string]any{"value": 3.2, "unit": "mmol/l", "system": rules.UCUM, "code": "mmol/kg"}
	})
	_, err := p.handle(obsRecord(v), nil, nil)
	if errorType(err) != pipeline.TypeInvalid {
		t.Fatalf("error %v, want an invalid record", err)
	}
}

func TestOpenAlertsPastTheHorizonLeave(t *testing.T) {
	p := newProcessor(t)
	outs := run(t, p, []step{
		{"alert at 19:00", hr(t, "old", "final", 125, 0)},
		{"alert 25 hours later", hr(t, "new", "final", 125, 25*60)},
	})
	st, err := readState(outs[1].State)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Open) != 1 || st.Open[0].ObservationID != "new" {
		t.Errorf("open alerts %+v, want only the new one", st.Open)
	}
}

func TestMentions(t *testing.T) {
	state := appendState(nil, &patientState{
		Seq:    1,
		Open:   []openAlert{{AlertID: "obs-12-hr", ObservationID: "obs-12", SuppressedIDs: []string{"obs-3"}}},
		Vitals: []storedVital{{Vital: vitalPulse, ObservationID: "obs-7"}},
	})
	for id, want := range map[string]bool{
		"obs-12": true, "obs-3": true, "obs-7": true, "obs-1": false, "obs-12-hr": true, "12": false, "bs-12": false, "": false,
	} {
		if got := mentions(state, id); got != want {
			t.Errorf("mentions(%q) = %v, want %v", id, got, want)
		}
	}
	if mentions(nil, "x") {
		t.Error("an empty state mentions nothing")
	}
}

func TestLifecycleMetrics(t *testing.T) {
	set := metrics.NewSet()
	p := newProcessor(t, WithMetrics(set))
	for _, out := range run(t, p, []step{
		{"alert", hr(t, "m1", "final", 125, 0)},
		{"suppressed repeat", hr(t, "m2", "final", 126, 1)},
		{"amended", hr(t, "m1", "amended", 127, 0)},
		{"retracted", hr(t, "m1", "entered-in-error", 127, 0)},
		{"NEWS2 single parameter", vitalObservation(t, "m3", "9279-1", 26, "/min", 0)},
	}) {
		p.count(&out)
	}
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, want := range []string{
		`carepipe_alerts_alerts_total{pipeline="alerts",severity="high"} 2`,
		`carepipe_alerts_suppressed_total{pipeline="alerts"} 1`,
		`carepipe_alerts_replaced_total{pipeline="alerts"} 1`,
		`carepipe_alerts_retracted_total{pipeline="alerts"} 1`,
		`carepipe_alerts_news2_total{pipeline="alerts"} 1`,
		`carepipe_alerts_notifications_total{pipeline="alerts",channel="mobile"} 3`,
	} {
		if !bytes.Contains(b.Bytes(), []byte(want+"\n")) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

// TestNEWS2ResponseLevelEscalation: a move to a higher NEWS2 clinical
// response level is notified at once, inside the news2 rule's 15-minute
// suppression window and under an unchanged severity label. Levels are the
// RCP's (NEWS2, 2017, Chart 2 and the clinical response table): low =
// aggregate 1–4, low–medium = a single parameter scoring 3, medium =
// aggregate 5–6, high = aggregate 7 or more. Sub-scores are Chart 1's:
// respiratory rate 26 (≥25) 3; SpO2 93 (92–93) 2, 96 (≥96) 0; temperature
// 38.5 (38.1–39.0) 1; systolic 88 (≤90) 3; pulse 115 (111–130) 2, 95
// (91–110) 1.
func TestNEWS2ResponseLevelEscalation(t *testing.T) {
	amended := func(b []byte, value float64) []byte {
		var o map[string]any
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		o["status"] = "amended"
		o["valueQuantity"].(map[string]any)["value"] = value
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// want is what one step does to news2 alerts: the history event ("" for
	// none), whether it notifies, and the aggregate on the alert version.
	type want struct {
		event    string
		notified bool
		score    float64
	}
	raised := func(score float64) want { return want{EventRaised, true, score} }
	suppressed := want{event: EventSuppressed}
	tests := []struct {
		name  string
		steps []step
		want  []want
	}{
		{
			name: "single red parameter to aggregate 5, both labelled high",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "a1", "9279-1", 26, "/min", 0)},
				{"SpO2 93: 5, medium", vitalObservation(t, "a2", "59408-5", 93, "%", 1)},
			},
			want: []want{raised(3), raised(5)},
		},
		{
			name: "aggregate 5 to 6 stays medium",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "b1", "9279-1", 26, "/min", 0)},
				{"SpO2 93: 5, medium", vitalObservation(t, "b2", "59408-5", 93, "%", 1)},
				{"temperature 38.5: 6, medium", vitalObservation(t, "b3", "8310-5", 38.5, "Cel", 2)},
			},
			want: []want{raised(3), raised(5), suppressed},
		},
		{
			name: "medium to high",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "c1", "9279-1", 26, "/min", 0)},
				{"SpO2 93: 5, medium", vitalObservation(t, "c2", "59408-5", 93, "%", 1)},
				{"pulse 115: 7, high", vitalObservation(t, "c3", "8867-4", 115, "/min", 2)},
			},
			want: []want{raised(3), raised(5), raised(7)},
		},
		{
			name: "a lower level stays suppressed",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "d1", "9279-1", 26, "/min", 0)},
				{"SpO2 93: 5, medium", vitalObservation(t, "d2", "59408-5", 93, "%", 1)},
				{"SpO2 96: 3, low-medium", vitalObservation(t, "d3", "59408-5", 96, "%", 2)},
			},
			want: []want{raised(3), raised(5), suppressed},
		},
		{
			name: "a counted repeat amended to a higher level",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "e1", "9279-1", 26, "/min", 0)},
				{"SpO2 96: 3, low-medium", vitalObservation(t, "e2", "59408-5", 96, "%", 1)},
				{"SpO2 amended to 93: 5, medium", amended(vitalObservation(t, "e2", "59408-5", 96, "%", 1), 93)},
			},
			want: []want{raised(3), suppressed, raised(5)},
		},
		{
			name: "an alert amended to a higher level",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "f1", "9279-1", 26, "/min", 0)},
				{"pulse 95: 4, low-medium", vitalObservation(t, "f2", "8867-4", 95, "/min", 1)},
				{"SpO2 93: 6, medium", vitalObservation(t, "f3", "59408-5", 93, "%", 2)},
				// Re-scored from the readings it was scored from: 3 + 1 + 3.
				{"SpO2 amended to 85: 7, high", amended(vitalObservation(t, "f3", "59408-5", 93, "%", 2), 85)},
			},
			want: []want{raised(3), suppressed, raised(6), {EventReplaced, true, 7}},
		},
		{
			// The high alert is notified for 20:01 but arrives after the
			// medium one at 20:02: a repeat at high is covered by it, not
			// measured against the latest (medium) alert.
			name: "a repeat at a level notified earlier in event time",
			steps: []step{
				{"RR 26: 3, low-medium", vitalObservation(t, "g1", "9279-1", 26, "/min", 0)},
				{"SpO2 93 at 20:02: 5, medium", vitalObservation(t, "g2", "59408-5", 93, "%", 2)},
				{"SBP 88 at 20:01: 8, high", vitalObservation(t, "g3", "8480-6", 88, "mm[Hg]", 1)},
				{"pulse 95 at 20:03: 9, high", vitalObservation(t, "g4", "8867-4", 95, "/min", 3)},
			},
			want: []want{raised(3), raised(5), raised(8), suppressed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs := run(t, newProcessor(t), tt.steps)
			for i, w := range tt.want {
				var got want
				for _, h := range historyOf(t, outs[i]) {
					if strings.HasSuffix(h.AlertID, "-"+rules.NEWS2ID) {
						got.event, got.notified = h.Event, len(h.Channels) > 0
					}
				}
				for _, a := range alertsOf(t, outs[i]) {
					if a.RuleID == rules.NEWS2ID {
						got.score = a.Value
					}
				}
				if got != w {
					t.Errorf("step %d (%s): news2 %+v, want %+v", i+1, tt.steps[i].name, got, w)
				}
			}
		})
	}
}
