package pipeline_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

// TestHarnessRunsAlerts runs the real clinical alerts pipeline's Process
// through the Harness on the workload's first alerting observation, with
// the workload's patients applied to the patient table: the alert comes
// out on clinical.alerts, keyed by the patient, enriched from the table.
// (An external test: pipeline/alerts imports pipeline.)
func TestHarnessRunsAlerts(t *testing.T) {
	p, err := alerts.New(alerts.WithRules(rules.Seed()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.NewHarness(p.Spec(), pipeline.HarnessClock(fixedClock(time.Date(2025, 1, 1, 1, 0, 0, 0, time.UTC))))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 7, Patients: 20, AlertFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	patients := map[string]sim.PatientTruth{}
	for _, pr := range gen.Patients() {
		if err := h.Apply(alerts.TopicPatients, pr.Record.Key, pr.Record.Value); err != nil {
			t.Fatalf("patient %d: %v", len(patients), err)
		}
		patients[pr.Truth.PatientID] = pr.Truth
	}

	obs := gen.Next()
	if len(obs.Truth.Rules) != 1 || obs.Truth.MisKeyed {
		t.Fatalf("observation 0 trips %d rules (mis-keyed: %v); the test wants one, keyed by patient", len(obs.Truth.Rules), obs.Truth.MisKeyed)
	}
	rec := *obs.Record
	rec.Partition, rec.Offset, rec.Timestamp = 0, 0, time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)
	out, err := h.Process(&rec)
	if err != nil {
		t.Fatal(err)
	}

	var found []alerts.Alert
	for _, o := range out {
		if o.Topic != alerts.TopicAlerts {
			continue
		}
		var a alerts.Alert
		if err := json.Unmarshal(o.Value, &a); err != nil {
			t.Fatalf("alert record does not decode: %v", err)
		}
		if string(o.Key) != obs.Truth.PatientID {
			t.Errorf("alert keyed %q, want the patient id %q", o.Key, obs.Truth.PatientID)
		}
		found = append(found, a)
	}
	want := sim.ExpectedAlertIDs([]sim.ObservationTruth{obs.Truth})
	if len(found) != 1 || found[0].AlertID != want[0] {
		t.Fatalf("alerts %+v of %d records, want one with id %s", found, len(out), want[0])
	}
	a := found[0]
	if a.PatientID != obs.Truth.PatientID || a.ObservationID != obs.Truth.ObservationID {
		t.Errorf("alert for patient %s, observation %s; want %s, %s", a.PatientID, a.ObservationID, obs.Truth.PatientID, obs.Truth.ObservationID)
	}
	// Enrichment read the global table that Apply filled.
	if pt := patients[a.PatientID]; a.PatientName == "" || a.PatientName != pt.Name || a.PatientMRN != pt.MRN {
		t.Errorf("alert enriched as %q / %q, want %q / %q", a.PatientName, a.PatientMRN, pt.Name, pt.MRN)
	}
	if _, ok := h.Store(alerts.StorePatientAlerts).Get(obs.Truth.PatientID); !ok {
		t.Error("the patient's alert state was not stored")
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }
