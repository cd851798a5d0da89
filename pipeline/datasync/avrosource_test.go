package datasync

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
)

// ehrPatientsEnvelope is the value schema Debezium's PostgreSQL connector
// registers, through the Avro converter, for a patients table of a
// connector with topic.prefix ehr: Confluent's AvroData writes the Connect
// schema as Avro, before and after as a union of null and the table's
// Value record, source as the connector's Source record, the Connect names
// in connect.name (the envelope's shape and names as in Debezium's
// PostgreSQL connector documentation, "Data change events"; the temporal
// columns' names and units as in its "Temporal types" table:
// io.debezium.time.Date is days since the epoch, io.debezium.time.Timestamp
// milliseconds, io.debezium.time.MicroTimestamp microseconds). The last
// three columns are as a connector with time.precision.mode=connect writes
// them, Avro logical types (date, timestamp-millis), plus a
// timestamp-micros column as other Avro producers write one.
const ehrPatientsEnvelope = `{
 "type": "record", "name": "Envelope", "namespace": "ehr.public.patients",
 "connect.name": "ehr.public.patients.Envelope",
 "fields": [
  {"name": "before", "default": null, "type": ["null", {
   "type": "record", "name": "Value", "connect.name": "ehr.public.patients.Value",
   "fields": [
    {"name": "id", "type": "int"},
    {"name": "first_name", "type": ["null", "string"], "default": null},
    {"name": "last_name", "type": ["null", "string"], "default": null},
    {"name": "birth_date", "type": ["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}], "default": null},
    {"name": "sex", "type": ["null", "string"], "default": null},
    {"name": "admitted_at", "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.Timestamp"}], "default": null},
    {"name": "updated_at", "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}], "default": null},
    {"name": "deceased_date", "type": ["null", {"type": "int", "logicalType": "date", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Date"}], "default": null},
    {"name": "consent_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null},
    {"name": "verified_at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null}
   ]}]},
  {"name": "after", "type": ["null", "Value"], "default": null},
  {"name": "source", "type": {
   "type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
   "connect.name": "io.debezium.connector.postgresql.Source",
   "fields": [
    {"name": "version", "type": "string"},
    {"name": "connector", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "ts_ms", "type": "long"},
    {"name": "snapshot", "type": [{"type": "string", "connect.version": 1, "connect.parameters": {"allowed": "true,last,false,incremental"}, "connect.default": "false", "connect.name": "io.debezium.data.Enum"}, "null"], "default": "false"},
    {"name": "db", "type": "string"},
    {"name": "schema", "type": "string"},
    {"name": "table", "type": "string"},
    {"name": "txId", "type": ["null", "long"], "default": null},
    {"name": "lsn", "type": ["null", "long"], "default": null}
   ]}},
  {"name": "op", "type": "string"},
  {"name": "ts_ms", "type": ["null", "long"], "default": null}
 ]
}`

// ehrPatientsKey is the key schema of the same table.
const ehrPatientsKey = `{"type": "record", "name": "Key", "namespace": "ehr.public.patients",
 "connect.name": "ehr.public.patients.Key", "fields": [{"name": "id", "type": "int"}]}`

type pgRow struct {
	ID           int32   `avro:"id"`
	FirstName    *string `avro:"first_name"`
	LastName     *string `avro:"last_name"`
	BirthDate    *int32  `avro:"birth_date"`
	Sex          *string `avro:"sex"`
	AdmittedAt   *int64  `avro:"admitted_at"`
	UpdatedAt    *int64  `avro:"updated_at"`
	DeceasedDate *int32  `avro:"deceased_date"`
	ConsentAt    *int64  `avro:"consent_at"`
	VerifiedAt   *int64  `avro:"verified_at"`
}

type pgSource struct {
	Version   string  `avro:"version"`
	Connector string  `avro:"connector"`
	Name      string  `avro:"name"`
	TsMs      int64   `avro:"ts_ms"`
	Snapshot  *string `avro:"snapshot"`
	DB        string  `avro:"db"`
	Schema    string  `avro:"schema"`
	Table     string  `avro:"table"`
	TxID      *int64  `avro:"txId"`
	LSN       *int64  `avro:"lsn"`
}

type pgEnvelope struct {
	Before *pgRow   `avro:"before"`
	After  *pgRow   `avro:"after"`
	Source pgSource `avro:"source"`
	Op     string   `avro:"op"`
	TsMs   *int64   `avro:"ts_ms"`
}

type pgKey struct {
	ID int32 `avro:"id"`
}

// avroWorld is a fake schema registry with the table's schemas registered
// under the converter's subjects, a Confluent-format serde (franz-go's
// sr.Serde, a third-party implementation of the wire format) that writes
// records with them, and the sources that attach the table.
type avroWorld struct {
	reg      *srfake.Registry
	serde    *sr.Serde
	valueID  int
	keyID    int
	sources  *Sources
	avro     *avroSource
	lookups  atomic.Int64 // schema-by-id requests the registry answered
	failures atomic.Int64 // schema-by-id requests failed on purpose
	down     atomic.Bool
	// status, when not 0, is what the registry answers every
	// schema-by-id request with (while not down).
	status atomic.Int32
}

func newAvroWorld(t *testing.T) *avroWorld {
	t.Helper()
	w := &avroWorld{reg: srfake.New()}
	t.Cleanup(w.reg.Close)
	w.reg.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			return false
		}
		if w.down.Load() {
			w.failures.Add(1)
			http.Error(rw, `{"error_code":50003,"message":"registry unavailable"}`, http.StatusServiceUnavailable)
			return true
		}
		if code := int(w.status.Load()); code != 0 {
			w.failures.Add(1)
			http.Error(rw, fmt.Sprintf(`{"error_code":%d,"message":"refused on purpose"}`, code*100), code)
			return true
		}
		w.lookups.Add(1)
		return false
	})
	var err error
	if w.valueID, _, err = w.reg.RegisterSchema("ehr.public.patients-value", sr.Schema{Schema: ehrPatientsEnvelope, Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	if w.keyID, _, err = w.reg.RegisterSchema("ehr.public.patients-key", sr.Schema{Schema: ehrPatientsKey, Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	vs := avro.MustParse(ehrPatientsEnvelope)
	ks := avro.MustParse(ehrPatientsKey)
	w.serde = sr.NewSerde()
	w.serde.Register(w.valueID, pgEnvelope{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(vs, v) }))
	w.serde.Register(w.keyID, pgKey{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(ks, v) }))
	cl, err := sr.NewClient(sr.URLs(w.reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	w.avro = newAvroSource(cl)
	w.sources = newSources(t, "debezium.yaml")
	return w
}

func (w *avroWorld) encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := w.serde.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *avroWorld) mapAvro(key, value []byte) (mapped, error) {
	return w.sources.mapSource(sourceRecord{Topic: "ehr.public.patients", Key: key, Value: value, Timestamp: 1}, w.avro)
}

func p[T any](v T) *T { return &v }

// The row every test writes: born 1980-03-14, day 3725 of the epoch;
// admitted 2024-03-01T09:30:00Z, 1709285400000 ms.
func ehrRow() *pgRow {
	return &pgRow{
		ID: 42, FirstName: p("Ines"), LastName: p("Ortiz"), BirthDate: p(int32(3725)), Sex: p("F"),
		AdmittedAt: p(int64(1709285400000)), UpdatedAt: p(int64(1709285400000123)),
		DeceasedDate: nil, ConsentAt: p(int64(1709285400000)), VerifiedAt: p(int64(1709285400000456)),
	}
}

// ehrRowJSON is ehrRow as the JSON converter writes its payload:
// Debezium's temporal values are the same numbers.
const ehrRowJSON = `{"id":42,"first_name":"Ines","last_name":"Ortiz","birth_date":3725,"sex":"F",` +
	`"admitted_at":1709285400000,"updated_at":1709285400000123,"deceased_date":null,` +
	`"consent_at":1709285400000,"verified_at":1709285400000456}`

// A Debezium change event written by the Avro converter maps to what the
// same event written by the JSON converter (schemas enabled) maps to.
func TestAvroSourceMapsAsJSON(t *testing.T) {
	w := newAvroWorld(t)
	src := pgSource{Version: "3.2.0.Final", Connector: "postgresql", Name: "ehr", TsMs: 1709285400500, Snapshot: p("false"),
		DB: "ehr", Schema: "public", Table: "patients", TxID: p(int64(777)), LSN: p(int64(24023128))}
	srcJSON := `{"version":"3.2.0.Final","connector":"postgresql","name":"ehr","ts_ms":1709285400500,"snapshot":"false",` +
		`"db":"ehr","schema":"public","table":"patients","txId":777,"lsn":24023128}`
	for _, tc := range []struct {
		name       string
		env        pgEnvelope
		key        bool // the key only: a delete without its before image
		tombstone  bool
		json       string
		wantDelete bool
	}{
		{name: "create", env: pgEnvelope{After: ehrRow(), Source: src, Op: "c", TsMs: p(int64(1709285400900))},
			json: `{"before":null,"after":` + ehrRowJSON + `,"source":` + srcJSON + `,"op":"c","ts_ms":1709285400900}`},
		{name: "update", env: pgEnvelope{Before: ehrRow(), After: ehrRow(), Source: src, Op: "u", TsMs: p(int64(1709285400900))},
			json: `{"before":` + ehrRowJSON + `,"after":` + ehrRowJSON + `,"source":` + srcJSON + `,"op":"u","ts_ms":1709285400900}`},
		{name: "delete", env: pgEnvelope{Before: ehrRow(), Source: src, Op: "d", TsMs: p(int64(1709285400900))},
			json: `{"before":` + ehrRowJSON + `,"after":null,"source":` + srcJSON + `,"op":"d","ts_ms":1709285400900}`, wantDelete: true},
		{name: "delete without before", key: true, env: pgEnvelope{Source: src, Op: "d"},
			json: `{"before":null,"after":null,"source":` + srcJSON + `,"op":"d","ts_ms":null}`, wantDelete: true},
		// A tombstone is no change whatever its key (the delete before
		// it was the change): both converters' give Mapped.Tombstone.
		{name: "tombstone", key: true, tombstone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var key, value []byte
			jsonKey := []byte(`{"id":42}`)
			key = w.encode(t, pgKey{ID: 42})
			if !tc.tombstone {
				value = w.encode(t, tc.env)
			}
			got, err := w.mapAvro(key, value)
			if err != nil {
				t.Fatal(err)
			}
			// The JSON converter with schemas enabled writes the
			// Connect schema beside the payload; the schema is the one
			// the Avro side decodes to (which is the JSON converter's:
			// TestAvroSourceDecodesAsDocumentedJSON).
			var jv []byte
			if !tc.tombstone {
				dec, err := w.avro.decode(value)
				if err != nil {
					t.Fatal(err)
				}
				schema, err := json.Marshal(dec.(map[string]any)["schema"])
				if err != nil {
					t.Fatal(err)
				}
				jv = []byte(`{"schema":` + string(schema) + `,"payload":` + tc.json + `}`)
			}
			want, err := w.sources.mapRecord(sourceRecord{Topic: "ehr.public.patients", Key: jsonKey, Value: jv, Timestamp: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Avro maps to\n %+v\nJSON to\n %+v", got, want)
			}
			if tc.tombstone {
				if !got.Tombstone {
					t.Fatalf("tombstone mapped to %+v, want no change", got)
				}
				return
			}
			if (got.Change.Op == OpDelete) != tc.wantDelete || got.Change.ID != "42" || got.Change.Source != "ehr" {
				t.Fatalf("change %+v", got.Change)
			}
			if !tc.wantDelete && string(got.Change.Fields["gender"]) != `"female"` {
				t.Fatalf("gender %s", got.Change.Fields["gender"])
			}
		})
	}
}

// The decoded value is what the JSON converter with schemas writes:
// {"schema": Connect schema, "payload": value}, Debezium's temporal values
// as their numbers, named by the schema as the JSON converter names them.
func TestAvroSourceConnectForm(t *testing.T) {
	w := newAvroWorld(t)
	b := w.encode(t, pgEnvelope{After: ehrRow(), Source: pgSource{TsMs: 1, Snapshot: p("true")}, Op: "r"})
	v, err := w.avro.decode(b)
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(map[string]any)
	after := obj["payload"].(map[string]any)["after"].(map[string]any)
	for col, want := range map[string]any{
		"id": json.Number("42"), "birth_date": json.Number("3725"), "admitted_at": json.Number("1709285400000"),
		"updated_at": json.Number("1709285400000123"), "deceased_date": nil, "consent_at": json.Number("1709285400000"),
		"verified_at": json.Number("1709285400000456"), "sex": "F",
	} {
		if !reflect.DeepEqual(after[col], want) {
			t.Errorf("after.%s = %#v, want %#v", col, after[col], want)
		}
	}
	schema := obj["schema"].(map[string]any)
	if schema["type"] != "struct" || schema["name"] != "ehr.public.patients.Envelope" {
		t.Fatalf("envelope schema %v", schema)
	}
	var afterSchema map[string]any
	for _, f := range schema["fields"].([]any) {
		if f := f.(map[string]any); f["field"] == "after" {
			afterSchema = f
		}
	}
	if afterSchema["optional"] != true || afterSchema["name"] != "ehr.public.patients.Value" {
		t.Fatalf("after schema %v", afterSchema)
	}
	names := map[string]any{}
	types := map[string]any{}
	for _, f := range afterSchema["fields"].([]any) {
		f := f.(map[string]any)
		names[f["field"].(string)] = f["name"]
		types[f["field"].(string)] = f["type"]
	}
	for col, want := range map[string]string{
		"birth_date":    "io.debezium.time.Date",
		"admitted_at":   "io.debezium.time.Timestamp",
		"updated_at":    "io.debezium.time.MicroTimestamp",
		"deceased_date": "org.apache.kafka.connect.data.Date",
		"consent_at":    "org.apache.kafka.connect.data.Timestamp",
		"verified_at":   "io.debezium.time.MicroTimestamp",
	} {
		if names[col] != want {
			t.Errorf("%s is named %v, want %s", col, names[col], want)
		}
	}
	if types["birth_date"] != "int32" || types["updated_at"] != "int64" || types["first_name"] != "string" {
		t.Errorf("types %v", types)
	}
}

// Schemas are fetched once per id; a registry that does not answer is a
// retriable failure, never an unreadable record; a record the registry has
// no schema for, or that its schema does not decode, is unreadable.
func TestAvroSourceFailures(t *testing.T) {
	w := newAvroWorld(t)
	good := w.encode(t, pgEnvelope{After: ehrRow(), Source: pgSource{TsMs: 1709285400500}, Op: "c"})
	key := w.encode(t, pgKey{ID: 42})

	t.Run("registry down", func(t *testing.T) {
		w.down.Store(true)
		defer w.down.Store(false)
		// (A tombstone's key is never decoded: a tombstone is no change.)
		for name, rec := range map[string][2][]byte{"value": {key, good}, "delete by key": {key, w.encode(t, pgEnvelope{Source: pgSource{TsMs: 1709285400500}, Op: "d"})}} {
			_, err := w.mapAvro(rec[0], rec[1])
			if !errors.Is(err, errSchemaUnavailable) || errors.Is(err, errUnreadable) || errors.Is(err, errUnmappable) {
				t.Fatalf("%s: error %v, want ErrSchemaUnavailable only", name, err)
			}
		}
		if w.failures.Load() == 0 {
			t.Fatal("the registry was never asked")
		}
	})

	t.Run("cached after the first fetch", func(t *testing.T) {
		if _, err := w.mapAvro(key, good); err != nil {
			t.Fatal(err)
		}
		n := w.lookups.Load()
		w.down.Store(true)
		defer w.down.Store(false)
		for range 3 {
			if _, err := w.mapAvro(key, good); err != nil {
				t.Fatalf("with the registry down after a fetch: %v", err)
			}
		}
		if w.lookups.Load() != n {
			t.Fatalf("%d more look-ups", w.lookups.Load()-n)
		}
	})

	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"unknown schema id", append([]byte{0, 0, 0, 0x7f, 0x7f}, good[5:]...)},
		{"header only", good[:5]},
		{"shorter than a header", good[:3]},
		{"body cut short", good[:len(good)-3]},
		{"bytes after the body", append(append([]byte{}, good...), 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.mapAvro(key, tc.value)
			if !errors.Is(err, errUnreadable) || errors.Is(err, errSchemaUnavailable) {
				t.Fatalf("error %v, want ErrUnreadable", err)
			}
		})
	}

	// A body is untrusted: a block count it cannot hold is an error, never
	// a loop of that many items.
	t.Run("array block count past the body", func(t *testing.T) {
		id, _, err := w.reg.RegisterSchema("ehr.public.flags-value", sr.Schema{Type: sr.TypeAvro,
			Schema: `{"type":"record","name":"Flags","fields":[{"name":"xs","type":{"type":"array","items":"null"}}]}`})
		if err != nil {
			t.Fatal(err)
		}
		// 0, id, then the block count 2^40 (zig-zag varint) and the end.
		v := []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
		v = binary.AppendVarint(v, 1<<40)
		v = append(v, 0)
		if _, err := w.avro.decode(v); !errors.Is(err, errUnreadable) {
			t.Fatalf("error %v, want ErrUnreadable", err)
		}
	})

	t.Run("no registry configured", func(t *testing.T) {
		for name, value := range map[string][]byte{"value": good} {
			_, err := w.sources.mapRecord(sourceRecord{Topic: "ehr.public.patients", Key: key, Value: value})
			if !errors.Is(err, errUnreadable) || !strings.Contains(err.Error(), "no schema registry") {
				t.Fatalf("%s: error %v", name, err)
			}
		}
	})

	// A delete's Avro key that does not decode names no id: it is never
	// taken for the id as it stands.
	t.Run("delete with an unknown key schema", func(t *testing.T) {
		_, err := w.mapAvro(append([]byte{0, 0, 0, 0x7f, 0x7e}, key[5:]...), w.encode(t, pgEnvelope{Source: pgSource{TsMs: 1709285400500}, Op: "d"}))
		if !errors.Is(err, errUnreadable) {
			t.Fatalf("error %v, want ErrUnreadable", err)
		}
	})
}

// The CDC stage reads Avro source records with the registry it is given,
// and turns a registry outage into a transient failure: the runner retries
// the record rather than sending it to the error topic.
func TestCDCAvroSource(t *testing.T) {
	w := newAvroWorld(t)
	cl, err := sr.NewClient(sr.URLs(w.reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	cdc, err := NewCDC(WithCodec(codec), WithSources(w.sources), WithSourceRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.NewHarness(cdc.Spec())
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "ehr.public.patients", Key: w.encode(t, pgKey{ID: 42}),
		Value: w.encode(t, pgEnvelope{After: ehrRow(), Source: pgSource{TsMs: 1709285400500}, Op: "c"})}

	w.down.Store(true)
	_, err = h.Process(rec)
	var transient *pipeline.TransientError
	if !errors.As(err, &transient) {
		t.Fatalf("registry down: error %v, want a transient one", err)
	}
	var rejected *pipeline.RecordError
	if errors.As(err, &rejected) {
		t.Fatalf("registry down: the record is rejected (%v)", err)
	}

	w.down.Store(false)
	out, err := h.Process(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Topic != ChangeTopic(Patient) || string(out[0].Key) != "42" {
		t.Fatalf("emitted %v", out)
	}
	var ev Event[PatientRecord]
	if err := codec.Decode(out[0].Value, Patient, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Payload.SourceSystem != "ehr" || ev.Payload.Gender == nil || *ev.Payload.Gender != "female" {
		t.Fatalf("payload %+v", ev.Payload)
	}
}

// customersEnvelope is the Avro schema the Avro converter registers for
// the Connect schema of the create event in Debezium's PostgreSQL
// connector documentation (testdata/sources/postgresql_create.json), as
// Confluent's AvroData writes one: structs as records named by
// connect.name, optional fields as unions with null (an optional field
// with a default puts its type first, the default's branch).
const customersEnvelope = `{"type":"record","name":"Envelope","namespace":"PostgreSQL_server.inventory.customers",
 "connect.name":"PostgreSQL_server.inventory.customers.Envelope","fields":[
 {"name":"before","type":["null",{"type":"record","name":"Value","connect.name":"PostgreSQL_server.inventory.customers.Value","fields":[
  {"name":"id","type":"int"},{"name":"first_name","type":"string"},{"name":"last_name","type":"string"},{"name":"email","type":"string"}]}],"default":null},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql",
  "connect.name":"io.debezium.connector.postgresql.Source","fields":[
  {"name":"version","type":"string"},{"name":"connector","type":"string"},{"name":"name","type":"string"},
  {"name":"ts_ms","type":"long"},{"name":"ts_us","type":"long"},{"name":"ts_ns","type":"long"},
  {"name":"snapshot","type":[{"type":"boolean","connect.default":false},"null"],"default":false},
  {"name":"db","type":"string"},{"name":"schema","type":"string"},{"name":"table","type":"string"},
  {"name":"txId","type":["null","long"],"default":null},{"name":"lsn","type":["null","long"],"default":null},
  {"name":"xmin","type":["null","long"],"default":null}]}},
 {"name":"op","type":"string"},
 {"name":"ts_ms","type":["null","long"],"default":null},
 {"name":"ts_us","type":["null","long"],"default":null},
 {"name":"ts_ns","type":["null","long"],"default":null}]}`

type customerRow struct {
	ID        int32  `json:"id" avro:"id"`
	FirstName string `json:"first_name" avro:"first_name"`
	LastName  string `json:"last_name" avro:"last_name"`
	Email     string `json:"email" avro:"email"`
}

type customerEvent struct {
	Before *customerRow `json:"before" avro:"before"`
	After  *customerRow `json:"after" avro:"after"`
	Source struct {
		Version   string `json:"version" avro:"version"`
		Connector string `json:"connector" avro:"connector"`
		Name      string `json:"name" avro:"name"`
		TsMs      int64  `json:"ts_ms" avro:"ts_ms"`
		TsUs      int64  `json:"ts_us" avro:"ts_us"`
		TsNs      int64  `json:"ts_ns" avro:"ts_ns"`
		Snapshot  *bool  `json:"snapshot" avro:"snapshot"`
		DB        string `json:"db" avro:"db"`
		Schema    string `json:"schema" avro:"schema"`
		Table     string `json:"table" avro:"table"`
		TxID      *int64 `json:"txId" avro:"txId"`
		LSN       *int64 `json:"lsn" avro:"lsn"`
		Xmin      *int64 `json:"xmin" avro:"xmin"`
	} `json:"source" avro:"source"`
	Op   string `json:"op" avro:"op"`
	TsMs *int64 `json:"ts_ms" avro:"ts_ms"`
	TsUs *int64 `json:"ts_us" avro:"ts_us"`
	TsNs *int64 `json:"ts_ns" avro:"ts_ns"`
}

// The documented create event, written by the Avro converter, decodes to
// exactly the documented JSON converter output: the same Connect schema and
// the same payload. (The documentation's payload carries a
// source.sequence its schema lacks; a record written with that schema
// cannot hold it, so it is left out of the comparison.)
func TestAvroSourceDecodesAsDocumentedJSON(t *testing.T) {
	w := newAvroWorld(t)
	b, err := os.ReadFile(filepath.Join("testdata", "sources", "postgresql_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Value struct {
			Schema  json.RawMessage `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ev customerEvent
	if err := json.Unmarshal(doc.Value.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	id, _, err := w.reg.RegisterSchema("PostgreSQL_server.inventory.customers-value", sr.Schema{Schema: customersEnvelope, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	s := avro.MustParse(customersEnvelope)
	serde := sr.NewSerde()
	serde.Register(id, customerEvent{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(s, v) }))
	value, err := serde.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.avro.decode(value)
	if err != nil {
		t.Fatal(err)
	}

	var want map[string]any
	d := json.NewDecoder(bytes.NewReader(doc.Value.Schema))
	d.UseNumber()
	var schema, payload any
	if err := d.Decode(&schema); err != nil {
		t.Fatal(err)
	}
	d = json.NewDecoder(bytes.NewReader(doc.Value.Payload))
	d.UseNumber()
	if err := d.Decode(&payload); err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"schema": schema, "payload": payload}
	delete(want["payload"].(map[string]any)["source"].(map[string]any), "sequence")
	normal := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var out any
		if err := d.Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if g, w := normal(got), normal(want); !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Fatalf("Avro decodes to\n%s\nthe documentation's JSON is\n%s", gb, wb)
	}
}

// A registry that answers a schema id look-up with a client error about
// the id (400, 404, 422) has said the record cannot be read: it goes to
// the error topic as a decode error. Any other answer (a server error, a
// timeout, a rate limit, a refused login) is not the record's fault: it is
// retried. Before, every answer but 404 was retried, forever, so a record
// with an id the registry refused stalled its partition for good.
func TestCDCRegistryAnswerDecidesWhoIsAtFault(t *testing.T) {
	w := newAvroWorld(t)
	cl, err := sr.NewClient(sr.URLs(w.reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status    int
		transient bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusNotFound, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			// A CDC stage of its own: no schema cached from another case.
			cdc, err := NewCDC(WithCodec(codec), WithSources(w.sources), WithSourceRegistry(cl))
			if err != nil {
				t.Fatal(err)
			}
			h, err := pipeline.NewHarness(cdc.Spec())
			if err != nil {
				t.Fatal(err)
			}
			w.status.Store(int32(tc.status))
			defer w.status.Store(0)
			rec := &kgo.Record{Topic: "ehr.public.patients", Key: w.encode(t, pgKey{ID: 42}),
				Value: w.encode(t, pgEnvelope{After: ehrRow(), Source: pgSource{TsMs: 1709285400500}, Op: "c"})}
			_, err = h.Process(rec)
			var transient *pipeline.TransientError
			var rejected *pipeline.RecordError
			switch {
			case tc.transient && !errors.As(err, &transient):
				t.Fatalf("registry answers %d: error %v, want a transient one (retried)", tc.status, err)
			case !tc.transient && (!errors.As(err, &rejected) || rejected.Type != pipeline.TypeDecode):
				t.Fatalf("registry answers %d: error %v, want a decode error (to the error topic)", tc.status, err)
			}
		})
	}
}
