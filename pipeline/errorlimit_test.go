package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
)

// doubleSpec emits each record's value twice over on "out": an input of
// more than half the producer's cap (about 1 MB) makes an output that
// cannot be produced, which the runtime turns into an oversized error.
func doubleSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:       "double",
		Group:      "double-group",
		Inputs:     []string{"in"},
		Outputs:    []string{"out"},
		ErrorTopic: "in.errors",
		Process: func(c *pipeline.Context, r *kgo.Record) error {
			c.Emit(&kgo.Record{Topic: "out", Key: r.Key, Value: bytes.Repeat(r.Value, 2)})
			return nil
		},
	}
}

// createTopic creates topic with one partition and configs (name, value
// pairs).
func createTopic(t *testing.T, w *world, topic string, configs ...string) {
	t.Helper()
	cs := map[string]*string{}
	for i := 0; i+1 < len(configs); i += 2 {
		cs[configs[i]] = kadm.StringPtr(configs[i+1])
	}
	resp, err := kadm.NewClient(w.client(t)).CreateTopic(context.Background(), 1, 1, cs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
}

func noise(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 19))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// checkTruncatedOf checks that e is the truncated error record of in (at
// offset), within limit.
func checkTruncatedOf(t *testing.T, e *kgo.Record, in []byte, offset int64, typ pipeline.ErrorType, limit int) {
	t.Helper()
	h := headers(e)
	sum := sha256.Sum256(in)
	if h["error-type"] != string(pipeline.TypeTruncated) || h[pipeline.HeaderOriginalErrorType] != string(typ) ||
		h["source-topic"] != "in" || h["source-offset"] != strconv.FormatInt(offset, 10) ||
		h[pipeline.HeaderOriginalValueHash] != hex.EncodeToString(sum[:]) ||
		h[pipeline.HeaderOriginalValueSize] != strconv.Itoa(len(in)) {
		t.Errorf("truncated error record headers %v", h)
	}
	if len(e.Value) == 0 || len(e.Value) > limit || !bytes.HasPrefix(in, e.Value) {
		t.Errorf("error record value of %d bytes, want a head of the input's under %d", len(e.Value), limit)
	}
}

// An output too large to produce makes its input an error record; when
// that input is itself larger than the error topic takes, the error record
// is truncated, so that it too can be produced, and the partition moves
// on.
func TestRunnerOversizedOutputErrorRecordFitsItsTopic(t *testing.T) {
	const errLimit = 64 << 10
	w := newWorld(t)
	createTopic(t, w, "in")
	createTopic(t, w, "out")
	createTopic(t, w, "in.errors", "max.message.bytes", strconv.Itoa(errLimit))
	r, stop := w.start(t, doubleSpec())
	big := noise(900_000)
	produce(t, w.client(t),
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: big},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("ok")},
	)
	out := kafkatest.ReadN(t.Context(), t, w.opts, 1, "out")
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 1, "in.errors")
	stats := r.Stats()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if string(out[0].Value) != "okok" {
		t.Errorf("output %.20q, want okok", out[0].Value)
	}
	checkTruncatedOf(t, errs[0], big, 0, pipeline.TypeOversized, errLimit)
	if stats.Aborts > 0 {
		t.Errorf("%d transactions aborted, want none", stats.Aborts)
	}
}

// An error topic whose limit is lowered while the pipeline runs (or whose
// limit could not be read) refuses an error record built for the old one.
// The runner lowers its limit and rebuilds the session until the record
// fits, instead of aborting the same batch for ever.
func TestRunnerLowersTheErrorLimitTheBrokerEnforces(t *testing.T) {
	const errLimit = 64 << 10
	w := newWorld(t)
	createTopic(t, w, "in")
	createTopic(t, w, "out")
	createTopic(t, w, "in.errors") // the broker's default, about 1 MB
	r, stop := w.start(t, doubleSpec())
	prod := w.client(t)
	produce(t, prod, &kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("1")})
	kafkatest.ReadN(t.Context(), t, w.opts, 1, "out") // running, its limits read

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := kadm.NewClient(w.client(t)).AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr(strconv.Itoa(errLimit))}}, "in.errors")
	if err == nil {
		_, err = rs.On("in.errors", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	big := noise(600_000)
	produce(t, prod,
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: big},
		&kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("2")},
	)
	out := kafkatest.ReadN(t.Context(), t, w.opts, 2, "out")
	errs := kafkatest.ReadN(t.Context(), t, w.opts, 1, "in.errors")
	stats := r.Stats()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if string(out[1].Value) != "22" {
		t.Errorf("output %.20q, want 22", out[1].Value)
	}
	checkTruncatedOf(t, errs[0], big, 1, pipeline.TypeOversized, errLimit)
	if stats.SessionRestarts == 0 {
		t.Error("no session restart: the refusal never happened")
	}
	t.Logf("%d session restarts, %d aborts", stats.SessionRestarts, stats.Aborts)
}

// At start-up, an input that allows larger records than the error topic is
// a warning that names both and their limits; an error topic too small for
// any error record stops Run with an error that names it.
func TestRunnerChecksTheErrorTopicAgainstItsInputs(t *testing.T) {
	t.Run("input larger: a warning", func(t *testing.T) {
		w := newWorld(t)
		createTopic(t, w, "in", "max.message.bytes", "8388608")
		createTopic(t, w, "out")
		createTopic(t, w, "in.errors", "max.message.bytes", "4194304")
		var logs syncBuffer
		r, stop := w.start(t, doubleSpec(), pipeline.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		deadline := time.Now().Add(20 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !r.Ready() && time.Now().Before(deadline) {
			<-tick.C
		}
		if !r.Ready() {
			t.Fatal("not ready within 20s")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := "input in allows 8388608 bytes but error topic in.errors only 4194304: oversized records will be written truncated"
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no start-up warning %q in the log:\n%s", want, logs.String())
		}
	})
	t.Run("error topic too small: fatal", func(t *testing.T) {
		w := newWorld(t)
		createTopic(t, w, "in")
		createTopic(t, w, "out")
		createTopic(t, w, "in.errors", "max.message.bytes", "4096")
		r, err := pipeline.New(doubleSpec(), pipeline.WithKafka(w.opts...), pipeline.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = r.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "error topic in.errors allows records of 4096 bytes") {
			t.Errorf("Run: %v, want an error naming in.errors and its 4096 bytes", err)
		}
	})
}
