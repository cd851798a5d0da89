package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// heartRate is a bare FHIR R4 heart-rate observation of patient pid,
// keyed by pid, at 08:00 plus minutes of event time.
func heartRate(pid, id, status string, value float64, minutes int) *kgo.Record {
	at := time.Date(2025, 3, 1, 8, minutes, 0, 0, time.UTC).Format(time.RFC3339)
	v := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":%q,`+
		`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},`+
		`"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,`+
		`"valueQuantity":{"value":%g,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`,
		id, status, pid, at, value)
	return &kgo.Record{Topic: alerts.TopicObservations, Key: []byte(pid), Value: []byte(v)}
}

// byPatient groups records' decoded values by key, in log order (one
// patient's records share a partition, so log order is their order).
func byPatient[T any](t *testing.T, recs []*kgo.Record) map[string][]T {
	t.Helper()
	out := map[string][]T{}
	for _, r := range recs {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		out[string(r.Key)] = append(out[string(r.Key)], v)
	}
	return out
}

// Issue 3: a preliminary result made final, amended, then corrected below
// the threshold, and another observation entered in error, produce per
// patient, in order, the alert versions raised, replaced and retracted;
// with the pipeline on the runtime, exactly once.
func TestAlertsAmendedAndEnteredInErrorInOrder(t *testing.T) {
	w := newAlertsWorld(t)
	w.rules = rules.Default()
	in := w.start("node-1")
	const patients = 24
	var recs []*kgo.Record
	for i := range patients {
		pid := fmt.Sprintf("pat-%03d", i)
		a, b := "obs-a-"+pid, "obs-b-"+pid
		recs = append(recs,
			heartRate(pid, a, "preliminary", 125, 0),
			heartRate(pid, a, "final", 125, 0),
			heartRate(pid, a, "amended", 128, 0),
			heartRate(pid, a, "corrected", 110, 0),
			// 20 minutes on: past the first alert's suppression window.
			heartRate(pid, b, "final", 124, 20),
			heartRate(pid, b, "entered-in-error", 124, 20),
		)
	}
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}

	type version struct {
		id      string
		status  string
		version int64
	}
	want := func(pid string) []version {
		a, b := "obs-a-"+pid+"-heart-rate-high", "obs-b-"+pid+"-heart-rate-high"
		return []version{
			{a, alerts.StatusProvisional, 1}, {a, alerts.StatusActive, 2}, {a, alerts.StatusActive, 3}, {a, alerts.StatusRetracted, 4},
			{b, alerts.StatusActive, 1}, {b, alerts.StatusRetracted, 2},
		}
	}
	got := byPatient[alerts.Alert](t, w.readAll(alerts.TopicAlerts))
	if len(got) != patients {
		t.Fatalf("alerts for %d patients, want %d", len(got), patients)
	}
	for pid, as := range got {
		var vs []version
		for _, a := range as {
			vs = append(vs, version{a.AlertID, a.Status, a.Version})
		}
		if !slices.Equal(vs, want(pid)) {
			t.Errorf("%s: alert versions\n%v\nwant\n%v", pid, vs, want(pid))
		}
	}
	// Retractions are notified where the alerts were: raised and
	// retracted, twice each per patient and channel; replacements are not.
	notes := byPatient[alerts.Notification](t, w.readAll(alerts.TopicMobile))
	for pid, ns := range notes {
		var events []string
		for _, n := range ns {
			events = append(events, n.AlertID[:5]+" "+n.Event)
		}
		if want := []string{"obs-a raised", "obs-a retracted", "obs-b raised", "obs-b retracted"}; !slices.Equal(events, want) {
			t.Errorf("%s: mobile notifications %v, want %v", pid, events, want)
		}
	}
}

// Issue 3: a suppression window opened before a restart holds after it:
// the state (open alerts, their windows) is restored from the changelog,
// so a repeat inside the window is counted, not notified.
func TestAlertsSuppressionHoldsAcrossRestart(t *testing.T) {
	w := newAlertsWorld(t)
	w.rules = rules.Default()
	const patients = 24
	pid := func(i int) string { return fmt.Sprintf("pat-%03d", i) }

	first := w.start("node-1")
	var recs []*kgo.Record
	for i := range patients {
		recs = append(recs, heartRate(pid(i), "obs-1-"+pid(i), "final", 130, 0))
	}
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	second := w.start("node-1")
	recs = recs[:0]
	for i := range patients {
		recs = append(recs,
			heartRate(pid(i), "obs-2-"+pid(i), "final", 132, 5),  // inside the 15-minute window
			heartRate(pid(i), "obs-3-"+pid(i), "final", 131, 16), // past it
		)
	}
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}

	alertsBy := byPatient[alerts.Alert](t, w.readAll(alerts.TopicAlerts))
	history := byPatient[alerts.HistoryRecord](t, w.readAll(alerts.TopicHistory))
	for i := range patients {
		p := pid(i)
		var ids []string
		for _, a := range alertsBy[p] {
			if a.RuleID == "heart-rate-high" {
				ids = append(ids, a.ObservationID)
			}
		}
		if want := []string{"obs-1-" + p, "obs-3-" + p}; !slices.Equal(ids, want) {
			t.Errorf("%s: heart-rate-high alerts for %v, want %v (the repeat after the restart suppressed)", p, ids, want)
		}
		var suppressed []alerts.HistoryRecord
		for _, h := range history[p] {
			// Heart rates of 131 and 132 also score 3 in NEWS2, whose own
			// alert has its own window: only heart-rate-high is asserted.
			if h.Event == alerts.EventSuppressed && strings.HasSuffix(h.AlertID, "-heart-rate-high") {
				suppressed = append(suppressed, h)
			}
		}
		if len(suppressed) != 1 || suppressed[0].AlertID != "obs-1-"+p+"-heart-rate-high" || suppressed[0].SuppressedCount != 1 ||
			suppressed[0].ObservationID != "obs-2-"+p {
			t.Errorf("%s: suppressed history %+v, want obs-2 counted once on obs-1's alert", p, suppressed)
		}
	}
}
