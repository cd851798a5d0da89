package datasync

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The -update flag rewrites the golden files of testdata/mapping. It is
// registered in init, after every package-level variable of the package's
// test files, and only when no other test file has registered it already:
// two files of one package each declaring it would panic at start-up.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

func updateGoldens() bool {
	g, ok := flag.Lookup("update").Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// mappingInput is a golden input: a source record, its value as JSON (null
// for a tombstone).
type mappingInput struct {
	Topic     string          `json:"topic"`
	Key       *string         `json:"key"`
	System    string          `json:"system"`
	Timestamp int64           `json:"timestamp"`
	Value     json.RawMessage `json:"value"`
}

func (in mappingInput) source() sourceRecord {
	s := sourceRecord{Topic: in.Topic, System: in.System, Timestamp: in.Timestamp}
	if in.Key != nil {
		s.Key = []byte(*in.Key)
	}
	if v := bytes.TrimSpace(in.Value); len(v) > 0 && string(v) != "null" {
		s.Value = in.Value
	}
	return s
}

// goldenChange is the stable JSON form of a mapped change: json.Marshal
// writes a map's keys sorted.
type goldenChange struct {
	Entity        Entity    `json:"entity"`
	ID            string    `json:"id"`
	Op            Operation `json:"op"`
	Source        string    `json:"source"`
	SourceTime    int64     `json:"sourceTime"`
	SourceVersion int64     `json:"sourceVersion"`
	CorrelationID string    `json:"correlationId"`
	Fields        Fields    `json:"fields"`
}

func goldenJSON(t *testing.T, m mapped) []byte {
	t.Helper()
	c := m.Change
	b, err := json.MarshalIndent(goldenChange{
		Entity: c.Entity, ID: c.ID, Op: c.Op, Source: c.Source, SourceTime: c.SourceTime,
		SourceVersion: c.SourceVersion, CorrelationID: m.CorrelationID, Fields: c.Fields,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func readMappingInput(t *testing.T, path string) sourceRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in mappingInput
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return in.source()
}

func mappingInputs(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "mapping", "*.in.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatal("no golden inputs under testdata/mapping")
	}
	return ins
}

// TestMapGolden maps each testdata/mapping/NAME.in.json and compares the
// change with NAME.golden.json. go test -run MapGolden -update rewrites the
// goldens; read the diff before committing it.
func TestMapGolden(t *testing.T) {
	for _, in := range mappingInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			m, err := mapBuiltIn(readMappingInput(t, in))
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			// The fields are the canonical record's: they fit it exactly.
			if _, err := m.Change.record(); err != nil {
				t.Fatalf("Record: %v", err)
			}
			got := goldenJSON(t, m)
			golden := filepath.Join("testdata", "mapping", name+".golden.json")
			if updateGoldens() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n got %s\nwant %s", golden, got, want)
			}
		})
	}
}

// The distinctive value every error case carries somewhere in its record: no
// error message may quote it.
const zebedee = "Zebedee"

func TestMapErrors(t *testing.T) {
	const pt = "source.ehr.patient"
	for _, tc := range []struct {
		name  string
		topic string
		key   string
		value string
		want  error
	}{
		{name: "not JSON", value: `{"id":"p1","firstName":Zebedee}`, want: errUnreadable},
		{name: "bare word", value: `Zebedee`, want: errUnreadable},
		{name: "truncated", value: `{"id":"p1","firstName":"Zebedee"`, want: errUnreadable},
		{name: "trailing data", value: `{"id":"p1"} {"firstName":"Zebedee"}`, want: errUnreadable},
		{name: "JSON array", value: `[{"id":"p1","firstName":"Zebedee"}]`, want: errUnreadable},
		{name: "JSON string", value: `"Zebedee"`, want: errUnreadable},
		{name: "JSON null", value: `null`, want: errUnreadable},
		{name: "envelope payload not an object", value: `{"metadata":{},"payload":"Zebedee"}`, want: errUnreadable},
		{name: "envelope metadata not an object", value: `{"metadata":"Zebedee","payload":{"id":"p1"}}`, want: errUnreadable},
		{name: "schema wrapper payload not an object", value: `{"schema":{},"payload":["Zebedee"]}`, want: errUnreadable},
		{name: "no id", value: `{"firstName":"Zebedee","lastName":"Smith"}`, want: errUnmappable},
		{name: "empty id", value: `{"id":"","patientId":null,"firstName":"Zebedee"}`, want: errUnmappable},
		{name: "id an object", value: `{"id":{"value":"Zebedee"}}`, want: errUnmappable},
		{name: "no id in an envelope", value: `{"metadata":{"correlationId":"c1"},"payload":{"firstName":"Zebedee"}}`, want: errUnmappable},
		{name: "unknown Debezium op", value: `{"op":"Zebedee","after":{"id":"p1"}}`, want: errUnmappable},
		{name: "Debezium truncate", value: `{"op":"t","before":null,"after":null,"source":{"db":"Zebedee"}}`, want: errUnmappable},
		{name: "Debezium op not a string", value: `{"op":1,"after":{"id":"Zebedee"}}`, want: errUnmappable},
		{name: "Debezium create without after", value: `{"op":"c","before":{"id":"Zebedee"},"after":null}`, want: errUnmappable},
		{name: "Debezium after not an object", value: `{"op":"u","after":"Zebedee"}`, want: errUnmappable},
		{name: "Debezium ts_ms not an integer", value: `{"op":"c","after":{"id":"p1","firstName":"Zebedee"},"source":{"ts_ms":"Zebedee"}}`, want: errUnmappable},
		{name: "unknown operationType", value: `{"id":"p1","operationType":"Zebedee"}`, want: errUnmappable},
		{name: "operationType not a string", value: `{"id":"p1","operationType":["Zebedee"]}`, want: errUnmappable},
		{name: "unknown topic", topic: "source.ehr.invoice", value: `{"id":"p1","firstName":"Zebedee"}`, want: errUnmappable},
		{name: "topic without a system", topic: "source..patient", value: `{"id":"p1","firstName":"Zebedee"}`, want: errUnmappable},
		{name: "canonical topic", topic: "canonical.patient.change", value: `{"id":"p1","firstName":"Zebedee"}`, want: errUnmappable},
		{name: "field an object", value: `{"id":"p1","firstName":{"text":"Zebedee"}}`, want: errUnmappable},
		{name: "field an array", value: `{"id":"p1","lastName":["Zebedee"]}`, want: errUnmappable},
		{name: "name.given with an object", value: `{"id":"p1","name":{"given":[{"text":"Zebedee"}]}}`, want: errUnmappable},
		{name: "identifiers not an array", value: `{"id":"p1","identifiers":{"system":"mrn","value":"Zebedee"}}`, want: errUnmappable},
		{name: "identifier without a system", value: `{"id":"p1","identifiers":[{"value":"Zebedee"}]}`, want: errUnmappable},
		{name: "identifier not an object", value: `{"id":"p1","identifiers":["Zebedee"]}`, want: errUnmappable},
		{name: "address an array", value: `{"id":"p1","address":["Zebedee"]}`, want: errUnmappable},
		{name: "address line an object", value: `{"id":"p1","address":{"line":{"text":"Zebedee"}}}`, want: errUnmappable},
		{name: "contact a string", value: `{"id":"p1","contact":"Zebedee"}`, want: errUnmappable},
		{name: "bad lastUpdated", value: `{"id":"p1","firstName":"Zebedee","lastUpdated":"Zebedee 2024"}`, want: errUnmappable},
		{name: "lastUpdated not RFC 3339", value: `{"id":"p1","firstName":"Zebedee","lastUpdated":"2024-03-01 10:00"}`, want: errUnmappable},
		{name: "lastUpdated fractional", value: `{"id":"p1","firstName":"Zebedee","updatedAt":1709287200000.5}`, want: errUnmappable},
		{name: "lastUpdated a boolean", value: `{"id":"p1","firstName":"Zebedee","updated_at":true}`, want: errUnmappable},
		{name: "bad version", value: `{"id":"p1","firstName":"Zebedee","version":"v-Zebedee"}`, want: errUnmappable},
		{name: "negative version", value: `{"id":"p1","firstName":"Zebedee","versionId":-2}`, want: errUnmappable},
		{name: "fractional version", value: `{"id":"p1","firstName":"Zebedee","version":2.5}`, want: errUnmappable},
		{name: "delete without an id and an empty key", key: "", value: `{"operationType":"delete","firstName":"Zebedee"}`, want: errUnmappable},
		{name: "Debezium delete without before and an empty key", key: "", value: `{"op":"d","before":null,"source":{"name":"Zebedee"}}`, want: errUnmappable},
		{name: "subject to a group", topic: "source.ehr.observation", value: `{"id":"o1","subject":{"reference":"Group/Zebedee"}}`, want: errUnmappable},
		{name: "valueQuantity not numeric", topic: "source.ehr.observation", value: `{"id":"o1","valueQuantity":{"value":"Zebedee"}}`, want: errUnmappable},
		{name: "value out of range", topic: "source.ehr.observation", value: `{"id":"o1","value":1e400,"display":"Zebedee"}`, want: errUnmappable},
		{name: "value an object", topic: "source.ehr.observation", value: `{"id":"o1","value":{"text":"Zebedee"}}`, want: errUnmappable},
		{name: "dose an object", topic: "source.pharmacy.prescription", value: `{"id":"rx1","dose":{"value":500,"unit":"Zebedee"}}`, want: errUnmappable},
		{name: "encounter type an array", topic: "source.ehr.encounter", value: `{"id":"e1","type":[{"text":"Zebedee"}]}`, want: errUnmappable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := tc.topic
			if topic == "" {
				topic = pt
			}
			m, err := mapBuiltIn(sourceRecord{Topic: topic, Key: []byte(tc.key), Value: []byte(tc.value), Timestamp: 1_700_000_000_000})
			if err == nil {
				t.Fatalf("no error; mapped to %+v", m)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %q is not %v", err, tc.want)
			}
			other := errUnmappable
			if tc.want == errUnmappable {
				other = errUnreadable
			}
			if errors.Is(err, other) {
				t.Fatalf("error %q is both sentinels", err)
			}
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(zebedee)) {
				t.Fatalf("error %q quotes the record", err)
			}
			if !reflect.DeepEqual(m, mapped{}) {
				t.Fatalf("an error with a result: %+v", m)
			}
		})
	}
}

// The errors name the field at fault.
func TestMapErrorNamesField(t *testing.T) {
	for _, tc := range []struct{ value, field string }{
		{`{"id":"p1","firstName":{"text":"Zebedee"}}`, `"firstName"`},
		{`{"id":"p1","lastUpdated":"Zebedee"}`, `"lastUpdated"`},
		{`{"id":"p1","identifiers":[{"system":"mrn","value":"1"},{"system":"Zebedee"}]}`, `"identifiers[1]"`},
		{`{"firstName":"Zebedee"}`, "none of id, patientId, patient_id"},
	} {
		_, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Value: []byte(tc.value)})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v does not name %s", tc.value, err, tc.field)
		}
	}
}

func TestEntityOfSourceTopic(t *testing.T) {
	for _, tc := range []struct {
		topic, system string
		e             Entity
		ok            bool
	}{
		{"source.ehr.patient", "ehr", Patient, true},
		{"source.ehr.encounter", "ehr", Encounter, true},
		{"source.ehr.observation", "ehr", Observation, true},
		{"source.pharmacy.prescription", "pharmacy", Prescription, true},
		// Not a built-in topic: a sources file attaches it (TestSources).
		{"source.lab.observation", "", "", false},
		{"source.ehr.invoice", "", "", false},
		{"source.ehr", "", "", false},
		{"source..patient", "", "", false},
		{"source.ehr.patient.v2", "", "", false},
		{"canonical.patient.change", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			system, e, ok := EntityOfSourceTopic(tc.topic)
			if system != tc.system || e != tc.e || ok != tc.ok {
				t.Fatalf("got %q, %q, %v; want %q, %q, %v", system, e, ok, tc.system, tc.e, tc.ok)
			}
		})
	}
}

// A delete's id comes from the key where the value has none (a Debezium
// delete without its before image): the key as text, a JSON string key's
// string, a JSON object key's id field (Debezium's key struct, bare or in a
// schema/payload wrapper).
func TestMapKeyID(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{`p1`, "p1"},
		{`42`, "42"},
		{`"p1"`, "p1"},
		{`{"id":"p1"}`, "p1"},
		{`{"patient_id":1001}`, "1001"},
		{`{"schema":{"type":"struct"},"payload":{"id":1001}}`, "1001"},
		{`{not json`, "{not json"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			const value = `{"op":"d","before":null,"after":null,"ts_ms":1709391700000}`
			m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Key: []byte(tc.key), Value: []byte(value), Timestamp: 5})
			if err != nil {
				t.Fatal(err)
			}
			want := Change{Entity: Patient, ID: tc.want, Op: OpDelete, Source: "ehr", SourceTime: 1709391700000, SourceVersion: 1}
			if !reflect.DeepEqual(m.Change, want) {
				t.Fatalf("got %+v, want %+v", m.Change, want)
			}
		})
	}
}

// mapBuiltIn maps one record of a built-in source topic ([DefaultSources])
// to its canonical change.
func mapBuiltIn(s sourceRecord) (mapped, error) { return DefaultSources().mapRecord(s) }
