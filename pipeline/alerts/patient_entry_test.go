package alerts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// patientTableDecode is the Decode function the pipeline's spec gives the
// fhir.Patient table: what the runtime restores patients with.
func patientTableDecode(t testing.TB) func(key, value []byte) (any, error) {
	t.Helper()
	for _, g := range newProcessor(t).Spec().GlobalTables {
		if g.Topic == TopicPatients {
			return g.Decode
		}
	}
	t.Fatalf("the spec has no %s table", TopicPatients)
	return nil
}

// samePatient checks that the table's entry for (key, value), looked up
// under key, is the context decodePatient makes of the record, field for
// field, nil for nil; and that neither shares memory with value.
func samePatient(t *testing.T, decode func(key, value []byte) (any, error), key string, value []byte) {
	t.Helper()
	value = append([]byte(nil), value...)
	v, err := decodePatient([]byte(key), value)
	if err != nil {
		t.Fatalf("decodePatient: %v", err)
	}
	want := v.(*patientContext)
	entry, err := decode([]byte(key), value)
	if err != nil {
		t.Fatalf("table decode: %v", err)
	}
	// Both must have copied what they keep.
	for i := range value {
		value[i] = 'X'
	}
	got, ok := contextOf(entry, key)
	if !ok {
		t.Fatalf("entry %T does not decode", entry)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("looked up %#v\nwant         %#v", got, want)
	}
}

// patientJSON builds a bare Patient from members (JSON text after the
// resourceType).
func patientJSON(members string) []byte {
	if members == "" {
		return []byte(`{"resourceType":"Patient"}`)
	}
	return []byte(`{"resourceType":"Patient",` + members + `}`)
}

func enveloped(payload []byte) []byte {
	return []byte(`{"metadata":{"eventId":"e1","eventType":"PatientUpdated","timestamp":"2024-04-01T08:00:00Z"},"payload":` + string(payload) + `}`)
}

func TestPatientEntryRoundTrip(t *testing.T) {
	long := strings.Repeat("Ab", 200) // past one length byte and the stack buffer
	bigTeam := `[` + strings.Repeat(`{"id":"t","members":[{"role":"nurse","name":"Ñurse"}]},`, 100) + `{}]`
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"seed fixture: envelope, own careTeam", "pat-1", readTestdata(t, "patient_seed.json")},
		{"FHIR fixture: official name, GPs as care team", "pat-2", readTestdata(t, "patient_fhir.json")},
		{"fixture keyed otherwise: id held", "other-key", readTestdata(t, "patient_fhir.json")},
		{"id from key", "pat-3", patientJSON(`"name":[{"text":" Jane Roe "}]`)},
		{"id from key, empty resource id", "pat-3", patientJSON(`"id":"","name":[{"given":["Jo"]}]`)},
		{"no key, id held", "", patientJSON(`"id":"pat-4"`)},
		{"nothing but an id", "pat-5", patientJSON(`"id":"pat-5"`)},
		{"official name wins over the first", "p", patientJSON(`"id":"p","name":[{"use":"usual","given":["Jimmy"]},{"use":"official","given":["James"," ","Peter "],"family":" Chalmers"}]`)},
		{"first name when none is official", "p", patientJSON(`"id":"p","name":[{"use":"usual","given":["Bo"]},{"use":"nickname","given":["Bobby"]}]`)},
		{"one-part name", "p", patientJSON(`"id":"p","name":[{"family":"Cher"}]`)},
		{"text when parts are blank", "p", patientJSON(`"id":"p","name":[{"given":[" "],"family":"","text":"T. Ext"}]`)},
		{"empty name list", "p", patientJSON(`"id":"p","name":[]`)},
		{"unicode name", "p", patientJSON(`"id":"p","name":[{"use":"official","given":["José","Zoë"],"family":"Ñúñez-李小龍 🩺"}]`)},
		{"escaped unicode name", "p", patientJSON(`"id":"p","name":[{"given":["Jos\u00e9 \"Pepe\" \\o/"],"family":"\u674e"}]`)},
		{"long strings", "p", patientJSON(`"id":"p","name":[{"given":["` + long + `"]}],"identifier":[{"system":"http://hospital.org/mrn","value":"` + long + `"}]`)},
		{"MRN of the hospital system only", "p", patientJSON(`"id":"p","identifier":[{"system":"http://other.org/mrn","value":"O-1"},{"system":"http://hospital.org/mrn","value":""},{"system":"http://hospital.org/mrn","value":"M-2"},{"system":"http://hospital.org/mrn","value":"M-3"}]`)},
		{"no MRN", "p", patientJSON(`"id":"p","identifier":[{"system":"http://other.org/mrn","value":"O-1"}]`)},
		{"GPs absent", "p", patientJSON(`"id":"p","name":[{"given":["A"]}]`)},
		{"GPs empty", "p", patientJSON(`"id":"p","generalPractitioner":[]`)},
		{"GPs null", "p", patientJSON(`"id":"p","generalPractitioner":null`)},
		{"GPs all blank: skipped", "p", patientJSON(`"id":"p","generalPractitioner":[{},{"reference":"","display":""}]`)},
		{"GP reference or display only", "p", patientJSON(`"id":"p","generalPractitioner":[{"reference":"Practitioner/x"},{"display":"Dr. <Ünïcode> & \"Co\""},{}]`)},
		{"many GPs", "p", patientJSON(`"id":"p","generalPractitioner":[` + strings.Repeat(`{"reference":"Practitioner/p","display":"Dr. P"},`, 40) + `{"reference":"Organization/o"}]`)},
		{"careTeam null: GPs instead", "p", patientJSON(`"id":"p","careTeam":null,"generalPractitioner":[{"reference":"Practitioner/x","display":"Dr. X"}]`)},
		{"careTeam null, no GPs", "p", patientJSON(`"id":"p","careTeam":null`)},
		{"own careTeam wins over GPs", "p", patientJSON(`"id":"p","careTeam":[ {"id" : "t1"} ],"generalPractitioner":[{"reference":"Practitioner/x"}]`)},
		{"careTeam empty array", "p", patientJSON(`"id":"p","careTeam":[]`)},
		{"careTeam object", "p", patientJSON(`"id":"p","careTeam":{"name":"Ward 7 \u00e9quipe"}`)},
		{"careTeam string", "p", patientJSON(`"id":"p","careTeam":"team"`)},
		{"careTeam large", "p", patientJSON(`"id":"p","careTeam":` + bigTeam)},
		{"enveloped, GPs", "p", enveloped(patientJSON(`"id":"p","name":[{"given":["Ana"],"family":"Ömer"}],"generalPractitioner":[{"reference":"Practitioner/x","display":"Dr. X"}]`))},
		{"enveloped, id from key", "pat-9", enveloped(patientJSON(`"careTeam":[{"id":"t"}]`))},
	}
	decode := patientTableDecode(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { samePatient(t, decode, tt.key, tt.value) })
	}
}

// TestPatientEntryRoundTripWorkload: every patient of the simulated
// workload, bare and enveloped, with and without a GP.
func TestPatientEntryRoundTripWorkload(t *testing.T) {
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 11, Patients: 2000, EnvelopeFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	decode := patientTableDecode(t)
	for _, r := range g.PatientRecords() {
		samePatient(t, decode, string(r.Key), r.Value)
	}
}

// TestPatientEntryErrors: the table rejects what decodePatient rejects,
// with the same error, and never quotes the record.
func TestPatientEntryErrors(t *testing.T) {
	const marker = "SECRETJOHNDOE"
	tests := []struct {
		name  string
		key   string
		value string
		want  pipeline.ErrorType
	}{
		{"not JSON", "p", marker, pipeline.TypeDecode},
		{"not a Patient", "p", `{"resourceType":"Observation","id":"` + marker + `"}`, pipeline.TypeInvalid},
		{"no resourceType", "p", `{"id":"` + marker + `"}`, pipeline.TypeInvalid},
		{"no id and no key", "", `{"resourceType":"Patient","name":[{"text":"` + marker + `"}]}`, pipeline.TypeInvalid},
		{"name of wrong type", "p", `{"resourceType":"Patient","name":"` + marker + `"}`, pipeline.TypeDecode},
		{"GP of wrong type", "p", `{"resourceType":"Patient","generalPractitioner":{"reference":"` + marker + `"}}`, pipeline.TypeDecode},
		{"careTeam not JSON", "p", `{"resourceType":"Patient","careTeam":[` + marker + `]}`, pipeline.TypeDecode},
		{"envelope timestamp unreadable", "p", `{"metadata":{"timestamp":"` + marker + `"},"payload":{"resourceType":"Patient","id":"p"}}`, pipeline.TypeInvalid},
	}
	decode := patientTableDecode(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, want := decodePatient([]byte(tt.key), []byte(tt.value))
			v, got := decode([]byte(tt.key), []byte(tt.value))
			if errorType(want) != tt.want {
				t.Fatalf("decodePatient error %v, want type %q", want, tt.want)
			}
			if v != nil || got == nil || errorType(got) != errorType(want) || got.Error() != want.Error() {
				t.Fatalf("table decode = %v, %v; want nil, %v", v, got, want)
			}
			if strings.Contains(got.Error(), marker) {
				t.Errorf("error %q quotes the record", got)
			}
		})
	}
}

func TestPatientContextOfOtherValues(t *testing.T) {
	pc := &patientContext{ID: "p", Name: "N"}
	tests := []struct {
		name   string
		v      any
		want   *patientContext
		wantOK bool
	}{
		{"a context, as DecodePatient holds", pc, pc, true},
		{"a nil context", (*patientContext)(nil), nil, false},
		{"another type", "p", nil, false},
		{"a truncated entry", patientEntry([]byte{0, 5, 'a'}), nil, false},
		{"unknown flags", patientEntry([]byte{0x80, 0, 0, 0}), nil, false},
		{"trailing bytes", patientEntry([]byte{0, 0, 0, 0, 0}), nil, false},
		{"an empty entry", patientEntry(""), nil, false},
		{"the smallest entry", patientEntry([]byte{0, 0, 0, 0}), &patientContext{ID: "p"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := contextOf(tt.v, "p")
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("contextOf = %#v, %v; want %#v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzPatientEntry: whatever a fhir.Patient record holds, the table and
// decodePatient agree on it: the same error, or the same context.
func FuzzPatientEntry(f *testing.F) {
	f.Add("pat-1", readTestdata(f, "patient_seed.json"))
	f.Add("pat-2", readTestdata(f, "patient_fhir.json"))
	f.Add("", patientJSON(`"id":"p","name":[{"given":["Zoë"]}],"generalPractitioner":[{"display":"<&>"}],"careTeam":null`))
	decode := patientTableDecode(f)
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		v, err := decodePatient([]byte(key), value)
		entry, entryErr := decode([]byte(key), value)
		if err != nil || entryErr != nil {
			if err == nil || entryErr == nil || err.Error() != entryErr.Error() || errorType(err) != errorType(entryErr) {
				t.Fatalf("decodePatient error %v, table error %v", err, entryErr)
			}
			return
		}
		// Looked up by its key, as the table does.
		got, ok := contextOf(entry, key)
		if !ok || !reflect.DeepEqual(got, v) {
			t.Fatalf("looked up %#v, %v\nwant         %#v", got, ok, v)
		}
	})
}

// BenchmarkPatientLookup is the cost of enriching an alert from the table:
// an entry decoded per lookup.
//
//	go test ./pipeline/alerts -run '^$' -bench PatientLookup -benchmem
func BenchmarkPatientLookup(b *testing.B) {
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 7, Patients: 64, EnvelopeFraction: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	decode := patientTableDecode(b)
	recs := g.PatientRecords()
	entries := make([]any, len(recs))
	for i, r := range recs {
		if entries[i], err = decode(r.Key, r.Value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % len(recs)
		if _, ok := contextOf(entries[j], string(recs[j].Key)); !ok {
			b.Fatal("lookup failed")
		}
	}
}
