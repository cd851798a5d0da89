package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/sim/check"
)

// syncWorld is a cluster with the data synchronization topics, a schema
// registry with carepipe's schemas, and a clock shared by the stages.
type syncWorld struct {
	t       *testing.T
	cluster *sim.Cluster
	prod    *kgo.Client
	adm     *kadm.Client
	codec   *datasync.Codec
	clock   *sim.VirtualClock
	rc      datasync.ReconcileConfig
	// registry is the schema registry the stages are built with.
	registry *sr.Client
}

func newSyncWorld(t *testing.T, opts ...sim.ClusterOption) *syncWorld {
	t.Helper()
	c := kafkatest.NewCluster(t, opts...)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	rcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	w := &syncWorld{t: t, cluster: c, rc: datasync.DefaultReconcileConfig(), registry: rcl}
	w.rc.Deadline = time.Minute
	if w.codec, err = datasync.Register(context.Background(), rcl); err != nil {
		t.Fatal(err)
	}
	w.prod = w.client()
	w.adm = kadm.NewClient(w.client())
	// The targets' acknowledgements carry their own (wall) clock: the
	// stages' clock starts at the wall clock so durations are real.
	w.clock = sim.NewVirtualClock(time.Now().Truncate(time.Millisecond))
	for _, s := range []pipeline.Spec{w.cdcSpec(), w.validationSpec(), w.reconcileSpec()} {
		if err := pipeline.CreateTopics(context.Background(), w.adm, &s, testPartitions, 1); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *syncWorld) client(opts ...kgo.Opt) *kgo.Client {
	w.t.Helper()
	return kafkatest.Client(w.t, w.cluster.ClientOpts(), opts...)
}

// cdcSpec, validationSpec and reconcileSpec are the stages' specs as the
// binary builds them: from the catalog.
func (w *syncWorld) cdcSpec() pipeline.Spec { return w.stageSpec(catalog.StageCDC) }

func (w *syncWorld) validationSpec() pipeline.Spec { return w.stageSpec(catalog.StageValidation) }

func (w *syncWorld) reconcileSpec() pipeline.Spec { return w.stageSpec(catalog.StageReconciliation) }

func (w *syncWorld) stageSpec(stage string) pipeline.Spec {
	w.t.Helper()
	return stageSpec(w.t, catalog.Settings{Registry: w.registry, Reconcile: &w.rc}, datasync.Name, stage)
}

// start runs one stage's instance as the binary builds it.
func (w *syncWorld) start(spec pipeline.Spec, instanceID string) *kafkatest.Instance {
	w.t.Helper()
	return kafkatest.StartRunner(w.t, spec,
		pipeline.WithKafka(w.cluster.ClientOpts()...),
		pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithInstanceID(instanceID),
		pipeline.WithLogger(testLogger()),
		pipeline.WithClock(w.clock))
}

func (w *syncWorld) read(topic string) []*kgo.Record {
	w.t.Helper()
	return kafkatest.ReadToEnd(context.Background(), w.t, w.cluster.ClientOpts(), topic)
}

// waitCaughtUp waits until each stage's group has committed past the last
// record of each of its inputs and repartition topics.
func (w *syncWorld) waitCaughtUp(specs ...pipeline.Spec) {
	w.t.Helper()
	// Generous: alone this takes seconds, but CI runs every package at
	// once under the race detector on two cores.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kafkatest.WaitCaughtUp(ctx, w.t, w.cluster.ClientOpts(), specs...)
}

type coords struct {
	topic     string
	partition int32
	offset    int64
}

func coordsOf(r *kgo.Record) coords { return coords{r.Topic, r.Partition, r.Offset} }

// Issue 5: a mixed stream of 5,000 source records (every source variant,
// Debezium envelopes and tombstones; invalid, undecodable, duplicate, stale
// and concurrent updates) yields exactly the validated and error records its
// construction says, with the validation stage restarted half way (its
// state restored from its changelog). Every error record holds its
// original record whole.
func TestDataSyncMixedStreamExactOutcome(t *testing.T) {
	w := newSyncWorld(t)
	recs, truth := sim.DataSyncRecords(11, 5000)
	cdc := w.start(w.cdcSpec(), "cdc-1")
	val := w.start(w.validationSpec(), "val-1")
	produceAll(t, w.prod, recs[:2500])
	w.waitCaughtUp(w.cdcSpec(), w.validationSpec())
	if err := val.Stop(); err != nil {
		t.Fatal(err)
	}
	w.start(w.validationSpec(), "val-1")
	produceAll(t, w.prod, recs[2500:])
	w.waitCaughtUp(w.cdcSpec(), w.validationSpec())
	if err := cdc.Stop(); err != nil {
		t.Fatal(err)
	}
	w.checkMixedOutcome(recs, truth)
	w.checkStore(truth)
}

// Issue 6 (rebalance mid-batch, instances joining and leaving): the same
// mixed stream, produced in three parts while validation instances join
// (two more, mid-stream) and leave (the first, then the second, each
// handing its partitions and their state to the others), yields exactly
// the same validated and error records.
func TestDataSyncRebalanceMidStreamExactOutcome(t *testing.T) {
	w := newSyncWorld(t)
	recs, truth := sim.DataSyncRecords(17, 5000)
	cdc := w.start(w.cdcSpec(), "cdc-1")
	val1 := w.start(w.validationSpec(), "val-1")
	third := len(recs) / 3
	produceAll(t, w.prod, recs[:third])
	val2 := w.start(w.validationSpec(), "val-2")
	val3 := w.start(w.validationSpec(), "val-3")
	produceAll(t, w.prod, recs[third:2*third])
	// The joiners took partitions over: they processed records.
	kafkatest.Eventually(t, 30*time.Second, "the joining instances processing", func() bool {
		return val2.Runner.Stats().RecordsIn > 0 && val3.Runner.Stats().RecordsIn > 0
	})
	if err := val1.Stop(); err != nil {
		t.Fatal(err)
	}
	produceAll(t, w.prod, recs[2*third:])
	if err := val2.Stop(); err != nil {
		t.Fatal(err)
	}
	w.waitCaughtUp(w.cdcSpec(), w.validationSpec())
	if err := cdc.Stop(); err != nil {
		t.Fatal(err)
	}
	w.checkMixedOutcome(recs, truth)
	// State: after two hand-overs, what a restore loads is, for every
	// entity, what the entity's last validated record says.
	w.checkStore(truth)
}

// heldEntities reads the validation store as any restore would load it
// (its changelog, read_committed, last value per key) and gives each
// entity key the shape state makes of its version, deletion and fields.
func (w *syncWorld) heldEntities(state func(version int64, deleted bool, fields datasync.Fields) any) map[string]any {
	w.t.Helper()
	held := map[string]any{}
	for k, b := range check.Changelog(w.read(pipeline.ChangelogTopic(datasync.GroupValidation, datasync.StoreEntities))) {
		st, err := datasync.UnmarshalState(b)
		if err != nil {
			w.t.Fatal(err)
		}
		e, id, _ := strings.Cut(k, "/")
		ch := st.Materialize(datasync.Entity(e), id)
		held[k] = state(st.Version, ch.Op == datasync.OpDelete, ch.Fields)
	}
	return held
}

// checkStore checks the validation store, as any restore would load it
// (its changelog, read_committed, last value per key), against the model
// the workload's truth works out from the inputs: every entity with a
// validated record held, at its version, deleted or with exactly its
// fields, and nothing else held. The last validated record of each entity
// must say the same.
func (w *syncWorld) checkStore(truth sim.DataSyncTruth) {
	t := w.t
	t.Helper()
	model := truth.StateModel()
	if len(model) == 0 {
		t.Fatal("no entity to check")
	}
	held := w.heldEntities(func(version int64, deleted bool, fields datasync.Fields) any {
		return entityState(version, deleted, fields)
	})
	if rep := check.States(model, held); rep.Problems() > 0 {
		t.Errorf("validation store against the model: %d missing, %d extra, %d mismatched of %d; %s",
			rep.Missing, rep.Extra, rep.Mismatched, len(model), strings.Join(rep.Examples, "; "))
	}
	published := map[string]any{}
	for _, e := range datasync.Entities() {
		for _, r := range w.read(datasync.ValidatedTopic(e)) {
			_, op, version, rec, err := w.codec.DecodeValue(r.Value, e)
			if err != nil {
				t.Fatal(err)
			}
			var fields datasync.Fields
			if op != string(datasync.OpDelete) {
				if fields, err = datasync.FieldsOf(rec); err != nil {
					t.Fatal(err)
				}
			}
			published[string(e)+"/"+string(r.Key)] = entityState(version, op == string(datasync.OpDelete), fields)
		}
	}
	if rep := check.States(model, published); rep.Problems() > 0 {
		t.Errorf("last validated records against the model: %d missing, %d extra, %d mismatched of %d; %s",
			rep.Missing, rep.Extra, rep.Mismatched, len(model), strings.Join(rep.Examples, "; "))
	}
}

// entityState is an entity in the shape of sim.DataSyncTruth.StateModel.
func entityState(version int64, deleted bool, fields datasync.Fields) map[string]any {
	return map[string]any{"version": version, "deleted": deleted, "fields": fields}
}

// checkMixedOutcome checks that the source records recs, with their truth,
// yielded exactly the validated and error records the truth says.
func (w *syncWorld) checkMixedOutcome(recs []*kgo.Record, truth sim.DataSyncTruth) {
	t := w.t
	t.Helper()
	produced := map[coords][]byte{}
	for _, r := range recs {
		produced[coordsOf(r)] = r.Value
	}
	entityOfSource := map[string]string{}
	for _, topic := range datasync.SourceTopics() {
		_, e, _ := datasync.EntityOfSourceTopic(topic)
		entityOfSource[topic] = string(e)
	}
	for _, e := range datasync.Entities() {
		for _, r := range w.read(datasync.ChangeTopic(e)) {
			produced[coordsOf(r)] = r.Value
		}
		entityOfSource[datasync.ChangeTopic(e)] = string(e)
	}

	for _, e := range datasync.Entities() {
		applied, resolved := 0, 0
		last := map[string]int64{}
		for _, r := range w.read(datasync.ValidatedTopic(e)) {
			h := headerMap(r)
			switch h[datasync.HeaderConflictResolved] {
			case "true":
				resolved++
			case "false":
				applied++
			default:
				t.Errorf("%s: validated record without a conflict-resolved header", e)
			}
			if h["correlation-id"] == "" || h[datasync.HeaderEntityType] != string(e) || h[datasync.HeaderOperationType] == "" {
				t.Errorf("%s: validated record headers %v", e, h)
			}
			_, _, version, _, err := w.codec.DecodeValue(r.Value, e)
			if err != nil {
				t.Fatalf("%s: validated value does not decode: %v", e, err)
			}
			id := string(r.Key)
			if version != last[id]+1 {
				t.Errorf("%s %s: version %d after %d", e, id, version, last[id])
			}
			last[id] = version
		}
		if applied != truth.Applied[string(e)] || resolved != truth.ConflictResolved[string(e)] {
			t.Errorf("%s: %d validated and %d conflict-resolved, want %d and %d",
				e, applied, resolved, truth.Applied[string(e)], truth.ConflictResolved[string(e)])
		}
		for id, n := range truth.Versions[string(e)] {
			if last[id] != int64(n) {
				t.Errorf("%s %s: last version %d, want %d", e, id, last[id], n)
			}
		}
	}

	errs := map[string]map[string]int{}
	for _, r := range w.read(datasync.TopicErrors) {
		h := headerMap(r)
		e := entityOfSource[h["source-topic"]]
		if errs[e] == nil {
			errs[e] = map[string]int{}
		}
		errs[e][h["error-type"]]++
		orig, err := datasync.OriginalValue(r.Value)
		if err != nil {
			t.Fatalf("error record value is not the error record: %v", err)
		}
		off, _ := strconv.ParseInt(h["source-offset"], 10, 64)
		part, _ := strconv.ParseInt(h["source-partition"], 10, 32)
		want, ok := produced[coords{h["source-topic"], int32(part), off}]
		if !ok || string(orig) != string(want) {
			t.Errorf("error record from %s@%s/%s does not hold its original value whole", h["source-topic"], h["source-partition"], h["source-offset"])
		}
	}
	for _, e := range datasync.Entities() {
		want := map[string]int{
			"conflict": truth.Stale[string(e)],
			"invalid":  truth.Invalid[string(e)],
			"decode":   truth.Undecodable[string(e)],
		}
		for class, n := range want {
			if errs[string(e)][class] != n {
				t.Errorf("%s: %d error records of class %s, want %d", e, errs[string(e)][class], class, n)
			}
		}
		for class, n := range errs[string(e)] {
			if _, ok := want[class]; !ok {
				t.Errorf("%s: %d unexpected error records of class %s", e, n, class)
			}
		}
	}
}

// Issue 5: reconciliation completes, with its real duration, for every
// entity whose targets all acknowledge its latest version, and the overdue
// timer fires once for each of the others, across a restart of the
// reconciliation stage. The patient read model shows the current record and
// its history.
func TestDataSyncReconciliationCompletesOrGoesOverdueAcrossRestart(t *testing.T) {
	w := newSyncWorld(t)
	recs, truth := sim.DataSyncRecords(23, 600)
	tcfg := sim.SyncTargetsConfig{
		Seed: 5, Targets: datasync.DefaultTargets(), Delay: 5 * time.Millisecond, Fail: 0.2, Drop: 0.1,
		Read: func(r *kgo.Record) (string, string, int64, bool) {
			e, ok := datasync.EntityOfValidatedTopic(r.Topic)
			if !ok {
				return "", "", 0, false
			}
			_, _, v, _, err := w.codec.DecodeValue(r.Value, e)
			return string(e), string(r.Key), v, err == nil
		},
	}
	targets, err := sim.StartSyncTargets(w.cluster, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(targets.Close)
	w.start(w.cdcSpec(), "cdc-1")
	w.start(w.validationSpec(), "val-1")
	rec := w.start(w.reconcileSpec(), "rec-1")
	produceAll(t, w.prod, recs)

	// Which entities complete: those none of whose targets drops the
	// latest version.
	type key struct{ entity, id string }
	complete, overdue := map[key]int64{}, map[key]int64{}
	for e, ids := range truth.Versions {
		for id, v := range ids {
			if v == 0 {
				continue
			}
			k := key{e, id}
			overdue[k] = int64(v)
			dropped := false
			for _, tg := range tcfg.Targets {
				dropped = dropped || tcfg.Drops(tg, id, int64(v))
			}
			if !dropped {
				complete[k] = int64(v)
				delete(overdue, k)
			}
		}
	}
	if len(complete) == 0 || len(overdue) == 0 {
		t.Fatalf("workload has %d completing and %d overdue entities; want some of each", len(complete), len(overdue))
	}
	completedOf := func() map[key][]int64 {
		m := map[key][]int64{}
		for _, e := range datasync.Entities() {
			for _, r := range w.read(datasync.CompletedTopic(e)) {
				var v struct {
					EntityType     string
					EntityID       string
					Version        int64
					SyncDurationMs int64
				}
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatal(err)
				}
				if v.SyncDurationMs < 0 || v.SyncDurationMs > time.Minute.Milliseconds() {
					t.Errorf("%s %s: sync duration %d ms", v.EntityType, v.EntityID, v.SyncDurationMs)
				}
				k := key{v.EntityType, v.EntityID}
				m[k] = append(m[k], v.Version)
			}
		}
		return m
	}
	kafkatest.Eventually(t, 60*time.Second, "every reconciliation completed", func() bool {
		got := completedOf()
		for k, v := range complete {
			vs := got[k]
			if len(vs) == 0 || vs[len(vs)-1] != v {
				return false
			}
		}
		return true
	})
	if err := rec.Stop(); err != nil {
		t.Fatal(err)
	}

	// The restarted stage holds the deadlines: past them, each entity
	// whose latest version lacks an acknowledgement is overdue, once.
	rec = w.start(w.reconcileSpec(), "rec-1")
	w.clock.Advance(2 * w.rc.Deadline)
	overdueOf := func() map[key][]int64 {
		m := map[key][]int64{}
		for _, e := range datasync.Entities() {
			for _, r := range w.read(datasync.OverdueTopic(e)) {
				var v struct {
					EntityType string
					EntityID   string
					Version    int64
					Missing    []string `json:"missingTargets"`
				}
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatal(err)
				}
				if len(v.Missing) == 0 {
					t.Errorf("%s %s: overdue without missing targets", v.EntityType, v.EntityID)
				}
				k := key{v.EntityType, v.EntityID}
				m[k] = append(m[k], v.Version)
			}
		}
		return m
	}
	kafkatest.Eventually(t, 60*time.Second, "every overdue reconciliation reported", func() bool {
		got := overdueOf()
		for k, v := range overdue {
			vs := got[k]
			if len(vs) == 0 || vs[len(vs)-1] != v {
				return false
			}
		}
		return true
	})

	// A second restart and another deadline later, with one new patient
	// whose targets are gone: its overdue report shows the stage
	// punctuated past the deadline again, and nothing else is repeated.
	targets.Close()
	if err := rec.Stop(); err != nil {
		t.Fatal(err)
	}
	rec = w.start(w.reconcileSpec(), "rec-1")
	late := fmt.Sprintf(`{"id":"late-1","firstName":"Ada","lastName":"Byron","dateOfBirth":"1990-12-10","gender":"female","lastUpdated":%d}`, w.clock.Now().UnixMilli())
	produceAll(t, w.prod, []*kgo.Record{{Topic: "source.ehr.patient", Key: []byte("late-1"), Value: []byte(late)}})
	kafkatest.Eventually(t, 60*time.Second, "the late patient validated", func() bool {
		_, ok := rec.Runner.Lookup(datasync.StoreAggregates, datasync.AggregateKey(datasync.Patient, "late-1"))
		return ok
	})
	w.clock.Advance(2 * w.rc.Deadline)
	kafkatest.Eventually(t, 60*time.Second, "the late patient overdue", func() bool {
		return len(overdueOf()[key{"patient", "late-1"}]) > 0
	})
	got := overdueOf()
	for k, vs := range got {
		if len(vs) != 1 {
			t.Errorf("%v: overdue %d times (versions %v), want once", k, len(vs), vs)
		}
		if _, ok := complete[k]; ok {
			t.Errorf("%v: overdue although every target acknowledged it", k)
		}
	}
	for k, vs := range completedOf() {
		seen := map[int64]bool{}
		for _, v := range vs {
			if seen[v] {
				t.Errorf("%v: version %d completed twice", k, v)
			}
			seen[v] = true
		}
	}

	// The read model: a patient's current record and history.
	h := datasync.QueryHandler(rec.Runner)
	var pid string
	for k := range complete {
		if k.entity == "patient" {
			pid = k.id
			break
		}
	}
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/api/patients/"+pid, nil))
	if rw.Code != http.StatusOK {
		t.Fatalf("GET /api/patients/%s: %d %s", pid, rw.Code, rw.Body)
	}
	var agg struct {
		ID               string            `json:"entityId"`
		Version          int64             `json:"version"`
		Current          json.RawMessage   `json:"current"`
		History          []json.RawMessage `json:"history"`
		CompletedVersion int64             `json:"completedVersion"`
	}
	if err := json.Unmarshal(rw.Body.Bytes(), &agg); err != nil {
		t.Fatal(err)
	}
	if agg.ID != pid || agg.Version != complete[key{"patient", pid}] || int64(len(agg.History)) != agg.Version || len(agg.Current) == 0 {
		t.Errorf("read model of %s: version %d, %d history entries, current %s", pid, agg.Version, len(agg.History), agg.Current)
	}
	if agg.CompletedVersion != agg.Version {
		t.Errorf("read model of %s: completed version %d of %d", pid, agg.CompletedVersion, agg.Version)
	}
	rw = httptest.NewRecorder()
	h.ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/api/patients/nobody", nil))
	if rw.Code != http.StatusNotFound {
		t.Errorf("unknown patient: %d", rw.Code)
	}
}

// Issue 5: reconciliation decides from the acknowledgements themselves, not
// from the order the validated and target topics happen to be read in: an
// acknowledgement before its version (with a version number, or without
// one but with a syncTimestamp after the validation), a failure followed
// by a success, a late acknowledgement of an older version, a delete, and a
// redelivered validated record each give exactly one completion of the
// right version; an entity with acknowledgements only is not in the read
// model.
func TestDataSyncReconciliationAckOrders(t *testing.T) {
	w := newSyncWorld(t)
	rec := w.start(w.reconcileSpec(), "rec-1")
	validatedAt := w.clock.Now().UnixMilli()
	validated := func(id string, version int64, op string) *kgo.Record {
		ev := &datasync.Event[datasync.PatientRecord]{
			Metadata: datasync.Metadata{EventID: fmt.Sprintf("%s-%d", id, version), EventType: datasync.ValidatedTopic(datasync.Patient),
				EventSource: datasync.EventSourceValidation, SourceSystem: "ehr", CorrelationID: "c-" + id, Timestamp: validatedAt},
			Operation: op, Version: version,
			Payload: &datasync.PatientRecord{System: datasync.System{ID: id, SourceID: "ehr:" + id, LastUpdated: validatedAt, Version: version, SourceSystem: "ehr"}},
		}
		v, err := w.codec.Encode(nil, datasync.ValidatedTopic(datasync.Patient), ev)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: datasync.ValidatedTopic(datasync.Patient), Key: []byte(id), Value: v}
	}
	ack := func(target, id string, version int64, status string, at int64) *kgo.Record {
		m := map[string]any{"entityType": "patient", "entityId": id, "syncStatus": status, "syncTimestamp": at}
		if version > 0 {
			m["version"] = version
		}
		v, _ := json.Marshal(m)
		return &kgo.Record{Topic: datasync.TargetTopic(target), Key: []byte(id), Value: v}
	}
	held := func(id string) func() bool {
		return func() bool {
			_, ok := rec.Runner.Lookup(datasync.StoreAggregates, datasync.AggregateKey(datasync.Patient, id))
			return ok
		}
	}

	// a: every acknowledgement comes first.
	produceAll(t, w.prod, []*kgo.Record{
		ack("ehr", "a", 1, "success", validatedAt+5),
		ack("pharmacy", "a", 0, "success", validatedAt+10),
		ack("portal", "a", 1, "failed", validatedAt+3),
		ack("portal", "a", 1, "success", validatedAt+20),
	})
	// d: acknowledgements only.
	produceAll(t, w.prod, []*kgo.Record{ack("ehr", "d", 1, "success", validatedAt)})
	kafkatest.Eventually(t, 30*time.Second, "early acknowledgements held", func() bool { return held("a")() && held("d")() })
	produceAll(t, w.prod, []*kgo.Record{validated("a", 1, "create")})

	// b: two versions, then acknowledgements of the second, then a late
	// one of the first.
	produceAll(t, w.prod, []*kgo.Record{validated("b", 1, "create"), validated("b", 2, "update")})
	kafkatest.Eventually(t, 30*time.Second, "b validated", held("b"))
	produceAll(t, w.prod, []*kgo.Record{
		ack("ehr", "b", 2, "success", validatedAt+1), ack("pharmacy", "b", 2, "success", validatedAt+1),
		ack("portal", "b", 2, "success", validatedAt+1), ack("ehr", "b", 1, "success", validatedAt+2),
	})
	// c: a delete, acknowledged; then a redelivery of a's validated record.
	produceAll(t, w.prod, []*kgo.Record{validated("c", 1, "delete")})
	kafkatest.Eventually(t, 30*time.Second, "c validated", held("c"))
	produceAll(t, w.prod, []*kgo.Record{
		ack("ehr", "c", 1, "success", validatedAt+7), ack("pharmacy", "c", 1, "success", validatedAt+7),
		ack("portal", "c", 1, "success", validatedAt+7), validated("a", 1, "create"),
	})

	want := map[string]int64{"a": 1, "b": 2, "c": 1}
	var got map[string][]int64
	kafkatest.Eventually(t, 30*time.Second, "a, b and c reconciled", func() bool {
		got = map[string][]int64{}
		for _, r := range w.read(datasync.CompletedTopic(datasync.Patient)) {
			var v struct {
				EntityID       string
				Version        int64
				SyncDurationMs int64
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			got[v.EntityID] = append(got[v.EntityID], v.Version)
		}
		return len(got) >= len(want)
	})
	w.waitCaughtUp(w.reconcileSpec())
	got = map[string][]int64{}
	for _, r := range w.read(datasync.CompletedTopic(datasync.Patient)) {
		var v struct {
			EntityID string
			Version  int64
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		got[v.EntityID] = append(got[v.EntityID], v.Version)
	}
	for id, v := range want {
		if len(got[id]) != 1 || got[id][0] != v {
			t.Errorf("%s: completed versions %v, want [%d]", id, got[id], v)
		}
	}
	if len(got["d"]) != 0 {
		t.Errorf("d: completed %v without a validated version", got["d"])
	}
	rw := httptest.NewRecorder()
	datasync.QueryHandler(rec.Runner).ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/api/patients/d", nil))
	if rw.Code != http.StatusNotFound {
		t.Errorf("GET /api/patients/d with acknowledgements only: %d, want 404", rw.Code)
	}
}
