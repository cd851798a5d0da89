package datasync

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func newSources(t *testing.T, file string) *Sources {
	t.Helper()
	s, err := LoadSources(filepath.Join("testdata", "sources", file))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The built-in sources are the seed's four topics.
func TestDefaultSources(t *testing.T) {
	want := []string{"source.ehr.patient", "source.ehr.encounter", "source.ehr.observation", "source.pharmacy.prescription"}
	if got := DefaultSources().topicNames(); !slices.Equal(got, want) {
		t.Fatalf("topics %q, want %q", got, want)
	}
	if got := SourceTopics(); !slices.Equal(got, want) {
		t.Fatalf("SourceTopics %q, want %q", got, want)
	}
	system, e, ok := DefaultSources().lookup("source.pharmacy.prescription")
	if system != "pharmacy" || e != Prescription || !ok {
		t.Fatalf("Lookup: %q %q %v", system, e, ok)
	}
}

// A sources file attaches Debezium <prefix>.<schema>.<table> topics with
// their own column names, and the CDC stage reads them.
func TestSourcesAttachDebeziumTopics(t *testing.T) {
	s := newSources(t, "debezium.yaml")
	want := []string{
		"source.ehr.patient", "source.ehr.encounter", "source.ehr.observation", "source.pharmacy.prescription",
		"PostgreSQL_server.inventory.customers", "ehr.public.patients", "lab.public.results",
	}
	if got := s.topicNames(); !slices.Equal(got, want) {
		t.Fatalf("topics %q, want %q", got, want)
	}
	specs, err := Specs(WithSources(s))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(specs[0].Inputs, want) {
		t.Fatalf("CDC inputs %q, want %q", specs[0].Inputs, want)
	}

	t.Run("PostgreSQL connector documentation", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("testdata", "sources", "postgresql_create.json"))
		if err != nil {
			t.Fatal(err)
		}
		var in struct {
			Topic string          `json:"topic"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatal(err)
		}
		m, err := s.mapRecord(sourceRecord{Topic: in.Topic, Key: []byte(in.Key), Value: in.Value, Timestamp: 1})
		if err != nil {
			t.Fatal(err)
		}
		// The row the documentation shows: id 1, Anne Kretchmar,
		// annek@noanswer.org.
		c := m.Change
		if c.Entity != Patient || c.ID != "1" || c.Source != "crm" {
			t.Fatalf("change %+v", c)
		}
		wantFields := Fields{
			"firstName":   json.RawMessage(`"Anne"`),
			"lastName":    json.RawMessage(`"Kretchmar"`),
			"contact":     json.RawMessage(`{"email":"annek@noanswer.org"}`),
			"identifiers": json.RawMessage(`[{"system":"crm","value":"1"}]`),
		}
		if !reflect.DeepEqual(c.Fields, wantFields) {
			t.Fatalf("fields %s, want %s", fieldsJSON(c.Fields), fieldsJSON(wantFields))
		}
	})

	t.Run("flat address and HL7 sex code", func(t *testing.T) {
		v := `{"before":null,"after":{"id":42,"first_name":"Ines","last_name":"Ortiz","birth_date":"1980-03-14",` +
			`"sex":"F","street":"12 Harbour Rd","city":"Leith","zip":"EH6 6JJ","phone":"+44 131 000 0000"},` +
			`"source":{"ts_ms":1700000000000,"db":"ehr","schema":"public","table":"patients"},"op":"c","ts_ms":1700000000100}`
		m, err := s.mapRecord(sourceRecord{Topic: "ehr.public.patients", Key: []byte(`{"id":42}`), Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		wantFields := Fields{
			"firstName":   json.RawMessage(`"Ines"`),
			"lastName":    json.RawMessage(`"Ortiz"`),
			"dateOfBirth": json.RawMessage(`"1980-03-14"`),
			"gender":      json.RawMessage(`"female"`),
			"address":     json.RawMessage(`{"line":["12 Harbour Rd"],"city":"Leith","postalCode":"EH6 6JJ"}`),
			"contact":     json.RawMessage(`{"phone":"+44 131 000 0000"}`),
			"identifiers": json.RawMessage(`[{"system":"ehr","value":"42"}]`),
		}
		if m.Change.ID != "42" || !reflect.DeepEqual(m.Change.Fields, wantFields) {
			t.Fatalf("id %q fields %s, want %s", m.Change.ID, fieldsJSON(m.Change.Fields), fieldsJSON(wantFields))
		}
	})

	t.Run("reference and number columns", func(t *testing.T) {
		v := `{"result_id":"r9","subject_ref":"Patient/p7","loinc":"2339-0","result_value":"5.4","units":"mmol/L","taken_at":"2024-05-01T08:00:00Z"}`
		m, err := s.mapRecord(sourceRecord{Topic: "lab.public.results", Value: []byte(v), Timestamp: 5})
		if err != nil {
			t.Fatal(err)
		}
		wantFields := Fields{
			"patientId":         json.RawMessage(`"p7"`),
			"code":              json.RawMessage(`"2339-0"`),
			"value":             json.RawMessage(`5.4`),
			"unit":              json.RawMessage(`"mmol/L"`),
			"effectiveDateTime": json.RawMessage(`"2024-05-01T08:00:00Z"`),
		}
		if m.Change.ID != "r9" || m.Change.Source != "lab" || !reflect.DeepEqual(m.Change.Fields, wantFields) {
			t.Fatalf("%+v fields %s", m.Change, fieldsJSON(m.Change.Fields))
		}
		for _, bad := range []string{
			`{"result_id":"r9","subject_ref":"Group/g1"}`,
			`{"result_id":"r9","result_value":"high"}`,
		} {
			if _, err := s.mapRecord(sourceRecord{Topic: "lab.public.results", Value: []byte(bad)}); err == nil {
				t.Errorf("%s: no error", bad)
			}
		}
	})

	// The built-in field names are the built-in layout's, not the
	// file's: a column the file does not name is not read.
	t.Run("file columns replace the built-in ones", func(t *testing.T) {
		v := `{"id":1,"firstName":"Ann","first_name":"Anne"}`
		m, err := s.mapRecord(sourceRecord{Topic: "PostgreSQL_server.inventory.customers", Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(m.Change.Fields["firstName"]); got != `"Anne"` {
			t.Fatalf("firstName %s, want the first_name column's", got)
		}
	})
}

func fieldsJSON(f Fields) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// A file with only layouts keeps the built-in topics and changes where
// their fields are read.
func TestSourcesLayoutOverlay(t *testing.T) {
	s, err := ParseSources([]byte("layouts:\n  patient:\n    gender: [administrative_sex]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.topicNames(); !slices.Equal(got, DefaultSources().topicNames()) {
		t.Fatalf("topics %q", got)
	}
	m, err := s.mapRecord(sourceRecord{Topic: "source.ehr.patient", Value: []byte(`{"id":"p1","gender":"M","administrative_sex":"A","lastName":"Ng"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Change.Fields["gender"]); got != `"other"` {
		t.Fatalf("gender %s, want administrative_sex's A as other", got)
	}
	if got := string(m.Change.Fields["lastName"]); got != `"Ng"` {
		t.Fatalf("lastName %s: the built-in columns of other fields are kept", got)
	}
	// The built-in sources are untouched.
	m, err = mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Value: []byte(`{"id":"p1","gender":"M","administrative_sex":"A"}`)})
	if err != nil || string(m.Change.Fields["gender"]) != `"male"` {
		t.Fatalf("built-in mapping changed: %v %s", err, m.Change.Fields["gender"])
	}
}

// Every mistake in a sources file is reported, each with its key.
func TestSourcesInvalid(t *testing.T) {
	_, err := LoadSources(filepath.Join("testdata", "sources", "invalid.yaml"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`layouts.patients: unknown entity "patients"`,
		`layouts.patient.fristName: unknown canonical field of patient`,
		`layouts.patient.gender[1]: empty column path`,
		`layouts.patient.lastName[0]: column path "name..family" has an empty key`,
		`sources[1].topic: duplicate topic "ehr.public.patients": sources[0] has it already`,
		`sources[2].entity: unknown entity "visit"`,
		`sources[3].system: missing`,
		`sources[4].columns.status[0]: observation status takes no reference column`,
		`sources[4].columns.code[0]: column path "codes[x]"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 9 {
		t.Errorf("%d problems reported, want 9:\n%v", n, err)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "sourcse: []\n", "field sourcse not found"},
		{"no sources", "sources: []\n", "sources: no sources"},
		{"unknown column kind", "layouts:\n  patient:\n    id: [{key: id}]\n", `unknown column kind "key"`},
		{"topic name", "sources:\n  - {topic: 'ehr public', system: ehr, entity: patient}\n", `sources[0].topic: "ehr public" is not a Kafka topic name`},
		{"missing topic", "sources:\n  - {system: ehr, entity: patient}\n", "sources[0].topic: missing"},
		{"a topic of datasync's own", "sources:\n  - {topic: canonical.patient.change, system: ehr, entity: patient}\n", `sources[0].topic: "canonical.patient.change" is one of datasync's own topics`},
		{"an acknowledgement topic", "sources:\n  - {topic: target.ehr.sync.completed, system: ehr, entity: patient}\n", "is one of datasync's own topics"},
		{"no id column", "sources:\n  - {topic: t, system: ehr, entity: patient, columns: {id: []}}\n", "sources[0]: no id column for patient"},
		{"two documents", "sources: []\n---\nsources: []\n", "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSources([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
