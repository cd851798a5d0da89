package alerts

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// revised is a later version of observation b: mutate applied to it.
func revised(t testing.TB, b []byte, mutate func(o map[string]any)) []byte {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	mutate(o)
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withStatus is b with status, and value v unless v is nil.
func withStatus(t testing.TB, b []byte, status string, v any) []byte {
	return revised(t, b, func(o map[string]any) {
		o["status"] = status
		if v != nil {
			withValue(v)(o)
		}
	})
}

// dataAbsent is b amended to carry no value, only a dataAbsentReason.
func dataAbsent(t testing.TB, b []byte) []byte {
	return revised(t, b, func(o map[string]any) {
		o["status"] = statusAmended
		delete(o, "valueQuantity")
		o["dataAbsentReason"] = map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}}}
	})
}

// news2Versions lists the news2 alert versions an outcome emits as
// "<alertId> v<version> <status> <score>", with " notified" when its
// history record names channels.
func news2Versions(t testing.TB, out outcome) []string {
	t.Helper()
	notified := map[string]bool{}
	for _, h := range historyOf(t, out) {
		if h.Event == EventSuppressed {
			continue // a repeat's record names the alert that counts it
		}
		notified[fmt.Sprintf("%s v%d", h.AlertID, h.Version)] = len(h.Channels) > 0
	}
	var got []string
	for _, a := range alertsOf(t, out) {
		if a.RuleID != rules.NEWS2ID {
			continue
		}
		s := fmt.Sprintf("%s v%d %s %g", a.AlertID, a.Version, a.Status, a.Value)
		if notified[fmt.Sprintf("%s v%d", a.AlertID, a.Version)] {
			s += " notified"
		}
		got = append(got, s)
	}
	return got
}

// TestNEWS2FollowsCorrections: a later version of an observation that fed
// NEWS2 (amended, corrected, amended to a dataAbsentReason, entered in
// error, cancelled) changes or removes its reading, and every open news2
// alert scored from that reading, raised on it or on another
// observation, is re-scored: retracted when its score no longer calls for
// a response, replaced when the score changed (notified only when it
// escalates), left as it is when the score did not change.
func TestNEWS2FollowsCorrections(t *testing.T) {
	rr := func(id string, v float64, min int) []byte { return vitalObservation(t, id, "9279-1", v, "/min", min) }
	spo2 := func(id string, v float64, min int) []byte { return vitalObservation(t, id, "59408-5", v, "%", min) }
	pulse := func(id string, v float64, min int) []byte { return vitalObservation(t, id, "8867-4", v, "/min", min) }
	// base: RR 26 (3) raises a1-news2 at 3; SpO2 93 (2) raises a2-news2
	// at 5, scored from a1's RR and its own SpO2.
	base := []step{{"RR 26", rr("a1", 26, 0)}, {"SpO2 93", spo2("a2", 93, 1)}}
	baseWant := [][]string{{"a1-news2 v1 active 3 notified"}, {"a2-news2 v1 active 5 notified"}}
	// base3 adds pulse 115 (2): a3-news2 at 7, from all three.
	base3 := append(slices.Clone(base), step{"pulse 115", pulse("a3", 115, 2)})
	base3Want := append(slices.Clone(baseWant), []string{"a3-news2 v1 active 7 notified"})
	tests := []struct {
		name  string
		steps []step
		want  [][]string
		// state, when set, checks the patient's final state.
		state func(t *testing.T, st patientState)
	}{
		{
			name:  "amended below every threshold: its own alert and the one raised on another observation are retracted",
			steps: append(slices.Clone(base), step{"RR amended to 16 (0)", withStatus(t, rr("a1", 26, 0), statusAmended, 16)}),
			want:  append(slices.Clone(baseWant), []string{"a1-news2 v2 retracted 3 notified", "a2-news2 v2 retracted 5 notified"}),
		},
		{
			name:  "corrected to a value of the same score: no new version",
			steps: append(slices.Clone(base), step{"RR corrected to 27 (3)", withStatus(t, rr("a1", 26, 0), statusCorrected, 27)}),
			want:  append(slices.Clone(baseWant), nil),
			state: func(t *testing.T, st patientState) {
				i := st.find("a2-news2")
				if i < 0 || !slices.Contains(st.Open[i].Basis, storedVital{Vital: vitalRespiratoryRate, Value: 27, At: minute(0), ObservationID: "a1"}) {
					t.Errorf("a2-news2 basis %+v, want a1's corrected RR 27", st.Open)
				}
			},
		},
		{
			name:  "corrected: the alert raised on it and one raised on another observation are replaced with their new scores",
			steps: append(slices.Clone(base3), step{"SpO2 corrected to 95 (1)", withStatus(t, spo2("a2", 93, 1), statusCorrected, 95)}),
			want:  append(slices.Clone(base3Want), []string{"a2-news2 v2 active 4", "a3-news2 v2 active 6"}),
		},
		{
			name:  "amended to a dataAbsentReason: its reading leaves",
			steps: append(slices.Clone(base3), step{"SpO2 amended to no value", dataAbsent(t, spo2("a2", 93, 1))}),
			want:  append(slices.Clone(base3Want), []string{"a2-news2 v2 retracted 5 notified", "a3-news2 v2 active 5"}),
			state: noVitalFrom("a2"),
		},
		{
			name:  "entered in error",
			steps: append(slices.Clone(base3), step{"SpO2 entered in error", withStatus(t, spo2("a2", 93, 1), statusEnteredInError, nil)}),
			want:  append(slices.Clone(base3Want), []string{"a2-news2 v2 retracted 5 notified", "a3-news2 v2 active 5"}),
			state: noVitalFrom("a2"),
		},
		{
			name:  "cancelled",
			steps: append(slices.Clone(base3), step{"SpO2 cancelled", withStatus(t, spo2("a2", 93, 1), statusCancelled, nil)}),
			want:  append(slices.Clone(base3Want), []string{"a2-news2 v2 retracted 5 notified", "a3-news2 v2 active 5"}),
			state: noVitalFrom("a2"),
		},
		{
			name: "corrected observation older than the latest reading of its parameter",
			steps: append(slices.Clone(base),
				step{"RR 18 (0) at 20:02: scores 2, no alert", rr("b3", 18, 2)},
				step{"20:00 RR corrected to 20 (0)", withStatus(t, rr("a1", 26, 0), statusCorrected, 20)}),
			want: append(slices.Clone(baseWant), nil, []string{"a1-news2 v2 retracted 3 notified", "a2-news2 v2 retracted 5 notified"}),
			// The reading in force is still the 20:02 one.
			state: func(t *testing.T, st patientState) {
				want := storedVital{Vital: vitalRespiratoryRate, Value: 18, At: minute(2), ObservationID: "b3"}
				if !slices.Contains(st.Vitals, want) {
					t.Errorf("vitals %+v, want %+v in force", st.Vitals, want)
				}
			},
		},
		{
			name: "corrected upward: an alert raised on another observation escalates and is notified",
			steps: []step{
				{"pulse 95 (1)", pulse("p1", 95, 0)},
				{"SpO2 93 (2): 3, low", spo2("s1", 93, 0)},
				{"RR 26 (3) at 20:01: 6, medium", rr("r1", 26, 1)},
				// s1's own score, afresh, is 7 too: a repeat of r1-news2.
				{"SpO2 corrected to 85 (3)", withStatus(t, spo2("s1", 93, 0), statusCorrected, 85)},
			},
			want: [][]string{nil, nil, {"r1-news2 v1 active 6 notified"}, {"r1-news2 v2 active 7 notified"}},
		},
		{
			name: "preliminary made final: the alert raised on it stops being provisional, the other keeps its status",
			steps: []step{
				{"RR 26 preliminary", withStatus(t, rr("q1", 26, 0), statusPreliminary, nil)},
				{"SpO2 93", spo2("q2", 93, 1)},
				{"RR 26 final", rr("q1", 26, 0)},
			},
			want: [][]string{{"q1-news2 v1 provisional 3 notified"}, {"q2-news2 v1 active 5 notified"}, {"q1-news2 v2 active 3"}},
		},
		{
			name:  "the same version again changes nothing",
			steps: append(slices.Clone(base), step{"RR 26 again", rr("a1", 26, 0)}),
			want:  append(slices.Clone(baseWant), nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProcessor(t)
			outs := run(t, p, tt.steps)
			for i, w := range tt.want {
				if got := news2Versions(t, outs[i]); !slices.Equal(got, w) {
					t.Errorf("step %d (%s): news2 versions %q, want %q", i+1, tt.steps[i].name, got, w)
				}
			}
			if tt.state != nil {
				tt.state(t, finalState(t, p, tt.steps))
			}
		})
	}
}

// minute is 20:00 plus m on the vital fixtures' day, in ms since the epoch.
func minute(m int) int64 {
	return (1712347200 + int64(m)*60) * 1000
}

func noVitalFrom(id string) func(t *testing.T, st patientState) {
	return func(t *testing.T, st patientState) {
		if slices.ContainsFunc(st.Vitals, func(v storedVital) bool { return v.ObservationID == id }) {
			t.Errorf("vitals %+v still hold a reading of %s", st.Vitals, id)
		}
	}
}

// finalState is pat-2's state after steps.
func finalState(t *testing.T, p *Processor, steps []step) patientState {
	t.Helper()
	var state []byte
	for _, s := range steps {
		out, err := p.handle(obsRecord(s.value), nil, state)
		if err != nil {
			t.Fatal(err)
		}
		if out.State != nil {
			state = out.State
		}
	}
	st, err := readState(state)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWithdrawingEveryObservationLeavesNoActiveAlert: whatever a patient's
// observations were, in whatever order, amended or corrected however,
// entering every one of them in error leaves every alert, threshold and
// news2, retracted; entering all but one in error leaves active only
// alerts of that one that its latest version supports alone: its
// threshold rules that still fire, and a news2 alert scored from its own
// readings only.
func TestWithdrawingEveryObservationLeavesNoActiveAlert(t *testing.T) {
	p := newProcessor(t)
	kinds := []struct{ code, unit string }{
		{"9279-1", "/min"}, {"59408-5", "%"}, {"8867-4", "/min"}, {"8310-5", "Cel"}, {"8480-6", "mm[Hg]"}, {"2339-0", "mg/dL"},
	}
	ranges := map[string][2]float64{
		"9279-1": {4, 40}, "59408-5": {80, 100}, "8867-4": {30, 150}, "8310-5": {34, 41}, "8480-6": {70, 230}, "2339-0": {40, 200},
	}
	rapid.Check(t, func(rt *rapid.T) {
		type obs struct {
			id          string
			first, last []byte
			// values is the kind's plausible range, for an amended
			// value of the same kind.
			values [2]float64
		}
		var sent []obs
		var steps [][]byte
		for i := range rapid.IntRange(1, 10).Draw(rt, "observations") {
			k := kinds[rapid.IntRange(0, len(kinds)-1).Draw(rt, "kind")]
			r := ranges[k.code]
			id := fmt.Sprintf("o%d", i)
			b := vitalObservation(t, id, k.code, rapid.Float64Range(r[0], r[1]).Draw(rt, "value"), k.unit, rapid.IntRange(0, 59).Draw(rt, "minute"))
			if rapid.Bool().Draw(rt, "preliminary") {
				b = withStatus(t, b, statusPreliminary, nil)
			}
			sent = append(sent, obs{id, b, b, r})
			steps = append(steps, b)
			// Later versions of any observation sent so far.
			for range rapid.IntRange(0, 2).Draw(rt, "corrections") {
				o := &sent[rapid.IntRange(0, len(sent)-1).Draw(rt, "corrected")]
				var c []byte
				switch rapid.IntRange(0, 2).Draw(rt, "correction") {
				case 0:
					c = withStatus(t, o.first, statusAmended, rapid.Float64Range(o.values[0], o.values[1]).Draw(rt, "amended"))
				case 1:
					c = withStatus(t, o.first, statusCorrected, nil)
				default:
					c = dataAbsent(t, o.first)
				}
				o.last = c
				steps = append(steps, c)
			}
		}
		order := rapid.Permutation(sentIndexes(len(sent))).Draw(rt, "withdrawal order")
		keep := -1
		if rapid.Bool().Draw(rt, "keep one") {
			keep, order = order[len(order)-1], order[:len(order)-1]
		}
		for _, i := range order {
			steps = append(steps, withStatus(t, sent[i].first, statusEnteredInError, nil))
		}
		var state []byte
		last := map[string]Alert{}
		for _, b := range steps {
			out, err := p.handle(obsRecord(b), nil, state)
			if err != nil {
				rt.Fatal(err)
			}
			if out.State != nil {
				state = out.State
			}
			for _, a := range alertsOf(t, out) {
				last[a.AlertID] = a
			}
		}
		if keep >= 0 {
			supported := supportedAlerts(t, p, sent[keep].last)
			for id, a := range last {
				if a.Status == StatusRetracted {
					continue
				}
				if w, ok := supported[id]; !ok || w != a.Value {
					rt.Errorf("alert %s is %s with value %g with only %s left; what it supports: %v", id, a.Status, a.Value, sent[keep].id, supported)
				}
			}
			return
		}
		for id, a := range last {
			if a.Status != StatusRetracted {
				rt.Errorf("alert %s is %s after every observation was entered in error", id, a.Status)
			}
		}
		if state == nil {
			return
		}
		if st, err := readState(state); err != nil || len(st.Open) != 0 || len(st.Vitals) != 0 {
			rt.Errorf("state after every observation was entered in error: %+v, %v", st, err)
		}
	})
}

// supportedAlerts are the alerts observation b supports alone, by id,
// with their values: the threshold rules it fires, and news2 scored from
// its readings only if that calls for a response.
func supportedAlerts(t testing.TB, p *Processor, b []byte) map[string]float64 {
	var obs observation
	if _, err := decodeObservation(b, &obs, nil); err != nil {
		t.Fatal(err)
	}
	var f findings
	if err := p.rules.evaluate(&obs, &f); err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for _, fr := range f.firings {
		m[obs.ID+"-"+fr.rule.ID] = fr.value
	}
	var values [numVitals]float64
	var present [numVitals]bool
	for _, r := range f.vitals {
		values[r.vital], present[r.vital] = r.value, true
	}
	cfg := &p.rules.news2
	if n := scoreNEWS2(values, present, cfg.SpO2Scale); news2Response(cfg, n.Total, n.MaxSingle) >= responseLowMedium {
		m[obs.ID+"-"+rules.NEWS2ID] = float64(n.Total)
	}
	return m
}

func sentIndexes(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
