package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

// countSpec is a small stateful pipeline: it counts records per key in a
// store and emits "<key>:<n>" for the n-th record of each key. Keys are
// re-keyed through a repartition topic when a record arrives on a partition
// that does not own its key. A value "boom" makes the processor fail and
// "panic" makes it panic, after it emitted and wrote state.
func countSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:         "count",
		Group:        "count-group",
		Inputs:       []string{"in"},
		Outputs:      []string{"out"},
		ErrorTopic:   "in.errors",
		Stores:       []string{"counts"},
		Repartitions: []string{"by-key"},
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			key := r.Key
			if !c.IsLocal(key) {
				c.Repartition("by-key", key)
				return nil
			}
			s := c.Store("counts")
			n := 0
			if v, ok := s.Get(string(key)); ok {
				n, _ = strconv.Atoi(string(v))
			}
			n++
			s.Put(string(key), []byte(strconv.Itoa(n)))
			c.Emit(&kgo.Record{Topic: "out", Key: key, Value: []byte(string(key) + ":" + strconv.Itoa(n))})
			switch string(r.Value) {
			case "boom":
				return pipeline.Rejectf(pipeline.TypeInvalid, "value rejected")
			case "panic":
				panic("processor bug")
			}
			return nil
		},
	}
}

// world is the kit's tuned cluster, with its kfake handle for fault
// injection and its clients' options.
type world struct {
	cluster *kfake.Cluster
	opts    []kgo.Opt
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t)
}

// newWorldWith is newWorld with more kfake options, applied after the
// cluster's defaults.
func newWorldWith(t *testing.T, opts ...kfake.Opt) *world {
	t.Helper()
	c := kafkatest.NewCluster(t, sim.KafkaOpts(opts...))
	return &world{cluster: c.Kafka(), opts: c.ClientOpts()}
}

func (w *world) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return kafkatest.Client(t, w.opts, opts...)
}

func (w *world) createTopics(t *testing.T, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(w.client(t))
	if _, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
}

// start runs a runner until the returned stop is called; stop returns Run's
// error.
func (w *world) start(t *testing.T, spec pipeline.Spec, opts ...pipeline.Option) (*pipeline.Runner, func() error) {
	t.Helper()
	in := kafkatest.StartRunner(t, spec, append([]pipeline.Option{pipeline.WithKafka(w.opts...), pipeline.WithCommitInterval(20 * time.Millisecond), pipeline.WithLogger(testLogger(t))}, opts...)...)
	return in.Runner, in.Stop
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerCountsExactlyOnceAcrossRestart(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 4, "in", "out", "in.errors")

	const keys, perKey = 20, 10
	batch := func(round int) []*kgo.Record {
		var recs []*kgo.Record
		for i := 0; i < perKey/2; i++ {
			for k := 0; k < keys; k++ {
				// Partition 0 for every record: most keys are not
				// local there and must be re-keyed.
				recs = append(recs, &kgo.Record{Topic: "in", Partition: 0, Key: []byte("k" + strconv.Itoa(k)), Value: []byte("v")})
			}
		}
		return recs
	}
	manual := w.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))

	_, stop := w.start(t, countSpec())
	produce(t, manual, batch(0)...)
	first := kafkatest.ReadN(t.Context(), t, w.opts, keys*perKey/2, "out")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new runner (a restarted process) must continue the counts from
	// the changelog, not from zero.
	_, stop2 := w.start(t, countSpec())
	produce(t, manual, batch(1)...)
	all := kafkatest.ReadN(t.Context(), t, w.opts, keys*perKey, "out")
	if err := stop2(); err != nil {
		t.Fatal(err)
	}

	seen := make(map[string]int)
	for _, r := range all {
		seen[string(r.Value)]++
	}
	for k := 0; k < keys; k++ {
		for n := 1; n <= perKey; n++ {
			v := "k" + strconv.Itoa(k) + ":" + strconv.Itoa(n)
			if seen[v] != 1 {
				t.Errorf("%s seen %d times, want once", v, seen[v])
			}
		}
	}
	if len(all) != keys*perKey {
		t.Errorf("got %d outputs, want %d", len(all), keys*perKey)
	}
	if len(first) != keys*perKey/2 {
		t.Errorf("first run: got %d outputs", len(first))
	}
}

func TestRunnerErrorTopicKeepsRecordWholeAndRollsBack(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	prod := w.client(t)
	_, stop := w.start(t, countSpec())

	hdr := []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}
	produce(t, prod,
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok")},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("boom"), Headers: hdr},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("panic")},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok")},
	)
	out := kafkatest.ReadN(t.Context(), t, w.opts, 2, "out")
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 2, "in.errors")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The failed records' emits and state writes were discarded: the
	// second good record is the key's second count, not its fourth.
	if got := []string{string(out[0].Value), string(out[1].Value)}; got[0] != "a:1" || got[1] != "a:2" {
		t.Errorf("outputs %v, want [a:1 a:2]", got)
	}
	for i, want := range []struct{ value, typ, offset string }{
		{"boom", "invalid", "1"},
		{"panic", "panic", "2"},
	} {
		r := errs[i]
		if string(r.Value) != want.value || string(r.Key) != "a" {
			t.Errorf("error record %d: key %q value %q", i, r.Key, r.Value)
		}
		h := headers(r)
		if h["error-type"] != want.typ || h["source-topic"] != "in" || h["source-partition"] != "0" || h["source-offset"] != want.offset {
			t.Errorf("error record %d headers %v", i, h)
		}
		if i == 0 && h["h"] != "x" {
			t.Errorf("original header lost: %v", h)
		}
	}
}

// A Spec's ErrorValue shapes the error record's value; the headers are the
// runtime's as always.
func TestRunnerErrorValueShapesErrorRecord(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	spec := countSpec()
	spec.ErrorValue = func(r *kgo.Record, typ pipeline.ErrorType, msg string, _ time.Time) []byte {
		return []byte(string(typ) + "|" + msg + "|" + string(r.Value))
	}
	_, stop := w.start(t, spec)
	produce(t, w.client(t), &kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("boom")})
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 1, "in.errors")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := string(errs[0].Value), "invalid|invalid: value rejected|boom"; got != want {
		t.Errorf("error value %q, want %q", got, want)
	}
	if h := headers(errs[0]); h["error-type"] != "invalid" || h["source-offset"] != "0" {
		t.Errorf("error headers %v", h)
	}
}

func headers(r *kgo.Record) map[string]string {
	m := make(map[string]string)
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestRunnerMissingTopicsIsFatalAndNamesThem(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in")
	r, err := pipeline.New(countSpec(), pipeline.WithKafka(w.opts...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = r.Run(ctx)
	var missing *pipeline.MissingTopicsError
	if !errors.As(err, &missing) {
		t.Fatalf("Run: %v, want MissingTopicsError", err)
	}
	if len(missing.Topics) != 2 || missing.Topics[0] != "out" || missing.Topics[1] != "in.errors" {
		t.Errorf("missing %v, want [out in.errors]", missing.Topics)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CAREPIPE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Regression (found by the soak): an instance stopped while it was still
// checking its topics returned "listing topics: context canceled" instead
// of stopping cleanly.
func TestRunnerStoppedWhileStartingReturnsNil(t *testing.T) {
	w := newWorld(t)
	w.createTopics(t, 1, "in", "out", "in.errors")
	r, err := pipeline.New(countSpec(), pipeline.WithKafka(w.opts...), pipeline.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run with its context already done: %v, want nil", err)
	}
}
