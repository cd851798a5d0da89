package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// An output carrying the correlation id of a stamped input gives back the
// input's send time, to the nanosecond; outputs of other inputs are not
// measured.
func TestStampedSendTimeReadsBack(t *testing.T) {
	var r runner
	sent := time.Unix(1_790_000_000, 123_456_789)
	in := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "other", Value: []byte("x")}}}
	r.stamp(in, sent)
	if !in.Timestamp.Equal(sent) {
		t.Fatalf("timestamp %v, want %v", in.Timestamp, sent)
	}
	id, ok := envelope.HeaderCorrelation(in)
	if !ok || !strings.HasPrefix(id, correlationPrefix) {
		t.Fatalf("correlation id %q", id)
	}
	// The pipeline copies the correlation id to its outputs.
	out := &kgo.Record{Headers: []kgo.RecordHeader{{Key: envelope.HeaderCorrelationID, Value: []byte(id)}}}
	got, ok := sentAt(out)
	if !ok || !got.Equal(sent) {
		t.Fatalf("sentAt = %v, %v; want %v", got, ok, sent)
	}
	// Distinct inputs sent at the same instant have distinct ids.
	in2 := &kgo.Record{}
	r.stamp(in2, sent)
	if id2, _ := envelope.HeaderCorrelation(in2); id2 == id {
		t.Fatalf("two inputs share correlation id %q", id)
	}
	for _, h := range [][]kgo.RecordHeader{
		nil,
		{{Key: envelope.HeaderCorrelationID, Value: []byte("corr-rx-1-2")}},
		{{Key: envelope.HeaderCorrelationID, Value: []byte("lg-not base36!-1")}},
	} {
		if _, ok := sentAt(&kgo.Record{Headers: h}); ok {
			t.Errorf("headers %v: measured, want skipped", h)
		}
	}
}

func TestLagGrew(t *testing.T) {
	d := 10 * time.Second
	samples := []lagSample{{0, 0}, {2 * time.Second, 500}, {5 * time.Second, 8000}, {8 * time.Second, 12000}}
	for _, tt := range []struct {
		name    string
		samples []lagSample
		end     int64
		offered float64
		want    bool
	}{
		{"a commit interval's backlog", samples, 900, 10_000, false},
		{"over a second's worth and growing", samples, 20_000, 10_000, true},
		{"over a second's worth but shrinking", samples, 6000, 5000, false},
		{"small rates: under the 1,000-record floor", samples, 999, 100, false},
		{"no sample past half way", samples[:2], 20_000, 10_000, true},
	} {
		if got := lagGrew(tt.samples, tt.end, d, tt.offered); got != tt.want {
			t.Errorf("%s: lagGrew = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	opts := []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"fixed rate", Config{Pipeline: "alerts", Kafka: opts, Rate: 100}, ""},
		{"find max", Config{Pipeline: "datasync", Kafka: opts, FindMax: true}, ""},
		{"unknown pipeline", Config{Pipeline: "orders", Kafka: opts, Rate: 1}, `unknown pipeline "orders"`},
		{"no cluster", Config{Pipeline: "alerts", Rate: 1}, "no Kafka client options"},
		{"no rate", Config{Pipeline: "alerts", Kafka: opts}, "rate 0: want a positive rate"},
		{"max below start", Config{Pipeline: "alerts", Kafka: opts, FindMax: true, StartRate: 10, MaxRate: 5}, "below the start rate"},
		{"growth 1", Config{Pipeline: "alerts", Kafka: opts, FindMax: true, Growth: 1}, "growth 1: want more than 1"},
		{"negative SLO", Config{Pipeline: "alerts", Kafka: opts, Rate: 1, SLO: -1}, "SLO -1ns is negative"},
		{"repeat too many", Config{Pipeline: "alerts", Kafka: opts, Rate: 1, Repeat: 41}, "repeat 41: want 1 to 40"},
	} {
		cfg := tt.cfg
		cfg.setDefaults()
		err := cfg.validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
	}
}

// The SLO defaults follow what a pipeline's outputs wait for.
func TestDefaultSLOs(t *testing.T) {
	for p, want := range map[string]time.Duration{"alerts": 250 * time.Millisecond, "datasync": 500 * time.Millisecond, "priorauth": 5 * time.Second} {
		cfg := Config{Pipeline: p}
		cfg.setDefaults()
		if cfg.SLO != want {
			t.Errorf("%s: SLO %v, want %v", p, cfg.SLO, want)
		}
	}
}

// A pipeline that never consumes does not pass for a drained one. A
// group with no members reports lag only where it has committed, so a
// group that committed elsewhere (or on some partitions only) shows no
// backlog on the inputs: the drain waits for it to commit past what the
// load wrote, and the run stops saying so instead of measuring nothing.
func TestDrainWaitsForTheGroupToConsumeTheLoad(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := kafkatest.Client(t, cluster.ClientOpts())
	adm := kadm.NewClient(cl)
	rs, err := adm.CreateTopics(ctx, 3, 1, nil, alerts.TopicObservations, alerts.TopicAlerts, alerts.TopicPatients)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var elsewhere kadm.Offsets
	elsewhere.Add(kadm.Offset{Topic: alerts.TopicAlerts, Partition: 0, At: 0})
	if err := adm.CommitAllOffsets(ctx, alerts.Group, elsewhere); err != nil {
		t.Fatal(err)
	}
	if lag, err := adm.Lag(ctx, alerts.Group); err != nil || lag.Error() != nil || lag[alerts.Group].Lag.Total() != 0 {
		t.Fatalf("lag %+v, %v: want none reported, the case the drain must not trust", lag, err)
	}

	rep, err := Run(ctx, Config{
		Pipeline: "alerts", Kafka: cluster.ClientOpts(), Rate: 50, Duration: 200 * time.Millisecond,
		Warmup: 200 * time.Millisecond, DrainTimeout: time.Second, Patients: 10,
	})
	if err == nil || !strings.Contains(err.Error(), "had not consumed the load on 3 input partitions") {
		t.Fatalf("error %v, want the group's missing progress named", err)
	}
	if len(rep.Steps) != 0 {
		t.Fatalf("steps %+v measured without a pipeline", rep.Steps)
	}
}
