package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The demo mode decides, with the brokers, whether Run may start the
// embedded demo: auto runs it without brokers only, on needs no brokers,
// off needs brokers; anything else is a mistake in demo.mode.
func TestCheckDemo(t *testing.T) {
	brokers := []string{"kafka:9092"}
	for _, tt := range []struct {
		demo    string
		brokers []string
		wantKey string // "": no mistake
	}{
		{"", nil, ""},
		{"auto", nil, ""},
		{"", brokers, ""},
		{"AUTO", brokers, ""},
		{"on", nil, ""},
		{"true", nil, ""},
		{"on", brokers, "demo.mode"},
		{"off", brokers, ""},
		{"false", brokers, ""},
		{"off", nil, "brokers"},
		{"Off", nil, "brokers"},
		{"maybe", nil, "demo.mode"},
		{"maybe", brokers, "demo.mode"},
	} {
		c := Config{Demo: tt.demo, Brokers: tt.brokers}
		err := c.CheckDemo()
		var ke *KeyError
		switch {
		case tt.wantKey == "" && err != nil:
			t.Errorf("demo %q, brokers %v: %v, want no mistake", tt.demo, tt.brokers, err)
		case tt.wantKey != "" && (!errors.As(err, &ke) || ke.Key != tt.wantKey):
			t.Errorf("demo %q, brokers %v: %v, want a mistake in %s", tt.demo, tt.brokers, err, tt.wantKey)
		}
	}
}

// With the demo off and no brokers, Run returns at once with an error
// that says how to give brokers and how to run the demo; it starts
// nothing (a demo started instead would run until the context ends).
func TestRunDemoOffWithoutBrokers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{Demo: DemoOff}
	cfg.SetOrigin("demo.mode", "CAREPIPE_DEMO")
	err := Run(ctx, cfg)
	if ctx.Err() != nil {
		t.Fatalf("Run returned only when its context ended: %v", err)
	}
	if err == nil {
		t.Fatal("Run with the demo off and no brokers: nil error")
	}
	for _, want := range []string{"KAFKA_BROKERS", "--brokers", "carepipe run --demo", "CAREPIPE_DEMO"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// The embedded demo says what it is where an operator looks: in /readyz's
// body and as carepipe_embedded_demo 1 in /metrics. (A run against a
// cluster exports it at 0: TestMetricsExpositionOfEachPipeline.)
func TestEmbeddedDemoAnnouncesItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := &lockedBuffer{}
	run := startCanaryRun(t, Config{
		Pipelines: []string{"orders"}, HTTPAddr: "127.0.0.1:0", SummaryEvery: -1,
		Stdout: io.Discard, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	base := "http://" + run.httpAddr(ctx, t, logs)
	run.awaitReady(ctx, t, base)
	code, body, err := httpGet(ctx, base+"/readyz")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /readyz: %d, %v", code, err)
	}
	if want := "ready (" + demoNote + ")\n"; body != want {
		t.Errorf("/readyz body %q, want %q", body, want)
	}
	code, body, err = httpGet(ctx, base+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", code, err)
	}
	tp := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := embeddedDemoValue(t, fams["carepipe_embedded_demo"]); got != 1 {
		t.Errorf("carepipe_embedded_demo = %v in the embedded demo, want 1", got)
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Run after a clean stop: %v", err)
	}
}

// embeddedDemoValue is the value of carepipe_embedded_demo, which must be
// one gauge series without labels.
func embeddedDemoValue(t *testing.T, mf *dto.MetricFamily) float64 {
	t.Helper()
	if mf.GetType() != dto.MetricType_GAUGE || len(mf.GetMetric()) != 1 || len(mf.GetMetric()[0].GetLabel()) != 0 {
		t.Fatalf("carepipe_embedded_demo is not one gauge series without labels: %v", mf)
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}
