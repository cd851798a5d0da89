package datasync

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// debeziumCase is one file of testdata/debezium: a record as a Debezium
// connector (or its ExtractNewRecordState transform) writes it, adapted
// from the documentation page and section it cites, and what Map must make
// of it.
type debeziumCase struct {
	Doc       string          `json:"doc"`
	DocSource string          `json:"docSource"`
	Adapted   string          `json:"adapted"`
	Topic     string          `json:"topic"`
	Key       *string         `json:"key"`
	Timestamp int64           `json:"timestamp"`
	Value     json.RawMessage `json:"value"`
	Want      struct {
		Tombstone bool          `json:"tombstone"`
		Error     string        `json:"error"`
		Mentions  []string      `json:"mentions"`
		Change    *goldenChange `json:"change"`
		// Problems, where given, are words Validate's problems with the
		// change must say.
		Problems []string `json:"problems"`
	} `json:"want"`
}

func TestDebeziumCorpus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "debezium", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var c debeziumCase
			d := json.NewDecoder(bytes.NewReader(b))
			d.DisallowUnknownFields()
			if err := d.Decode(&c); err != nil {
				t.Fatal(err)
			}
			if c.Doc == "" || c.DocSource == "" {
				t.Fatal("the case cites no documentation")
			}
			in := mappingInput{Topic: c.Topic, Key: c.Key, Timestamp: c.Timestamp, Value: c.Value}
			m, err := mapBuiltIn(in.source())
			switch {
			case c.Want.Tombstone:
				if err != nil || !m.Tombstone || !reflect.DeepEqual(m.Change, Change{}) {
					t.Fatalf("got %+v, %v; want a tombstone and no change", m, err)
				}
			case c.Want.Error != "":
				want := map[string]error{"unmappable": errUnmappable, "unreadable": errUnreadable}[c.Want.Error]
				if !errors.Is(err, want) {
					t.Fatalf("got %+v, %v; want an error %v", m, err, want)
				}
				for _, s := range c.Want.Mentions {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				got := goldenChange{Entity: m.Change.Entity, ID: m.Change.ID, Op: m.Change.Op, Source: m.Change.Source,
					SourceTime: m.Change.SourceTime, SourceVersion: m.Change.SourceVersion, Fields: m.Change.Fields}
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(c.Want.Change)
				if !jsonEqual(t, gb, wb) {
					t.Fatalf("got  %s\nwant %s", gb, wb)
				}
				if m.Tombstone {
					t.Fatal("a change marked as a tombstone")
				}
				if len(c.Want.Problems) > 0 {
					probs := strings.Join(validateChange(&m.Change), "; ")
					for _, w := range c.Want.Problems {
						if !strings.Contains(probs, w) {
							t.Errorf("validation problems %q do not say %q", probs, w)
						}
					}
				}
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// Each temporal type by its schema name, on the documentation's examples
// (debezium/debezium documentation/modules/ROOT/pages/connectors/
// postgresql.adoc, "Temporal types", and the MySQL page's "Temporal types":
// TIMESTAMP "2018-06-20 15:13:16.945104" is MicroTimestamp 1529507596945104;
// DATETIME "2018-06-20 06:37:03" is 1529476623000).
func TestTemporalText(t *testing.T) {
	n := func(s string) any { return json.Number(s) }
	for _, tc := range []struct {
		name string
		v    any
		want string
		bad  bool
	}{
		{dbzDate, n("3754"), "1980-04-12", false},
		{dbzDate, n("-1"), "1969-12-31", false},
		{connectDate, n("0"), "1970-01-01", false},
		{dbzTimestamp, n("1529476623000"), "2018-06-20T06:37:03Z", false},
		{connectTimestamp, n("1529476623000"), "2018-06-20T06:37:03Z", false},
		{dbzMicroTimestamp, n("1529507596945104"), "2018-06-20T15:13:16.945104Z", false},
		{dbzNanoTimestamp, n("1529507596945104000"), "2018-06-20T15:13:16.945104Z", false},
		{dbzZonedTimestamp, "2018-06-20T13:37:03Z", "2018-06-20T13:37:03Z", false},
		{dbzZonedTimestamp, "2018-06-20T15:37:03+02:00", "2018-06-20T15:37:03+02:00", false},
		{dbzTime, n("54796945"), "15:13:16.945", false},
		{connectTime, n("0"), "00:00:00", false},
		{dbzMicroTime, n("54796945104"), "15:13:16.945104", false},
		{dbzNanoTime, n("54796945104000"), "15:13:16.945104", false},
		{dbzYear, n("2018"), "2018", false},
		{dbzZonedTime, "13:37:03Z", "13:37:03Z", false},
		{"org.apache.kafka.connect.data.Decimal", "AeI=", "", false},
		{dbzDate, "1980-04-12", "", true},
		{dbzMicroTimestamp, n("1.5"), "", true},
		{dbzZonedTimestamp, n("1529476623000"), "", true},
		{dbzZonedTimestamp, "2018-06-20 13:37:03", "", true},
		{dbzMicroTime, n("86400000001"), "", true},
		{dbzDate, n("99999999"), "", true},
	} {
		got, err := temporalText(tc.name, tc.v)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s %v: got %q, %v; want %q (error %v)", tc.name, tc.v, got, err, tc.want, tc.bad)
		}
	}
}

// A microsecond or nanosecond time in a millisecond field, and a seconds
// time, are errors wherever a change's time is read: the envelope, the
// transform's fields and the row's own lastUpdated.
func TestEpochUnitsNeverGuessed(t *testing.T) {
	const row = `"id":"p1","firstName":"Ann"`
	for _, tc := range []struct {
		name, value string
		want        int64 // 0: an error
	}{
		{"source.ts_ms in ms", `{"op":"c","after":{` + row + `},"source":{"ts_ms":1700000000123}}`, 1700000000123},
		{"source.ts_ms in µs", `{"op":"c","after":{` + row + `},"source":{"ts_ms":1700000000123456}}`, 0},
		{"source.ts_ms in s", `{"op":"c","after":{` + row + `},"source":{"ts_ms":1700000000}}`, 0},
		{"source.ts_us", `{"op":"c","after":{` + row + `},"source":{"ts_us":1700000000123456}}`, 1700000000123},
		{"source.ts_ns", `{"op":"c","after":{` + row + `},"source":{"ts_ns":1700000000123456789}}`, 1700000000123},
		{"source.ts_us in ms", `{"op":"c","after":{` + row + `},"source":{"ts_us":1700000000123}}`, 0},
		{"ts_ms and ts_us agree", `{"op":"c","after":{` + row + `},"source":{"ts_ms":1700000000123,"ts_us":1700000000123999}}`, 1700000000123},
		{"ts_ms and ts_us disagree", `{"op":"c","after":{` + row + `},"source":{"ts_ms":1700000000123,"ts_us":1700000000124000}}`, 0},
		{"__source_ts_ms in µs", `{` + row + `,"__op":"c","__source_ts_ms":1700000000123456}`, 0},
		{"__source_ts_us", `{` + row + `,"__op":"c","__source_ts_us":"1700000000123456"}`, 1700000000123},
		{"lastUpdated in ms", `{` + row + `,"lastUpdated":1700000000123}`, 1700000000123},
		{"lastUpdated in µs", `{` + row + `,"lastUpdated":1700000000123456}`, 0},
		{"lastUpdated in ns", `{` + row + `,"lastUpdated":1700000000123456789}`, 0},
		{"lastUpdated in s", `{` + row + `,"lastUpdated":1700000000}`, 0},
		{"lastUpdated zero", `{` + row + `,"lastUpdated":0}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Value: []byte(tc.value), Timestamp: 1_800_000_000_000})
			if tc.want == 0 {
				if !errors.Is(err, errUnmappable) {
					t.Fatalf("got %+v, %v; want an error", m.Change, err)
				}
				return
			}
			if err != nil || m.Change.SourceTime != tc.want {
				t.Fatalf("got %d, %v; want %d", m.Change.SourceTime, err, tc.want)
			}
		})
	}
}

// A tombstone is no change and never an error, whatever its key; a delete
// never takes the Kafka record's timestamp.
func TestTombstoneAndDeleteTimes(t *testing.T) {
	for _, key := range []string{"", "p1", `{"id":1}`, `{"name":"x"}`} {
		m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Key: []byte(key), Timestamp: 1_800_000_000_000})
		if err != nil || !m.Tombstone || !reflect.DeepEqual(m.Change, Change{}) {
			t.Errorf("key %q: got %+v, %v; want a tombstone", key, m, err)
		}
	}
	// A null value under an optional schema carries no more than a
	// tombstone.
	m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Key: []byte("p1"), Value: []byte(`{"schema":{"type":"struct","optional":true},"payload":null}`)})
	if err != nil || !m.Tombstone {
		t.Errorf("null payload: got %+v, %v; want a tombstone", m, err)
	}
	for _, v := range []string{
		`{"op":"d","before":{"id":"p1"},"after":null}`,
		`{"op":"d","before":null,"after":null,"source":{"connector":"postgresql"}}`,
		`{"id":"p1","operationType":"delete"}`,
		`{"id":"p1","__deleted":"true","__op":"d"}`,
	} {
		m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Key: []byte("p1"), Value: []byte(v), Timestamp: 1_800_000_000_000})
		if !errors.Is(err, errUnmappable) {
			t.Errorf("%s: got %+v, %v; want an error, not the record's time", v, m.Change, err)
		}
	}
}

// BenchmarkMapDebezium maps a PostgreSQL create event without schemas and
// the documented create event with its schema (testdata/debezium).
func BenchmarkMapDebezium(b *testing.B) {
	bare := []byte(`{"before":null,"after":{"id":"obs-1","patient_id":"p-1","code":"8867-4","code_system":"http://loinc.org","value":72,"unit":"/min","status":"final","effective_date_time":"2026-01-01T00:00:00Z"},"source":{"connector":"postgresql","ts_ms":1767225600000,"snapshot":"false","lsn":24023128},"op":"c","ts_ms":1767225600040}`)
	raw, err := os.ReadFile(filepath.Join("testdata", "debezium", "pg_create_schema.json"))
	if err != nil {
		b.Fatal(err)
	}
	var c debeziumCase
	if err := json.Unmarshal(raw, &c); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, topic string
		value       []byte
	}{{"bare", "source.ehr.observation", bare}, {"schema", c.Topic, c.Value}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mapBuiltIn(sourceRecord{Topic: bc.topic, Value: bc.value, Timestamp: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
