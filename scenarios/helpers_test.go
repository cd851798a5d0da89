package scenarios

import (
	"context"
	"encoding/json"
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

	"github.com/carepipe/carepipe/internal/kafkatest"
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
	c := kafkatest.NewCluster(t, opts...)
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
	return kafkatest.Client(w.t, w.cluster.ClientOpts(), opts...)
}

func (w *alertsWorld) produce(recs []*kgo.Record) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.Produce(ctx, w.prod, recs); err != nil {
		w.t.Fatal(err)
	}
}

// start runs an alerts pipeline instance, built exactly as the binary
// builds it: from the catalog.
func (w *alertsWorld) start(instanceID string, opts ...pipeline.Option) *kafkatest.Instance {
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
	return kafkatest.StartRunner(w.t, spec, append(base, opts...)...)
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
	return kafkatest.ReadToEndAt(context.Background(), w.t, w.cluster.ClientOpts(), level, topic)
}

// waitIdle waits until the group has committed every record of its inputs
// and of its repartition topic, so every output it will ever make for the
// records produced so far is committed.
func (w *alertsWorld) waitIdle(timeout time.Duration) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	kafkatest.WaitCaughtUp(ctx, w.t, w.cluster.ClientOpts(), w.spec)
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
