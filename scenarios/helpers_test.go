package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/sim"
)

const testPartitions = 6

// alertsWorld is a cluster with the alerts pipeline's topics and a
// producer.
type alertsWorld struct {
	t       *testing.T
	cluster *sim.Cluster
	spec    pipeline.Spec
	prod    *kgo.Client
	adm     *kadm.Client
	// rules is the pack instances run; the seed's rules (no NEWS2, no
	// suppression window) unless a scenario sets another, because the
	// simulated world's ground truth is computed with them.
	rules rules.Pack
}

func newAlertsWorld(t *testing.T, opts ...sim.ClusterOption) *alertsWorld {
	t.Helper()
	c, err := sim.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w := &alertsWorld{t: t, cluster: c, rules: rules.Seed()}
	w.prod = w.client()
	w.adm = kadm.NewClient(w.client())
	w.spec = stageSpec(t, catalog.Settings{}, alerts.Name, alerts.Name)
	if err := pipeline.CreateTopics(context.Background(), w.adm, &w.spec, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *alertsWorld) client(opts ...kgo.Opt) *kgo.Client {
	w.t.Helper()
	return clusterClient(w.t, w.cluster, opts...)
}

// clusterClient is a client of cluster, closed when the test ends.
func clusterClient(t *testing.T, cluster *sim.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(cluster.ClientOpts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (w *alertsWorld) produce(recs []*kgo.Record) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.Produce(ctx, w.prod, recs); err != nil {
		w.t.Fatal(err)
	}
}

// instance is one running alerts pipeline (one "process").
type instance struct {
	runner *pipeline.Runner
	done   chan error
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

// start runs an alerts pipeline instance, built exactly as the binary
// builds it: from the catalog.
func (w *alertsWorld) start(instanceID string, opts ...pipeline.Option) *instance {
	w.t.Helper()
	set := metrics.NewSet()
	spec := stageSpec(w.t, catalog.Settings{Rules: &w.rules, Metrics: func(string) *metrics.Set { return set }}, alerts.Name, alerts.Name)
	base := []pipeline.Option{
		pipeline.WithKafka(w.cluster.ClientOpts()...),
		pipeline.WithMetrics(set),
		pipeline.WithCommitInterval(50 * time.Millisecond),
		pipeline.WithTransactionTimeout(5 * time.Second),
		pipeline.WithLogger(testLogger()),
	}
	if instanceID != "" {
		base = append(base, pipeline.WithInstanceID(instanceID))
	}
	return startRunner(w.t, spec, append(base, opts...)...)
}

// startRunner runs spec until the test ends or the instance is stopped.
func startRunner(t *testing.T, spec pipeline.Spec, opts ...pipeline.Option) *instance {
	t.Helper()
	r, err := pipeline.New(spec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{runner: r, done: make(chan error, 1), cancel: cancel}
	go func() { in.done <- r.Run(ctx) }()
	t.Cleanup(func() { _ = in.stop() })
	return in
}

// stop shuts the instance down gracefully and returns Run's error.
func (in *instance) stop() error {
	in.once.Do(func() {
		in.cancel()
		select {
		case in.err = <-in.done:
		case <-time.After(30 * time.Second):
			in.err = errors.New("instance did not stop within 30s")
		}
	})
	return in.err
}

func testLogger() *slog.Logger {
	if os.Getenv("CAREPIPE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// readAll reads topic with an independent read_committed consumer up to
// its current last stable offset: everything committed so far.
func (w *alertsWorld) readAll(topic string) []*kgo.Record {
	w.t.Helper()
	return w.read(topic, kgo.ReadCommitted())
}

// readUncommitted reads topic up to its high watermark, aborted
// transactions' records included.
func (w *alertsWorld) readUncommitted(topic string) []*kgo.Record {
	w.t.Helper()
	return w.read(topic, kgo.ReadUncommitted())
}

func (w *alertsWorld) read(topic string, level kgo.IsolationLevel) []*kgo.Record {
	w.t.Helper()
	return readTopic(w.t, w.adm, w.client, topic, level)
}

// readTopic reads topic with an independent consumer (made by newClient)
// up to its end: the last stable offset read_committed, the high watermark
// read_uncommitted. Control records are read too, so that the end is seen
// exactly; only data records are returned.
func readTopic(t *testing.T, adm *kadm.Client, newClient func(...kgo.Opt) *kgo.Client, topic string, level kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := adm.ListCommittedOffsets
	if level == kgo.ReadUncommitted() {
		list = adm.ListEndOffsets
	}
	ends, err := list(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	targets := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			targets[o.Partition] = o.Offset
		}
	})
	// kfake can return aborted records to a read_committed reader whose
	// response reaches its byte limit: pipeline.FetchLimits keeps it under.
	cl := newClient(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level), kgo.KeepControlRecords()}, pipeline.FetchLimits(max(len(targets), 1))...)...)
	var out []*kgo.Record
	for len(targets) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out with partitions %v unread", topic, targets)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := targets[r.Partition]; ok && r.Offset >= end-1 {
				delete(targets, r.Partition)
			}
		})
	}
	return out
}

// waitIdle waits until the group has committed every record of its inputs
// and of its repartition topic, so every output it will ever make for the
// records produced so far is committed. Inputs are produced without
// transactions; the repartition topic is transactional, so its last data
// offset is found by reading it.
func (w *alertsWorld) waitIdle(timeout time.Duration) {
	w.t.Helper()
	waitFor(w.t, timeout, "pipeline caught up", func() bool {
		return groupCaughtUp(w.adm, &w.spec, w.readAll)
	})
}

// waitFor polls cond until it holds, failing t after timeout. For
// conditions outside the process under test (a group's committed offsets),
// which no event announces.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v", what, timeout)
		}
		<-tick.C
	}
}

// groupCaughtUp reports whether spec's group has committed every input
// record, repartitioned ones included; read reads a topic read_committed.
func groupCaughtUp(adm *kadm.Client, spec *pipeline.Spec, read func(topic string) []*kgo.Record) bool {
	ctx := context.Background()
	committed, err := adm.FetchOffsets(ctx, spec.Group)
	if err != nil {
		return false
	}
	for _, topic := range spec.Inputs {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if c, _ := committed.Lookup(topic, o.Partition); o.Offset > 0 && c.At < o.Offset {
				ok = false
			}
		})
		if !ok {
			return false
		}
	}
	// Repartition topics are transactional: their end is a marker, not a
	// record to commit past.
	for _, name := range spec.Repartitions {
		topic := pipeline.RepartitionTopic(spec.Group, name)
		last := map[int32]int64{}
		for _, r := range read(topic) {
			last[r.Partition] = r.Offset
		}
		for p, o := range last {
			if c, _ := committed.Lookup(topic, p); c.At < o+1 {
				return false
			}
		}
	}
	return true
}

// crashFault makes the first committing EndTxn of the cluster hang until
// release is closed, then drops the connection it came on (a process dying
// between produce and commit); crashed closes when it fires. The dead
// producer never commits that transaction: a retry of the commit, which a
// live client makes on a new connection, is answered as fenced, as the
// broker answers it once the successor has fenced the zombie, so the
// transaction stays open until that successor aborts it. (Passed on, a
// retry that reached the broker before the successor's fencing committed
// the transaction, and the test's crash came after nothing.) fenced closes when a second InitProducerID (a
// successor fencing the zombie) arrives.
func crashFault(k *kfake.Cluster) (crashed, release, fenced chan struct{}) {
	crashed, release, fenced = make(chan struct{}), make(chan struct{}), make(chan struct{})
	var (
		mu    sync.Mutex
		fired bool
		dead  struct {
			id    int64
			epoch int16
		}
	)
	k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit {
			return nil, nil, false
		}
		mu.Lock()
		if fired {
			retry := r.ProducerID == dead.id && r.ProducerEpoch == dead.epoch
			mu.Unlock()
			if retry {
				resp := r.ResponseKind().(*kmsg.EndTxnResponse)
				resp.ErrorCode = kerr.ProducerFenced.Code
				return resp, nil, true
			}
			return nil, nil, false
		}
		fired = true
		dead.id, dead.epoch = r.ProducerID, r.ProducerEpoch
		mu.Unlock()
		close(crashed)
		k.SleepControl(func() { <-release })
		return nil, errClosedByTest, true
	})
	var inits atomic.Int32
	k.ControlKey(int16(kmsg.InitProducerID), func(kmsg.Request) (kmsg.Response, error, bool) {
		if inits.Add(1) == 2 {
			close(fenced)
		}
		k.KeepControl()
		return nil, nil, false
	})
	return crashed, release, fenced
}

func decodeAlerts(t *testing.T, recs []*kgo.Record) []alerts.Alert {
	t.Helper()
	out := make([]alerts.Alert, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("alert record %d does not decode: %v", i, err)
		}
	}
	return out
}

// diffMultiset compares alert ids as multisets and reports what is missing
// and what is extra (duplicates included).
func diffMultiset(t *testing.T, got []alerts.Alert, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range want {
		count[id]++
	}
	for _, a := range got {
		count[a.AlertID]--
	}
	var missing, extra []string
	for id, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, id)
		}
		for ; n < 0; n++ {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	t.Logf("alerts: got %d, want %d", len(got), len(want))
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("alerts: got %d, want %d; %d missing (first %v), %d extra (first %v)",
			len(got), len(want), len(missing), head(missing), len(extra), head(extra))
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }
