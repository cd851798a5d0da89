package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// paWorld is a cluster with the orchestrator's topics, the simulated
// outside world, and a producer.
type paWorld struct {
	t       *testing.T
	cluster *sim.Cluster
	prod    *kgo.Client
	adm     *kadm.Client
	cfg     sim.PriorAuthWorldConfig
	spec    pipeline.Spec
	// clock is the world's and the orchestrator's: timers fire when the
	// scenario moves it.
	clock *sim.VirtualClock
}

// newPAWorld starts a cluster and the simulated world (cfg with the
// scenario's virtual clock) with the orchestrator's topics.
func newPAWorld(t *testing.T, cfg sim.PriorAuthWorldConfig) *paWorld {
	t.Helper()
	c := kafkatest.NewCluster(t)
	w := &paWorld{t: t, cluster: c}
	w.prod = w.client()
	w.adm = kadm.NewClient(w.client())
	p, err := priorauth.New()
	if err != nil {
		t.Fatal(err)
	}
	w.spec = p.Spec()
	if err := pipeline.CreateTopics(context.Background(), w.adm, &w.spec, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	w.clock = sim.NewVirtualClock(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	cfg.Now = w.clock.Now
	w.cfg = cfg
	world, err := sim.StartPriorAuthWorld(c, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(world.Close)
	return w
}

func (w *paWorld) client(opts ...kgo.Opt) *kgo.Client {
	w.t.Helper()
	return kafkatest.Client(w.t, w.cluster.ClientOpts(), opts...)
}

// start runs an orchestrator instance until the test ends or stop.
func (w *paWorld) start(instanceID string, opts ...priorauth.Option) func() error {
	return w.startInstance(instanceID, opts...).Stop
}

func (w *paWorld) startInstance(instanceID string, opts ...priorauth.Option) *kafkatest.Instance {
	w.t.Helper()
	p, err := priorauth.New(opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.startSpec(instanceID, p.Spec())
}

// startSpec runs an orchestrator instance of spec, as built by
// priorauth.New, with the world's clock.
func (w *paWorld) startSpec(instanceID string, spec pipeline.Spec) *kafkatest.Instance {
	w.t.Helper()
	spec.PunctuateEvery = 50 * time.Millisecond
	return kafkatest.StartRunner(w.t, spec, pipeline.WithKafka(w.cluster.ClientOpts()...), pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithInstanceID(instanceID), pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithLogger(testLogger()), pipeline.WithClock(w.clock))
}

// readToEnd reads topic read_committed up to its last stable offset (with
// control records, so that the end is seen exactly) and returns its data
// records.
func (w *paWorld) readToEnd(topic string) []*kgo.Record {
	w.t.Helper()
	return w.readToEndAt(topic, kgo.ReadCommitted())
}

// readToEndAt is readToEnd at an isolation level: read_uncommitted also
// returns the records of aborted transactions.
func (w *paWorld) readToEndAt(topic string, level kgo.IsolationLevel) []*kgo.Record {
	w.t.Helper()
	return kafkatest.ReadToEndAt(context.Background(), w.t, w.cluster.ClientOpts(), level, topic)
}

// awaitKeys reads topic read_committed until it holds a record for every
// key in want, failing after a deadline.
func (w *paWorld) awaitKeys(topic string, want []string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cl := w.client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]bool{}
	for _, k := range want {
		seen[k] = false
	}
	missing := len(want)
	for missing > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			w.t.Fatalf("%s: %d of %d keys missing at the deadline; %s", topic, missing, len(want), w.census())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if done, ok := seen[string(r.Key)]; ok && !done {
				seen[string(r.Key)] = true
				missing--
			}
		})
	}
}

// waitIdle waits until the group has committed every input record,
// repartitioned ones included.
func (w *paWorld) waitIdle(timeout time.Duration) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	kafkatest.WaitCaughtUp(ctx, w.t, w.cluster.ClientOpts(), w.spec)
}

// census counts the records of every topic of the orchestrator, for a
// failure's message.
func (w *paWorld) census() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics := append(append(append([]string(nil), w.spec.Inputs...), w.spec.Outputs...), w.spec.ErrorTopic)
	ends, err := w.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return "census failed: " + err.Error()
	}
	var b strings.Builder
	for _, t := range topics {
		n := int64(0)
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == t {
				n += o.Offset
			}
		})
		fmt.Fprintf(&b, "%s=%d ", t, n)
	}
	return b.String()
}

func countByKey(recs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.Key)]++
	}
	return m
}

// Issue 4: 1,000 prescriptions run through the orchestrator and the
// simulated world (documentation, submission, payers approving, denying,
// pending then deciding, communication) to priorauth.workflow.completed,
// exactly once each, with the steps of each summary in order and the
// payer's real decision; every request is made once per prior
// authorization even when the world's events and the prescriptions are
// sent again.
func TestPriorAuthWorkflowsCompleteExactlyOnce(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 11, Approve: 0.6, Deny: 0.2, Partial: 0.1, Pend: 0.25})
	stop := w.start("pa-1")
	const n = 1000
	recs, rxIDs := sim.PriorAuthPrescriptions(3, n)
	ids := make([]string, n)
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	w.awaitKeys(priorauth.TopicWorkflowCompleted, ids)

	// Duplicates: every prescription again, and the world's answers for
	// the first hundred prior authorizations again.
	produceAll(t, w.prod, recs)
	var again []*kgo.Record
	want := map[string]bool{}
	for _, id := range ids[:100] {
		want[id] = true
	}
	for _, topic := range []string{priorauth.TopicDocumentationAssembled, priorauth.TopicSubmissionCompleted, priorauth.TopicDeterminationReceived, priorauth.TopicCommunicationCompleted} {
		for _, r := range w.readToEnd(topic) {
			if want[string(r.Key)] {
				again = append(again, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
		}
	}
	produceAll(t, w.prod, again)
	// Duplicates produce nothing for the world to answer: once the group
	// has committed every input, they have all been processed.
	w.waitIdle(60 * time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	w.checkWorkflows(ids)
}

// checkWorkflows checks the read_committed outputs: every id completed
// exactly once, its summary's steps in order with the payer's decision,
// every request made once, and nothing in the error topic.
func (w *paWorld) checkWorkflows(ids []string) {
	t := w.t
	t.Helper()
	completed := w.readToEnd(priorauth.TopicWorkflowCompleted)
	per := countByKey(completed)
	for _, id := range ids {
		if per[id] != 1 {
			t.Errorf("%s completed %d times, want once", id, per[id])
		}
	}
	pended := 0
	for _, r := range completed {
		var done struct {
			WorkflowSummary priorauth.WorkflowSummary `json:"workflowSummary"`
		}
		if err := json.Unmarshal(r.Value, &done); err != nil {
			t.Fatal(err)
		}
		final, pend := w.cfg.PriorAuthOutcome(string(r.Key))
		steps := []priorauth.Status{priorauth.StatusInitiated, priorauth.StatusDocumentationAssembled, priorauth.StatusSubmitted}
		if pend {
			steps = append(steps, priorauth.StatusPended)
			pended++
		}
		steps = append(steps, priorauth.Status(final), priorauth.StatusDeterminationCommunicated)
		var got []priorauth.Status
		for _, s := range done.WorkflowSummary.Steps {
			got = append(got, s.Name)
		}
		if !slices.Equal(got, steps) {
			t.Errorf("%s: steps %v, want %v", r.Key, got, steps)
		}
	}
	if pended == 0 {
		t.Error("no workflow was pended: the scenario proves nothing for PENDED")
	}
	if errs := w.readToEnd(priorauth.TopicErrors); len(errs) != 0 {
		t.Errorf("%d records in the error topic, want none", len(errs))
	}
	for _, topic := range []string{priorauth.TopicDocumentationRequested, priorauth.TopicSubmissionRequested, priorauth.TopicCommunicationRequested} {
		for id, c := range countByKey(w.readToEnd(topic)) {
			if c != 1 {
				t.Errorf("%s: %d records for %s, want one", topic, c, id)
			}
		}
	}
}

// Issue 4: an instance killed between produce and commit (a zombie,
// fenced by its successor) and a second instance joining mid-workflow
// change nothing in the read_committed outputs.
func TestPriorAuthCrashAndRebalanceChangeNothing(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 13, Approve: 0.6, Deny: 0.2, Partial: 0.1, Pend: 0.25})
	recs, rxIDs := sim.PriorAuthPrescriptions(4, 1000)
	ids := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}

	// The fault: hold the first committing EndTxn until the successor has
	// fenced the zombie, then drop the connection it came on.
	crashed, release, fenced := crashFault(w.cluster.Kafka())

	zombie := w.startInstance("pa-1")
	produceAll(t, w.prod, recs[:500])
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the crash fault never fired")
	}
	zombie.Cancel()
	successor := w.startInstance("pa-1")
	select {
	case <-fenced:
	case <-time.After(20 * time.Second):
		t.Fatal("the successor never initialised its producer")
	}
	close(release)
	if err := zombie.Stop(); err != nil {
		t.Fatalf("zombie: %v", err)
	}

	// A second instance joins while workflows are in flight: the group
	// rebalances mid-workflow.
	second := w.startInstance("pa-2")
	produceAll(t, w.prod, recs[500:])
	w.awaitKeys(priorauth.TopicWorkflowCompleted, ids)
	w.waitIdle(60 * time.Second)
	for _, in := range []*kafkatest.Instance{successor, second} {
		if err := in.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	w.checkWorkflows(ids)
	// The zombie's requests of its doomed transaction are in the log,
	// aborted: the crash came after produce, and read_committed never saw
	// them.
	aborted := 0
	for _, topic := range []string{pipeline.RepartitionTopic(w.spec.Group, priorauth.RepartitionByPriorAuth), priorauth.TopicStatus} {
		aborted += len(w.readToEndAt(topic, kgo.ReadUncommitted())) - len(w.readToEnd(topic))
	}
	if aborted <= 0 {
		t.Error("the log holds no aborted records: the crash did not come after produce")
	}
}

func produceAll(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	if err := sim.Produce(context.Background(), cl, recs); err != nil {
		t.Fatal(err)
	}
}

// awaitStatus reads priorauth.status until every id in ids has a record
// for which ok holds, failing after a deadline.
func (w *paWorld) awaitStatus(ids []string, ok func(status string, v map[string]any) bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	w.awaitRecords(ctx, priorauth.TopicStatus, ids, func(r *kgo.Record) bool {
		var v map[string]any
		if json.Unmarshal(r.Value, &v) != nil {
			return false
		}
		s, _ := v["status"].(string)
		return ok(s, v)
	})
}

// awaitRecords reads topic read_committed until every key in ids has a
// record that match accepts.
func (w *paWorld) awaitRecords(ctx context.Context, topic string, ids []string, match func(*kgo.Record) bool) {
	w.t.Helper()
	cl := w.client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	left := map[string]bool{}
	for _, id := range ids {
		left[id] = true
	}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			w.t.Fatalf("%s: %d of %d keys without a matching record at the deadline; %s", topic, len(left), len(ids), w.census())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if left[string(r.Key)] && match(r) {
				delete(left, string(r.Key))
			}
		})
	}
}

// Issue 4: a missed decision deadline emits priorauth.sla.breached once per
// prior authorization, from the virtual clock, and not again after a
// restart; status checks go on, one per interval, skipping those missed.
func TestPriorAuthSLABreachOnceAcrossRestart(t *testing.T) {
	// The payer sits on every case for an hour of wall time: no
	// determination arrives during the scenario.
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 5, Approve: 1, PayerDelay: time.Hour})
	// Every payer submits electronically, so every prior authorization
	// has status checks: they show that each partition punctuated after
	// the restart.
	cfg := priorauth.DefaultConfig()
	for _, p := range []string{"PAYER001", "PAYER002", "PAYER003", "PAYER004", "PAYER005"} {
		cfg.Payers[p] = "ELECTRONIC"
	}
	stop := w.start("pa-1", priorauth.WithConfig(cfg))
	recs, rxIDs := sim.PriorAuthPrescriptions(8, 24)
	ids := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	w.awaitStatus(ids, func(s string, _ map[string]any) bool { return s == string(priorauth.StatusSubmitted) })

	// Past both deadlines (24 h expedited, 72 h standard).
	w.clock.Advance(73 * time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	w.awaitRecords(ctx, priorauth.TopicSLABreached, ids, func(*kgo.Record) bool { return true })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	stop = w.start("pa-1", priorauth.WithConfig(cfg))
	w.clock.Advance(8 * time.Hour)
	// The second status check of each prior authorization comes from the
	// restarted instance's punctuation at the advanced clock.
	w.awaitRecords(ctx, priorauth.TopicStatusCheckRequested, ids, func(r *kgo.Record) bool {
		var v struct{ CheckNumber int }
		return json.Unmarshal(r.Value, &v) == nil && v.CheckNumber >= 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	breaches := countByKey(w.readToEnd(priorauth.TopicSLABreached))
	for _, id := range ids {
		if breaches[id] != 1 {
			t.Errorf("%s breached %d times, want once", id, breaches[id])
		}
	}
	for id, n := range countByKey(w.readToEnd(priorauth.TopicStatusCheckRequested)) {
		// One at the first advance (the missed ones skipped), one or two
		// at the second.
		if n < 2 || n > 3 {
			t.Errorf("%s: %d status checks, want 2 or 3", id, n)
		}
	}
}

// Issue 4: an approval past its expiration date moves to EXPIRED once,
// from the virtual clock, and not again after a restart.
func TestPriorAuthExpiryOnceAcrossRestart(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 17, Approve: 1, ExpireAfter: 30 * 24 * time.Hour})
	stop := w.start("pa-1")
	recs, rxIDs := sim.PriorAuthPrescriptions(6, 24)
	ids := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, recs)
	w.awaitKeys(priorauth.TopicWorkflowCompleted, ids)
	expired := func(s string, _ map[string]any) bool { return s == string(priorauth.StatusExpired) }

	w.clock.Advance(31 * 24 * time.Hour)
	w.awaitStatus(ids, expired)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// After the restart, a second batch approved and expired shows the
	// restarted instance punctuating past the first batch's expiry.
	stop = w.start("pa-1")
	more, moreRx := sim.PriorAuthPrescriptions(7, 24)
	moreIDs := make([]string, len(moreRx))
	for i, rx := range moreRx {
		moreIDs[i] = priorauth.PriorAuthID(rx)
	}
	produceAll(t, w.prod, more)
	w.awaitKeys(priorauth.TopicWorkflowCompleted, moreIDs)
	w.clock.Advance(31 * 24 * time.Hour)
	w.awaitStatus(moreIDs, expired)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, r := range w.readToEnd(priorauth.TopicStatus) {
		var v struct{ Status string }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status == string(priorauth.StatusExpired) {
			n[string(r.Key)]++
		}
	}
	for _, id := range append(ids, moreIDs...) {
		if n[id] != 1 {
			t.Errorf("%s expired %d times, want once", id, n[id])
		}
	}
}
