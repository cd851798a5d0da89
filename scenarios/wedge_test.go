package scenarios

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

// The oversized poison record (issue 19): fhir.Observation allows 8 MB
// records, and one of about 5 MB arrives, which alerts refuses as oversized
// (its own limit is far lower). Its error record, the record whole plus
// error headers, is larger than clinical.alerts.errors allows (4 MiB).
// Wanted: a truncated error record (its coordinates, sizes, SHA-256 and as
// much of its head as fits), the partition moving on to the records behind
// it, their alerts, and the input offsets committed past the poison record.
//
// Regression: the error record was produced whole, the producer refused it,
// the transaction aborted and the same batch came back, for ever, while the
// instance stayed ready. On that code this test fails at its wait after 60
// s, with 2 commits and 983 aborts.
func TestWedgeOversizedPoisonRecordIsTruncated(t *testing.T) {
	const (
		inputLimit = 8 << 20 // fhir.Observation's max.message.bytes
		poisonSize = 5_000_000
		n          = 600
		// wait bounds the run; with the fix it takes a few seconds.
		wait = 60 * time.Second
	)
	w := newAlertsWorld(t)
	setTopicConfig(t, w.adm, alerts.TopicObservations, "max.message.bytes", strconv.Itoa(inputLimit))
	g := workload(t, 19, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(n)

	// The poison record goes first, keyed like an observation, so that the
	// records behind it on its partition wait for it. Its bytes are random,
	// so that compression cannot bring its error record under the limit.
	rng := rand.New(rand.NewPCG(19, 5))
	value := make([]byte, poisonSize)
	for i := range value {
		value[i] = byte(rng.UintN(256))
	}
	poison := &kgo.Record{
		Topic: alerts.TopicObservations,
		Key:   recs[0].Key,
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: "correlation-id", Value: []byte("wedge-19")},
			{Key: "content-type", Value: []byte("application/fhir+json")},
		},
	}
	big := w.client(kgo.ProducerBatchMaxBytes(inputLimit))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := big.ProduceSync(ctx, poison).FirstErr(); err != nil {
		t.Fatalf("producing the poison record: %v", err)
	}

	set := metrics.NewSet()
	in := w.start("", pipeline.WithMetrics(set))
	t.Cleanup(func() {
		if t.Failed() {
			s := in.Runner.Stats()
			t.Logf("at the failure: runner: %d records in, %d commits, %d aborts, %d session restarts",
				s.RecordsIn, s.Commits, s.Aborts, s.SessionRestarts)
		}
	})
	w.produce(recs)
	w.waitIdle(wait)

	committed, err := w.adm.FetchOffsets(ctx, w.spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := committed.Lookup(poison.Topic, poison.Partition); !ok || c.At <= poison.Offset {
		t.Errorf("partition %d committed at %d (found %v), want past the poison record's offset %d", poison.Partition, c.At, ok, poison.Offset)
	}
	// The partition moved on: every alert of the records behind the poison
	// record is there, once.
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), sim.ExpectedAlertIDs(truths))

	errs := w.readAll(w.spec.ErrorTopic)
	if len(errs) != 1 {
		t.Fatalf("%d records in %s, want the poison record's only", len(errs), w.spec.ErrorTopic)
	}
	e := errs[0]
	h := headerMap(e)
	sum := sha256.Sum256(value)
	keySum := sha256.Sum256(poison.Key)
	for k, want := range map[string]string{
		"error-type":                     string(pipeline.TypeTruncated),
		pipeline.HeaderOriginalErrorType: string(pipeline.TypeOversized),
		"source-topic":                   poison.Topic,
		"source-partition":               strconv.Itoa(int(poison.Partition)),
		"source-offset":                  strconv.FormatInt(poison.Offset, 10),
		pipeline.HeaderOriginalValueSize: strconv.Itoa(poisonSize),
		pipeline.HeaderOriginalValueHash: hex.EncodeToString(sum[:]),
		pipeline.HeaderOriginalKeyHash:   hex.EncodeToString(keySum[:]),
		pipeline.HeaderHeadersDropped:    "0",
		"correlation-id":                 "wedge-19",
		"content-type":                   "application/fhir+json",
	} {
		if h[k] != want {
			t.Errorf("error record header %s = %q, want %q", k, h[k], want)
		}
	}
	if string(e.Key) != string(poison.Key) {
		t.Errorf("error record key %q, want the poison record's", e.Key)
	}
	if len(e.Value) < 3<<20 || len(e.Value) >= poisonSize || string(e.Value) != string(value[:len(e.Value)]) {
		t.Errorf("error record value of %d bytes, want a head of the poison record of more than 3 MiB", len(e.Value))
	}
	if h[pipeline.HeaderValueHeadSize] != strconv.Itoa(len(e.Value)) {
		t.Errorf("header %s = %q, want %d", pipeline.HeaderValueHeadSize, h[pipeline.HeaderValueHeadSize], len(e.Value))
	}
	if got := set.GetOrCreateCounter(`carepipe_error_records_truncated_total{pipeline="alerts"}`).Get(); got != 1 {
		t.Errorf("carepipe_error_records_truncated_total{pipeline=alerts} = %d, want 1 (runner: %d aborts)", got, in.Runner.Stats().Aborts)
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
}
