package scenarios

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// vitalSign is a bare FHIR R4 observation of LOINC code with value in
// unit (UCUM), of patient pid, keyed by pid, at 08:00 plus minutes of
// event time; value nil: a dataAbsentReason instead.
func vitalSign(pid, id, status, code string, value any, unit string, minutes int) *kgo.Record {
	at := time.Date(2025, 3, 1, 8, minutes, 0, 0, time.UTC).Format(time.RFC3339)
	v := fmt.Sprintf(`"valueQuantity":{"value":%v,"unit":%q,"system":"http://unitsofmeasure.org","code":%q}`, value, unit, unit)
	if value == nil {
		v = `"dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"error"}]}`
	}
	return &kgo.Record{Topic: alerts.TopicObservations, Key: []byte(pid), Value: fmt.Appendf(nil,
		`{"resourceType":"Observation","id":%q,"status":%q,"code":{"coding":[{"system":"http://loinc.org","code":%q}]},`+
			`"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,%s}`, id, status, code, pid, at, v)}
}

// Issue 17: NEWS2 follows corrections across a restart. Each patient's
// respiratory rate (3), SpO2 (2) and pulse (2) raise news2 alerts at 3, 5
// and 7, the second and third scored from the first's reading and the
// third from the second's; the runner stops and a new one restores the
// patient-alerts store from its changelog; then the SpO2 observation is
// corrected (each patient one class of correction). Both alerts scored
// from it are re-scored, as a new version of each on clinical.alerts,
// exactly once: replaced with the new score, or for a withdrawn reading
// the SpO2 alert retracted and the pulse alert replaced without it.
func TestAlertsNEWS2FollowsCorrectionsAcrossRestart(t *testing.T) {
	w := newAlertsWorld(t)
	w.rules = rules.Default()
	type class struct {
		name string
		// correction is the SpO2 observation's later version.
		correction func(pid, id string) *kgo.Record
		// older: a newer SpO2 reading (97, scoring 0) arrives before the
		// restart, so the corrected one is no longer in force.
		older bool
		// withdrawn: the correction removes the reading.
		withdrawn bool
	}
	classes := []class{
		{name: "amended", correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "amended", "59408-5", 95, "%", 1) }},
		{name: "corrected", correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "corrected", "59408-5", 95, "%", 1) }},
		{name: "corrected, older than the latest reading", older: true,
			correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "corrected", "59408-5", 95, "%", 1) }},
		{name: "amended to a dataAbsentReason", withdrawn: true,
			correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "amended", "59408-5", nil, "", 1) }},
		{name: "entered in error", withdrawn: true,
			correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "entered-in-error", "59408-5", 93, "%", 1) }},
		{name: "cancelled", withdrawn: true,
			correction: func(pid, id string) *kgo.Record { return vitalSign(pid, id, "cancelled", "59408-5", 93, "%", 1) }},
	}
	const perClass = 4
	pid := func(c, i int) string { return fmt.Sprintf("pat-%d-%d", c, i) }

	first := w.start("node-1")
	var recs []*kgo.Record
	for c, cl := range classes {
		for i := range perClass {
			p := pid(c, i)
			recs = append(recs,
				vitalSign(p, "rr-"+p, "final", "9279-1", 26, "/min", 0),
				vitalSign(p, "spo2-"+p, "final", "59408-5", 93, "%", 1),
				vitalSign(p, "pulse-"+p, "final", "8867-4", 115, "/min", 2),
			)
			if cl.older {
				recs = append(recs, vitalSign(p, "spo2b-"+p, "final", "59408-5", 97, "%", 3))
			}
		}
	}
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	before := len(w.readAll(alerts.TopicAlerts))

	second := w.start("node-1")
	recs = recs[:0]
	for c, cl := range classes {
		for i := range perClass {
			recs = append(recs, cl.correction(pid(c, i), "spo2-"+pid(c, i)))
		}
	}
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if errs := w.readAll(w.spec.ErrorTopic); len(errs) != 0 {
		t.Fatalf("%d records in the error topic, want none", len(errs))
	}

	type version struct {
		id      string
		status  string
		version int64
		score   float64
	}
	all := w.readAll(alerts.TopicAlerts)
	got := byPatient[alerts.Alert](t, all)
	if len(all) == before {
		t.Fatal("no alert versions after the restart")
	}
	for c, cl := range classes {
		for i := range perClass {
			p := pid(c, i)
			rr, spo2, pulse := "rr-"+p+"-news2", "spo2-"+p+"-news2", "pulse-"+p+"-news2"
			want := []version{{rr, alerts.StatusActive, 1, 3}, {spo2, alerts.StatusActive, 1, 5}, {pulse, alerts.StatusActive, 1, 7}}
			if cl.withdrawn {
				want = append(want, version{spo2, alerts.StatusRetracted, 2, 5}, version{pulse, alerts.StatusActive, 2, 5})
			} else {
				want = append(want, version{spo2, alerts.StatusActive, 2, 4}, version{pulse, alerts.StatusActive, 2, 6})
			}
			var vs []version
			for _, a := range got[p] {
				vs = append(vs, version{a.AlertID, a.Status, a.Version, a.Value})
			}
			if !slices.Equal(vs, want) {
				t.Errorf("%s (%s): alert versions\n%v\nwant\n%v", p, cl.name, vs, want)
			}
		}
	}
}
