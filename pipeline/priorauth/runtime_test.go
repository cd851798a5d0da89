package priorauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/sim"
)

// runtimeCluster is a kfake cluster with the orchestrator's topics (4
// partitions), a client, an admin client, and the orchestrator with its Spec.
type runtimeCluster struct {
	c    *sim.Cluster
	cl   *kgo.Client
	adm  *kadm.Client
	p    *Processor
	spec pipeline.Spec
}

// newRuntimeCluster starts a runtimeCluster; extra are the client's options.
func newRuntimeCluster(t *testing.T, extra ...kgo.Opt) runtimeCluster {
	t.Helper()
	c := kafkatest.NewCluster(t)
	cl := kafkatest.Client(t, c.ClientOpts(), extra...)
	adm := kadm.NewClient(cl)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec()
	if err := pipeline.CreateTopics(context.Background(), adm, &spec, 4, 1); err != nil {
		t.Fatal(err)
	}
	return runtimeCluster{c: c, cl: cl, adm: adm, p: p, spec: spec}
}

// TestOnRuntime runs the orchestrator on the real runtime against kfake,
// playing the outside world by hand: a prescription keyed by its own id is
// re-keyed and initiated, later events keyed by the prior-auth id move it
// on, a repeated event changes nothing, an event for an unknown prior
// authorization goes to the error topic, the query API answers from local
// state, and the decision deadline fires once from the injected clock.
func TestOnRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster")
	}
	rc := newRuntimeCluster(t)
	c, cl, p, spec := rc.c, rc.cl, rc.p, rc.spec
	spec.PunctuateEvery = 20 * time.Millisecond
	clock := sim.NewVirtualClock(t0)
	r := kafkatest.StartRunner(t, spec, pipeline.WithKafka(c.ClientOpts()...), pipeline.WithCommitInterval(20*time.Millisecond), pipeline.WithClock(clock)).Runner

	produce := func(topic, key, value string) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer pcancel()
		rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("corr-rx-1")}}}
		if err := cl.ProduceSync(pctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	readUntil := func(topic string, n int) []*kgo.Record {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return kafkatest.ReadN(ctx, t, c.ClientOpts(), n, topic)
	}
	readAll := func(topic string) []*kgo.Record {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return kafkatest.ReadToEnd(ctx, t, c.ClientOpts(), topic)
	}

	id := PriorAuthID("rx-1")
	produce(TopicPrescriptions, "rx-1", `{"prescriptionId":"rx-1","patientId":"pat-1","providerId":"prov-1","medication":{"name":"Apixaban","code":"1364445","category":"anticoagulant"},"payerId":"PAYER001","pharmacyId":"ph-1"}`)
	docs := readUntil(TopicDocumentationRequested, 1)
	if string(docs[0].Key) != id || envelope.HeaderValue(docs[0], "correlation-id") != "corr-rx-1" {
		t.Fatalf("documentation request keyed %s, headers %v", docs[0].Key, docs[0].Headers)
	}
	produce(TopicDocumentationAssembled, id, `{"priorAuthId":"`+id+`","documents":[{"type":"lab-results"}]}`)
	produce(TopicDocumentationAssembled, id, `{"priorAuthId":"`+id+`","documents":[{"type":"lab-results"}]}`) // repeated
	produce(TopicSubmissionCompleted, id, `{"priorAuthId":"`+id+`","submissionId":"sub-1","submissionDate":"2025-03-01T12:00:00Z","submissionMethod":"ELECTRONIC","payerId":"PAYER001"}`)
	produce(TopicDeterminationReceived, "pa-unknown", `{"priorAuthId":"pa-unknown","determinationStatus":"APPROVED"}`)
	statuses := readUntil(TopicStatus, 3)
	if n := len(readUntil(TopicSubmissionRequested, 1)); n != 1 {
		t.Fatalf("%d submission requests", n)
	}
	errs := readUntil(TopicErrors, 1)
	if !strings.Contains(envelope.HeaderValue(errs[0], "error-message"), "unknown prior authorization") {
		t.Errorf("error record headers %v", errs[0].Headers)
	}

	// The query API answers from local state.
	srv := httptest.NewServer(QueryHandler(r))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/priorauth/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.NewDecoder(res.Body).Decode(&rec); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d, %v", res.StatusCode, err)
	}
	res.Body.Close()
	if rec.Status != StatusSubmitted || len(rec.StatusHistory) != 3 || rec.Submission == nil || len(statuses) != 3 {
		t.Errorf("record %+v; %d status records", rec, len(statuses))
	}
	res, err = http.Get(srv.URL + "/api/priorauth/pa-nothing")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", res.StatusCode)
	}
	res, err = http.Get(srv.URL + "/api/priorauth?status=SUBMITTED&limit=10")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []record }
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil || len(list.Items) != 1 {
		t.Errorf("list: %+v, %v", list, err)
	}
	res.Body.Close()

	// Past the expedited deadline (24 h from submission), the breach fires
	// once; status checks fired on the way.
	clock.Set(time.Date(2025, 3, 2, 12, 0, 1, 0, time.UTC))
	breach := readUntil(TopicSLABreached, 1)
	checks := readUntil(TopicStatusCheckRequested, 1)
	if string(breach[0].Key) != id || len(checks) == 0 {
		t.Fatalf("breach %v, checks %d", breach, len(checks))
	}
	// A later event: once the determination's status record is read, a
	// second breach would have been read before it.
	produce(TopicDeterminationReceived, id, `{"priorAuthId":"`+id+`","determinationStatus":"APPROVED","determinationDate":"2025-03-02T13:00:00Z"}`)
	readUntil(TopicStatus, 4)
	if n := len(readAll(TopicSLABreached)); n != 1 {
		t.Errorf("%d breaches, want one", n)
	}
	if n := len(readAll(TopicSubmissionRequested)); n != 1 {
		t.Errorf("%d submission requests for a repeated documentation event, want one", n)
	}
	if n := p.duplicates.Get(); n != 1 {
		t.Errorf("duplicates counted %d, want the repeated documentation event", n)
	}
}

// While an assigned partition's state is being restored, the query API
// answers 503 with Retry-After for an id on it, not a 404 that would say
// another instance owns it or that it does not exist. Every fetch of the
// store's changelog is held, so every partition stays restoring.
func TestQueryWhileRestoring(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster")
	}
	rc := newRuntimeCluster(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	c, cl, adm, spec := rc.c, rc.cl, rc.adm, rc.spec
	changelog := pipeline.ChangelogTopic(Group, StorePriorAuths)
	td, err := adm.ListTopics(context.Background(), changelog)
	if err != nil || td[changelog].Err != nil {
		t.Fatalf("listing %s: %v", changelog, err)
	}
	id := td[changelog].ID
	// Something to restore in every partition.
	for part := range int32(4) {
		rec := &kgo.Record{Topic: changelog, Partition: part, Key: []byte("k"), Value: []byte("{}")}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	k := c.Kafka()
	k.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, ft := range req.(*kmsg.FetchRequest).Topics {
			if ft.Topic == changelog || ft.TopicID == id {
				select {
				case held <- struct{}{}:
				default:
				}
				k.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})

	r := kafkatest.StartRunner(t, spec, pipeline.WithKafka(c.ClientOpts()...)).Runner
	// Registered after the runner's stop: runs first, so that the held
	// restore lets the runner stop.
	t.Cleanup(func() { close(release) })
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("no restore of the changelog began")
	}
	if r.Ready() {
		t.Error("ready while restoring")
	}
	rec := httptest.NewRecorder()
	QueryHandler(r).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/priorauth/"+PriorAuthID("rx-1"), nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "restoring") {
		t.Errorf("while restoring: %d, Retry-After %q, %s; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}
