package alerts

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// TestValidFHIRNoRuleReadsIsSkipped: an Observation that is valid FHIR R4
// but carries nothing a rule or NEWS2 reads is skipped and counted per
// reason, not sent to the error topic (which the runtime does for any
// error process returns). Run on the runtime's harness, so that the metric
// is the one process counts.
func TestValidFHIRNoRuleReadsIsSkipped(t *testing.T) {
	// without turns the bare heart-rate fixture into one whose value is
	// the member name with the given JSON value instead of valueQuantity.
	without := func(member string, v any) []byte {
		return observationJSON(t, func(o map[string]any) {
			delete(o, "valueQuantity")
			o[member] = v
		})
	}
	tests := []struct {
		name   string
		source string
		value  []byte
		reason string // "" for an observation that is not skipped
	}{
		{
			name:   "vital-signs panel with hasMember only",
			source: "HL7 FHIR R4 example vitals-panel (http://hl7.org/fhir/R4/observation-example-vitals-panel.json.html, narrative left out); vital-signs profile vs-2",
			value:  bytes.ReplaceAll(readTestdata(t, "observation_vitals_panel.json"), []byte("Patient/example"), []byte("Patient/pat-1")),
			reason: "has-member-only",
		},
		{
			name:   "valueString",
			source: "HL7 FHIR R4 example observation-example-eye-color (valueString \"blue\"); Observation.value[x] string",
			value:  without("valueString", "blue"),
			reason: "value-string",
		},
		{
			name:   "valueBoolean",
			source: "HL7 FHIR R4 Observation.value[x] boolean (http://hl7.org/fhir/R4/observation-definitions.html#Observation.value_x_)",
			value:  without("valueBoolean", true),
			reason: "value-boolean",
		},
		{
			name:   "valueCodeableConcept of a code no rule reads",
			source: "HL7 FHIR R4 Observation.value[x] CodeableConcept; an answer list code as in the ACVPU fixture",
			value: without("valueCodeableConcept", map[string]any{
				"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}},
			}),
			reason: "value-codeable-concept",
		},
		{
			name:   "valueRange",
			source: "HL7 FHIR R4 Observation.value[x] Range (http://hl7.org/fhir/R4/datatypes.html#Range)",
			value: without("valueRange", map[string]any{
				"low":  map[string]any{"value": 60, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
				"high": map[string]any{"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
			}),
			reason: "value-range",
		},
		{
			name:   "valueRatio",
			source: "HL7 FHIR R4 Observation.value[x] Ratio (http://hl7.org/fhir/R4/datatypes.html#Ratio)",
			value: without("valueRatio", map[string]any{
				"numerator":   map[string]any{"value": 1},
				"denominator": map[string]any{"value": 128},
			}),
			reason: "value-ratio",
		},
		{
			name:   "ACVPU answer is read, not skipped",
			source: "LOINC 67775-7 with LA17108-4 (voice): NEWS2 consciousness, testdata/observation_acvpu_voice.json",
			value:  bytes.ReplaceAll(readTestdata(t, "observation_acvpu_voice.json"), []byte("Patient/pat-2"), []byte("Patient/pat-1")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := metrics.NewSet()
			p := newProcessor(t, WithMetrics(set))
			h, err := pipeline.NewHarness(p.Spec())
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Process(obsRecord(tt.value))
			if err != nil {
				t.Fatalf("%s: error %v, want none (source: %s)", tt.name, err, tt.source)
			}
			var b bytes.Buffer
			set.WritePrometheus(&b)
			text := b.String()
			if tt.reason == "" {
				if strings.Contains(text, `carepipe_alerts_skipped_total{pipeline="alerts",reason="value-codeable-concept"} 1`) {
					t.Errorf("a read value was counted as skipped:\n%s", text)
				}
				// NEWS2 took the reading: the patient's state holds it.
				if v, ok := h.Store(StorePatientAlerts).Get("pat-1"); !ok || len(v) == 0 {
					t.Error("the ACVPU reading did not reach the patient's state")
				}
				return
			}
			if len(out) != 0 {
				t.Errorf("a skipped observation emitted %d records", len(out))
			}
			want := `carepipe_alerts_skipped_total{pipeline="alerts",reason="` + tt.reason + `"} 1`
			if !strings.Contains(text, want+"\n") {
				t.Errorf("metrics lack %q (source: %s):\n%s", want, tt.source, text)
			}
		})
	}
}

// TestNoValueAtAllIsStillAnError: without value[x], component, hasMember
// or dataAbsentReason an Observation breaks the vital-signs profile's vs-2
// (http://hl7.org/fhir/R4/observation-vitalsigns.html): for a code a rule
// or NEWS2 reads it stays an error record, through the processor as the
// runtime calls it. FHIR R4's obs-6 asks no value of other results: one
// of a code nothing reads is skipped as no-value (as the R4 example
// observation-example-genetics-brcapat is, in the examples corpus).
func TestNoValueAtAllIsStillAnError(t *testing.T) {
	noValue := func(code string) []byte {
		return observationJSON(t, func(o map[string]any) {
			delete(o, "valueQuantity")
			o["hasMember"] = []any{}
			o["valueString"] = nil
			o["code"] = map[string]any{"coding": []any{map[string]any{"system": rules.LOINC, "code": code}}}
		})
	}
	for _, code := range []string{"8867-4", "8889-8", "67775-7", "2339-0"} {
		t.Run(code, func(t *testing.T) {
			p := newProcessor(t)
			h, err := pipeline.NewHarness(p.Spec())
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Process(obsRecord(noValue(code)))
			if got := errorType(err); got != pipeline.TypeInvalid || !strings.Contains(err.Error(), "no value, components, hasMember or dataAbsentReason") {
				t.Fatalf("LOINC %s without a value: error %v (type %q), want an invalid record", code, err, got)
			}
		})
	}
	t.Run("a code nothing reads", func(t *testing.T) {
		set := metrics.NewSet()
		p := newProcessor(t, WithMetrics(set))
		h, err := pipeline.NewHarness(p.Spec())
		if err != nil {
			t.Fatal(err)
		}
		// LOINC 59041-4, the BRCA test of the R4 genetics-brcapat example.
		if _, err := h.Process(obsRecord(noValue("59041-4"))); err != nil {
			t.Fatalf("error %v, want the observation skipped", err)
		}
		var b bytes.Buffer
		set.WritePrometheus(&b)
		if want := `carepipe_alerts_skipped_total{pipeline="alerts",reason="no-value"} 1`; !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	})
}
