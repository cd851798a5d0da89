package datasync

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// vtTime is 2024-03-10T12:00:00Z, the source time of the changes below.
var vtTime = time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC).UnixMilli()

// vtChange is a valid change of entity e with fields kv (name, JSON value
// pairs) over the entity's valid base fields; a value "-" removes a field.
func vtChange(e Entity, kv ...string) *Change {
	base := map[Entity]Fields{
		Patient:      {"firstName": json.RawMessage(`"Ann"`), "lastName": json.RawMessage(`"Lee"`), "dateOfBirth": json.RawMessage(`"1980-02-29"`)},
		Encounter:    {"patientId": json.RawMessage(`"p1"`)},
		Observation:  {"patientId": json.RawMessage(`"p1"`), "code": json.RawMessage(`"8867-4"`)},
		Prescription: {"patientId": json.RawMessage(`"p1"`), "medicationName": json.RawMessage(`"amoxicillin"`)},
	}
	fs := maps.Clone(base[e])
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(fs, kv[i])
		} else {
			fs[kv[i]] = json.RawMessage(kv[i+1])
		}
	}
	return &Change{Entity: e, ID: "x1", Op: OpUpsert, Source: "ehr", SourceTime: vtTime, SourceVersion: 1, Fields: fs}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ch   *Change
		want []string
	}{
		{"patient valid", vtChange(Patient), nil},
		{"patient first name only", vtChange(Patient, "lastName", "-"), nil},
		{"patient last name only", vtChange(Patient, "firstName", "-"), nil},
		{"patient no name", vtChange(Patient, "firstName", "-", "lastName", "-"), []string{"patient must have at least a first or last name"}},
		{"patient empty names", vtChange(Patient, "firstName", `""`, "lastName", `null`), []string{"patient must have at least a first or last name"}},
		{"patient name not a string", vtChange(Patient, "firstName", `7`), []string{"firstName must be a string"}},
		{"patient no birth date", vtChange(Patient, "dateOfBirth", "-"), []string{"patient must have a date of birth"}},
		{"patient birth year", vtChange(Patient, "dateOfBirth", `"1980"`), nil},
		{"patient birth month", vtChange(Patient, "dateOfBirth", `"1980-02"`), nil},
		{"patient birth date not a date", vtChange(Patient, "dateOfBirth", `"02/29/1980"`), []string{"dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists"}},
		{"patient birth date not in the calendar", vtChange(Patient, "dateOfBirth", `"1981-02-29"`), []string{"dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists"}},
		{"patient birth month 13", vtChange(Patient, "dateOfBirth", `"1981-13"`), []string{"dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists"}},
		{"patient birth year 0", vtChange(Patient, "dateOfBirth", `"0000"`), []string{"dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists"}},
		{"patient birth date with a time", vtChange(Patient, "dateOfBirth", `"1980-02-29T00:00:00Z"`), []string{"dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists"}},
		{"patient gender", vtChange(Patient, "gender", `"unknown"`), nil},
		{"patient gender outside the value set", vtChange(Patient, "gender", `"M"`), []string{"gender must be one of male, female, other, unknown"}},
		{"patient identifiers", vtChange(Patient, "identifiers", `[{"system":"mrn","value":"1"}]`), nil},
		{"patient identifiers not a list", vtChange(Patient, "identifiers", `{"system":"mrn"}`), []string{"identifiers must be an array of {system, value}"}},
		{"field not JSON", vtChange(Patient, "address", `{"line":`), []string{"address is not valid JSON"}},
		{"no id", func() *Change { c := vtChange(Patient); c.ID = ""; return c }(), []string{"id is required"}},
		{"no source time", func() *Change { c := vtChange(Patient); c.SourceTime = 0; return c }(), []string{"lastUpdated must be a positive source timestamp"}},
		{"delete needs no fields", &Change{Entity: Patient, ID: "x1", Op: OpDelete, Source: "ehr", SourceTime: 1}, nil},
		{"delete needs an id and a time", &Change{Entity: Patient, Op: OpDelete, Source: "ehr"}, []string{"id is required", "lastUpdated must be a positive source timestamp"}},
		{"unknown entity", &Change{Entity: "device", ID: "x1", Op: OpUpsert, SourceTime: 1}, []string{"entity type is not one of patient, encounter, observation, prescription"}},

		{"encounter valid", vtChange(Encounter, "status", `"in-progress"`, "start", `"2024-03-01T10:00:00+01:00"`, "end", `"2024-03-01T11:30:00.5Z"`), nil},
		{"encounter no patient", vtChange(Encounter, "patientId", "-"), []string{"encounter must have a patient ID"}},
		{"encounter status outside the value set", vtChange(Encounter, "status", `"done"`), []string{"status must be one of planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown"}},
		{"encounter empty status", vtChange(Encounter, "status", `""`), []string{"status must be one of planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown"}},
		{"encounter start not a dateTime", vtChange(Encounter, "start", `"yesterday"`), []string{"start must be a FHIR dateTime (a date, or an RFC 3339 date and time)"}},
		{"encounter time without zone", vtChange(Encounter, "start", `"2024-03-01T10:00:00"`), []string{"start must be a FHIR dateTime (a date, or an RFC 3339 date and time)"}},
		{"encounter date start", vtChange(Encounter, "start", `"2024-03"`, "end", `"2024-03-31"`), nil},
		{"encounter end before start", vtChange(Encounter, "start", `"2024-03-01T10:00:00Z"`, "end", `"2024-03-01T09:59:59Z"`), []string{"end must not be before start"}},
		{"encounter end at start", vtChange(Encounter, "start", `"2024-03-01T10:00:00Z"`, "end", `"2024-03-01T11:00:00+01:00"`), nil},
		{"encounter end date of the start", vtChange(Encounter, "start", `"2024-03-01T23:00:00Z"`, "end", `"2024-03-01"`), nil},
		{"encounter end date before start", vtChange(Encounter, "start", `"2024-03-02T00:00:00Z"`, "end", `"2024-03-01"`), []string{"end must not be before start"}},

		{"observation valid", vtChange(Observation, "status", `"final"`, "effectiveDateTime", `"2024-03-01T10:00:00Z"`, "value", `98.6`), nil},
		{"observation no patient", vtChange(Observation, "patientId", "-"), []string{"observation must have a patient ID"}},
		{"observation no code", vtChange(Observation, "code", `""`), []string{"observation must have a code"}},
		{"observation status outside the value set", vtChange(Observation, "status", `"done"`), []string{"status must be one of registered, preliminary, final, amended, corrected, cancelled, entered-in-error, unknown"}},
		{"observation effective not a dateTime", vtChange(Observation, "effectiveDateTime", `"2024-02-30"`), []string{"effectiveDateTime must be a FHIR dateTime (a date, or an RFC 3339 date and time)"}},

		{"prescription valid", vtChange(Prescription, "status", `"on-hold"`), nil},
		{"prescription by medication id", vtChange(Prescription, "medicationName", "-", "medicationId", `"m1"`), nil},
		{"prescription no patient", vtChange(Prescription, "patientId", "-"), []string{"prescription must have a patient ID"}},
		{"prescription no medication", vtChange(Prescription, "medicationName", "-"), []string{"prescription must have a medication ID or name"}},
		{"prescription status outside the value set", vtChange(Prescription, "status", `"paused"`), []string{"status must be one of active, on-hold, cancelled, completed, entered-in-error, stopped, draft, unknown"}},
		{"prescription escaped status", vtChange(Prescription, "status", `"\u0061ctive"`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validateChange(tt.ch); !slices.Equal(got, tt.want) {
				t.Fatalf("Validate() = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateNeverQuotesValues(t *testing.T) {
	const secret = "Zq7Xunique"
	s := `"` + secret + `"`
	chs := []*Change{
		vtChange(Patient, "dateOfBirth", s, "gender", s, "identifiers", s, "firstName", `{"x":"`+secret+`"}`),
		vtChange(Patient, "address", `{"`+secret),
		vtChange(Encounter, "status", s, "start", s, "end", s),
		vtChange(Observation, "status", s, "effectiveDateTime", s, "patientId", `["`+secret+`"]`),
		vtChange(Prescription, "status", s, "patientId", `""`),
	}
	for _, ch := range chs {
		probs := validateChange(ch)
		if len(probs) == 0 {
			t.Fatalf("%s: no problems", ch.Entity)
		}
		for _, p := range probs {
			if strings.Contains(p, secret) {
				t.Errorf("%s: problem quotes a value: %s", ch.Entity, p)
			}
		}
	}
}

// TestValidateBirthDateAgainstSourceTime: the birth date is judged against
// the change's own source time, not the clock.
func TestValidateBirthDateAgainstSourceTime(t *testing.T) {
	// 2024-03-10T23:59:59.999Z: still the 10th in UTC (the 11th east of it).
	late := time.Date(2024, 3, 10, 23, 59, 59, 999e6, time.UTC).UnixMilli()
	tests := []struct {
		name string
		dob  string
		at   int64
		ok   bool
	}{
		{"same date", `"2024-03-10"`, late, true},
		{"same date, start of the day", `"2024-03-10"`, time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC).UnixMilli(), true},
		{"next day", `"2024-03-11"`, late, false},
		{"same month", `"2024-03"`, late, true},
		{"next month", `"2024-04"`, late, false},
		{"same year", `"2024"`, late, true},
		{"next year", `"2025"`, late, false},
		{"the future of the clock, the past of the change", `"2999-01-01"`, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := vtChange(Patient, "dateOfBirth", tt.dob)
			ch.SourceTime = tt.at
			probs := validateChange(ch)
			if ok := len(probs) == 0; ok != tt.ok {
				t.Fatalf("Validate() = %q, want valid %v", probs, tt.ok)
			}
			if !tt.ok && !slices.Equal(probs, []string{"dateOfBirth must not be after the date of the change's lastUpdated (UTC)"}) {
				t.Fatalf("Validate() = %q", probs)
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	ch := vtChange(Patient, "gender", `"female"`, "identifiers", `[{"system":"mrn","value":"1"}]`)
	b.ReportAllocs()
	for b.Loop() {
		if len(validateChange(ch)) != 0 {
			b.Fatal("invalid")
		}
	}
}
