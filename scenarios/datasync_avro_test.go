package scenarios

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/sim"
)

// A Debezium PostgreSQL envelope as the Avro converter registers it (the
// shape of Debezium's "Data change events", reduced to what carepipe reads).
const avroPatientsEnvelope = `{"type":"record","name":"Envelope","namespace":"ehr.public.patients",
 "connect.name":"ehr.public.patients.Envelope","fields":[
 {"name":"before","default":null,"type":["null",{"type":"record","name":"Value","connect.name":"ehr.public.patients.Value","fields":[
  {"name":"id","type":"int"},
  {"name":"last_name","type":["null","string"],"default":null},
  {"name":"sex","type":["null","string"],"default":null}]}]},
 {"name":"after","type":["null","Value"],"default":null},
 {"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql",
  "fields":[{"name":"ts_ms","type":"long"},{"name":"table","type":"string"}]}},
 {"name":"op","type":"string"},
 {"name":"ts_ms","type":["null","long"],"default":null}]}`

type avroPatientRow struct {
	ID       int32   `avro:"id"`
	LastName *string `avro:"last_name"`
	Sex      *string `avro:"sex"`
}

type avroPatientEnvelope struct {
	Before *avroPatientRow `avro:"before"`
	After  *avroPatientRow `avro:"after"`
	Source struct {
		TsMs  int64  `avro:"ts_ms"`
		Table string `avro:"table"`
	} `avro:"source"`
	Op   string `avro:"op"`
	TsMs *int64 `avro:"ts_ms"`
}

// Issue 18: a Debezium table attached by a sources file and written by the
// Avro converter. While the schema registry does not answer, the CDC stage
// sends nothing to data.sync.errors and publishes nothing; once it answers,
// every record's change is published exactly once, and only a record that
// cannot be decoded lands on the error topic.
func TestDataSyncAvroSourceThroughRegistryOutage(t *testing.T) {
	c := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var down atomic.Bool
	var refused atomic.Int64
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if down.Load() && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			refused.Add(1)
			http.Error(w, `{"error_code":50003,"message":"unavailable"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	rcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	codec, err := datasync.Register(ctx, rcl)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := datasync.ParseSources([]byte("sources:\n" +
		"  - topic: ehr.public.patients\n    system: ehr\n    entity: patient\n" +
		"    columns: {id: [id], lastName: [last_name], gender: [sex]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cdc, err := datasync.NewCDC(datasync.WithCodec(codec), datasync.WithSources(sources), datasync.WithSourceRegistry(rcl))
	if err != nil {
		t.Fatal(err)
	}
	spec := cdc.Spec()
	adm := kadm.NewClient(kafkatest.Client(t, c.ClientOpts()))
	if err := pipeline.CreateTopics(ctx, adm, &spec, 3, 1); err != nil {
		t.Fatal(err)
	}

	id, _, err := reg.RegisterSchema("ehr.public.patients-value", sr.Schema{Schema: avroPatientsEnvelope, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	schema := avro.MustParse(avroPatientsEnvelope)
	serde := sr.NewSerde()
	serde.Register(id, avroPatientEnvelope{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(schema, v) }))
	const n = 30
	var recs []*kgo.Record
	for i := range int32(n) {
		name, sex := "Ortiz", "F"
		env := avroPatientEnvelope{After: &avroPatientRow{ID: i + 1, LastName: &name, Sex: &sex}, Op: "c"}
		env.Source.TsMs = 1709285400000 + int64(i)
		env.Source.Table = "patients"
		v, err := serde.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "ehr.public.patients", Key: []byte{byte('a' + i%26)}, Value: v})
	}
	down.Store(true)
	prod := kafkatest.Client(t, c.ClientOpts())
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sim.Produce(pctx, prod, recs); err != nil {
		t.Fatal(err)
	}
	kafkatest.StartRunner(t, spec,
		pipeline.WithKafka(c.ClientOpts()...),
		pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithLogger(testLogger()))
	kafkatest.Eventually(t, 30*time.Second, "the CDC stage to meet the registry outage twice", func() bool { return refused.Load() >= 2 })
	read := func(topic string) []*kgo.Record {
		return kafkatest.ReadToEnd(ctx, t, c.ClientOpts(), topic)
	}
	if got := read(datasync.TopicErrors); len(got) != 0 {
		t.Fatalf("%d records on the error topic during the outage", len(got))
	}
	down.Store(false)

	// A record no schema decodes, after the good ones: the error topic's
	// first record must be it.
	poison := append([]byte{0, 0, 0, 0x7f, 0x7f}, recs[0].Value[5:]...)
	if err := sim.Produce(pctx, prod, []*kgo.Record{{Topic: "ehr.public.patients", Key: []byte("z"), Value: poison}}); err != nil {
		t.Fatal(err)
	}
	var changes []*kgo.Record
	kafkatest.Eventually(t, time.Minute, "every change published", func() bool {
		changes = read(datasync.ChangeTopic(datasync.Patient))
		return len(changes) >= n
	})
	var errs []*kgo.Record
	kafkatest.Eventually(t, time.Minute, "the undecodable record on the error topic", func() bool {
		errs = read(datasync.TopicErrors)
		return len(errs) >= 1
	})
	var ids []string
	for _, r := range changes {
		ids = append(ids, string(r.Key))
		// Keys are plain UTF-8 strings, the canonical id, as Kafka's
		// StringSerializer writes them: not in the registry's wire format.
		var ev datasync.Event[datasync.PatientRecord]
		if err := codec.Decode(r.Value, datasync.Patient, &ev); err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(r.Key) || len(r.Key) == 0 || r.Key[0] == 0 || ev.Payload == nil || string(r.Key) != ev.Payload.ID {
			t.Fatalf("change keyed %q for canonical id %+v; want the id as a UTF-8 string", r.Key, ev.Payload)
		}
	}
	slices.Sort(ids)
	if len(ids) != n || len(slices.Compact(slices.Clone(ids))) != n {
		t.Fatalf("changes for %d ids, %d distinct; want each of %d once: %v", len(ids), len(slices.Compact(slices.Clone(ids))), n, ids)
	}
	if len(errs) != 1 || string(errs[0].Key) != "z" {
		t.Fatalf("error topic holds %d records, the first keyed %q; want only the undecodable one", len(errs), errs[0].Key)
	}
}
