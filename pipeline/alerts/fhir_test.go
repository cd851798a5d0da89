package alerts

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readTestdata returns a fixture's bytes.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// observationJSON returns the bare non-alerting fixture with mutate applied to
// its decoded form.
func observationJSON(t testing.TB, mutate func(o map[string]any)) []byte {
	t.Helper()
	return fixture(t, "observation_hr_normal_bare.json", mutate)
}

func withValue(v any) func(o map[string]any) {
	return func(o map[string]any) { o["valueQuantity"].(map[string]any)["value"] = v }
}

// rawValue replaces valueQuantity.value with raw JSON text.
func rawValue(t testing.TB, raw string) []byte {
	t.Helper()
	b := observationJSON(t, withValue("PLACEHOLDER"))
	return []byte(strings.Replace(string(b), `"PLACEHOLDER"`, raw, 1))
}

func errorType(err error) pipeline.ErrorType {
	var re *pipeline.RecordError
	if errors.As(err, &re) {
		return re.Type
	}
	return ""
}

func TestDecodeObservation(t *testing.T) {
	tests := []struct {
		name      string
		value     []byte
		wantValue float64
		wantPID   string
		wantUnit  string
		wantTime  time.Time
	}{
		{
			name: "envelope", value: readTestdata(t, "observation_hr_envelope.json"),
			wantValue: 134, wantPID: "pat-1", wantUnit: "beats/minute",
			wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC),
		},
		{
			name: "bare", value: readTestdata(t, "observation_hr_normal_bare.json"),
			wantValue: 72, wantPID: "pat-1", wantUnit: "beats/minute",
			wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC),
		},
		{name: "zero is a value", value: observationJSON(t, withValue(0)), wantPID: "pat-1", wantUnit: "beats/minute", wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC)},
		{name: "negative", value: observationJSON(t, withValue(-3.5)), wantValue: -3.5, wantPID: "pat-1", wantUnit: "beats/minute", wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC)},
		{name: "magnitude at the limit", value: rawValue(t, "1e12"), wantValue: 1e12, wantPID: "pat-1", wantUnit: "beats/minute", wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC)},
		{
			name: "valueInteger zero when valueQuantity has no value",
			value: observationJSON(t, func(o map[string]any) {
				o["valueQuantity"] = map[string]any{"unit": "mg/dL", "value": nil}
				o["valueInteger"] = 0
				o["valueDecimal"] = 99
			}),
			wantPID: "pat-1", wantUnit: "mg/dL", wantTime: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC),
		},
		{
			name: "valueDecimal, issued only, versioned absolute reference",
			value: observationJSON(t, func(o map[string]any) {
				delete(o, "valueQuantity")
				delete(o, "effectiveDateTime")
				o["valueDecimal"] = 65.25
				o["subject"] = map[string]any{"reference": "https://fhir.example/r4/Patient/p.9/_history/3"}
			}),
			wantValue: 65.25, wantPID: "p.9", wantTime: time.Date(2024, 4, 5, 17, 41, 10, 250e6, time.UTC),
		},
		{
			name: "date-only effective time",
			value: observationJSON(t, func(o map[string]any) {
				o["effectiveDateTime"] = "2024-04-05"
				delete(o, "issued")
			}),
			wantValue: 72, wantPID: "pat-1", wantUnit: "beats/minute", wantTime: time.Date(2024, 4, 5, 0, 0, 0, 0, time.UTC),
		},
		{
			name: "effectivePeriod start",
			value: observationJSON(t, func(o map[string]any) {
				delete(o, "effectiveDateTime")
				delete(o, "issued")
				o["effectivePeriod"] = map[string]any{"start": "2024-04-05T10:00:00Z", "end": "2024-04-05T11:00:00Z"}
			}),
			wantValue: 72, wantPID: "pat-1", wantUnit: "beats/minute", wantTime: time.Date(2024, 4, 5, 10, 0, 0, 0, time.UTC),
		},
		{
			name: "no time at all",
			value: observationJSON(t, func(o map[string]any) {
				delete(o, "effectiveDateTime")
				delete(o, "issued")
			}),
			wantValue: 72, wantPID: "pat-1", wantUnit: "beats/minute",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var obs observation
			if _, err := decodeObservation(tt.value, &obs, nil); err != nil {
				t.Fatalf("decodeObservation: %v", err)
			}
			if obs.Value != tt.wantValue || obs.PatientID != tt.wantPID || obs.UnitText != tt.wantUnit || !obs.EventTime.Equal(tt.wantTime) {
				t.Errorf("got value %v patient %q unit %q time %v, want %v %q %q %v",
					obs.Value, obs.PatientID, obs.UnitText, obs.EventTime, tt.wantValue, tt.wantPID, tt.wantUnit, tt.wantTime)
			}
			if len(obs.Codings) == 0 || obs.ID == "" || obs.Status != "final" {
				t.Errorf("got %+v", obs)
			}
		})
	}
}

func TestDecodeObservationErrors(t *testing.T) {
	// Every bad record carries the marker somewhere; no error message may
	// contain it (STYLE rule 9: errors never quote records).
	const marker = "SECRETJOHNDOE"
	withMarker := func(mutate func(o map[string]any)) []byte {
		return observationJSON(t, func(o map[string]any) {
			o["subject"].(map[string]any)["display"] = marker
			o["id"] = "obs-" + marker
			if mutate != nil {
				mutate(o)
			}
		})
	}
	tests := []struct {
		name  string
		value []byte
		want  pipeline.ErrorType
		msg   string
	}{
		{name: "not JSON", value: []byte(marker + " is not JSON"), want: pipeline.TypeDecode, msg: "not valid JSON at byte offset 0"},
		{name: "truncated", value: withMarker(nil)[:40], want: pipeline.TypeDecode, msg: "not valid JSON at byte offset"},
		{name: "JSON array", value: []byte(`["` + marker + `"]`), want: pipeline.TypeDecode, msg: "expected shape"},
		{name: "field of wrong type", value: withMarker(func(o map[string]any) { o["status"] = 7 }), want: pipeline.TypeDecode, msg: "expected shape"},
		{name: "wrong resourceType", value: withMarker(func(o map[string]any) { o["resourceType"] = "Patient" }), want: pipeline.TypeInvalid, msg: "resourceType is not Observation"},
		{name: "no resourceType", value: withMarker(func(o map[string]any) { delete(o, "resourceType") }), want: pipeline.TypeInvalid, msg: "resourceType is not Observation"},
		{name: "no id", value: withMarker(func(o map[string]any) { delete(o, "id") }), want: pipeline.TypeInvalid, msg: "observation has no id"},
		{name: "id not a FHIR id", value: withMarker(func(o map[string]any) { o["id"] = marker + " x" }), want: pipeline.TypeInvalid, msg: "not a FHIR id"},
		{name: "no code", value: withMarker(func(o map[string]any) { delete(o, "code") }), want: pipeline.TypeInvalid, msg: "observation has no code"},
		{name: "codings without code", value: withMarker(func(o map[string]any) {
			o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org"}}}
		}), want: pipeline.TypeInvalid, msg: "observation has no code"},
		{name: "codings without code and empty text", value: withMarker(func(o map[string]any) {
			o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org"}}, "text": ""}
		}), want: pipeline.TypeInvalid, msg: "observation has no code"},
		{name: "no subject", value: withMarker(func(o map[string]any) { delete(o, "subject") }), want: pipeline.TypeInvalid, msg: "not a Patient reference"},
		{name: "subject not a patient", value: withMarker(func(o map[string]any) { o["subject"] = map[string]any{"reference": "Group/" + marker} }), want: pipeline.TypeInvalid, msg: "not a Patient reference"},
		{name: "subject with empty id", value: withMarker(func(o map[string]any) { o["subject"] = map[string]any{"reference": "Patient/"} }), want: pipeline.TypeInvalid, msg: "not a Patient reference"},
		{name: "subject lookalike", value: withMarker(func(o map[string]any) { o["subject"] = map[string]any{"reference": "NotPatient/" + marker} }), want: pipeline.TypeInvalid, msg: "not a Patient reference"},
		{name: "huge number", value: rawValue(t, "1000000000001"), want: pipeline.TypeInvalid, msg: "magnitude exceeds"},
		{name: "huge negative number", value: rawValue(t, "-2e15"), want: pipeline.TypeInvalid, msg: "magnitude exceeds"},
		{name: "overflowing number", value: rawValue(t, "1e400"), want: pipeline.TypeInvalid, msg: "not a finite number"},
		{name: "NaN as string", value: withMarker(withValue("NaN")), want: pipeline.TypeInvalid, msg: "not a number"},
		{name: "number as string", value: withMarker(withValue("120")), want: pipeline.TypeInvalid, msg: "not a number"},
		{name: "bool value", value: withMarker(func(o map[string]any) { delete(o, "valueQuantity"); o["valueInteger"] = true }), want: pipeline.TypeInvalid, msg: "not a number"},
		{name: "bad envelope timestamp", value: []byte(`{"metadata":{"timestamp":"` + marker + `"},"payload":` + string(withMarker(nil)) + `}`), want: pipeline.TypeInvalid, msg: "metadata timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var obs observation
			_, err := decodeObservation(tt.value, &obs, nil)
			if got := errorType(err); got != tt.want {
				t.Fatalf("error type %q (%v), want %q", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), "pat-1") {
				t.Errorf("error %q quotes the record", err)
			}
		})
	}
}

func TestProcessorDecodeOversized(t *testing.T) {
	p := newProcessor(t, WithMaxRecordBytes(100))
	tests := []struct {
		name  string
		value []byte
		want  pipeline.ErrorType
	}{
		{name: "over the limit, not decoded", value: []byte(strings.Repeat("x", 101)), want: pipeline.TypeOversized},
		{name: "at the limit, decoded", value: []byte(strings.Repeat("x", 100)), want: pipeline.TypeDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.decode(&kgo.Record{Topic: TopicObservations, Value: tt.value}, new(input))
			if got := errorType(err); got != tt.want {
				t.Fatalf("error type %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestDecodePatient(t *testing.T) {
	tests := []struct {
		name         string
		key          string
		value        []byte
		want         patientContext
		wantCareTeam string
	}{
		{
			name: "seed shape: envelope, careTeam kept as-is, MRN by system",
			key:  "pat-1", value: readTestdata(t, "patient_seed.json"),
			want:         patientContext{ID: "pat-1", Name: "John Doe", MRN: "MRN12345"},
			wantCareTeam: `[{"id":"team1","name":"Primary Care Team","members":[{"role":"primary","practitionerId":"pract1","name":"Dr. Smith"}]}]`,
		},
		{
			name: "FHIR shape: official name, generalPractitioner as care team",
			key:  "pat-2", value: readTestdata(t, "patient_fhir.json"),
			want: patientContext{ID: "pat-2", Name: "James Peter Chalmers", MRN: "MRN-0002", GeneralPractitioners: []reference{
				{Reference: "Practitioner/pract-7", Display: "Dr. Adam Careful"}, {Reference: "Organization/org-1"},
			}},
			wantCareTeam: `[{"reference":"Practitioner/pract-7","display":"Dr. Adam Careful"},{"reference":"Organization/org-1"}]`,
		},
		{
			name: "id from key, text name, no MRN of the hospital system",
			key:  "pat-3",
			value: []byte(`{"resourceType":"Patient","name":[{"text":" Jane Roe "}],
				"identifier":[{"system":"http://other.org/mrn","value":"O-1"}]}`),
			want: patientContext{ID: "pat-3", Name: "Jane Roe"},
		},
		{
			name:  "first name when none is official",
			key:   "pat-4",
			value: []byte(`{"resourceType":"Patient","id":"pat-4","name":[{"use":"usual","given":["Bo"]},{"use":"nickname","given":["Bobby"]}]}`),
			want:  patientContext{ID: "pat-4", Name: "Bo"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodePatient([]byte(tt.key), tt.value)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := v.(*patientContext)
			if !ok {
				t.Fatalf("got %T, want *patientContext", v)
			}
			if string(got.CareTeam) != tt.wantCareTeam {
				t.Errorf("careTeam = %s, want %s", got.CareTeam, tt.wantCareTeam)
			}
			got.CareTeam = nil
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(&tt.want)
			if string(gj) != string(wj) {
				t.Errorf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestDecodePatientSharesNoMemory(t *testing.T) {
	value := readTestdata(t, "patient_seed.json")
	v, err := decodePatient([]byte("pat-1"), value)
	if err != nil {
		t.Fatal(err)
	}
	for i := range value {
		value[i] = 'X'
	}
	p := v.(*patientContext)
	if p.Name != "John Doe" || p.MRN != "MRN12345" || p.ID != "pat-1" || !json.Valid(p.CareTeam) {
		t.Errorf("context changed with the record buffer: %+v", p)
	}
}

func TestDecodePatientErrors(t *testing.T) {
	const marker = "SECRETJOHNDOE"
	tests := []struct {
		name  string
		key   string
		value string
		want  pipeline.ErrorType
	}{
		{name: "not JSON", key: "p", value: marker, want: pipeline.TypeDecode},
		{name: "not a Patient", key: "p", value: `{"resourceType":"Observation","id":"` + marker + `"}`, want: pipeline.TypeInvalid},
		{name: "no id and no key", value: `{"resourceType":"Patient","name":[{"text":"` + marker + `"}]}`, want: pipeline.TypeInvalid},
		{name: "name of wrong type", key: "p", value: `{"resourceType":"Patient","name":"` + marker + `"}`, want: pipeline.TypeDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodePatient([]byte(tt.key), []byte(tt.value))
			if got := errorType(err); got != tt.want {
				t.Fatalf("error type %q (%v), want %q", got, err, tt.want)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error %q quotes the record", err)
			}
		})
	}
}
