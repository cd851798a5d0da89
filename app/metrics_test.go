package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.yaml.in/yaml/v3"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// metricPipelines is the pipelines (as the label pipeline says) that each
// pipeline name carepipe runs is made of.
func metricPipelines() map[string][]string {
	return map[string][]string{
		"alerts":    {alerts.Name},
		"priorauth": {priorauth.Name},
		"orders":    {orders.Name},
		"datasync":  {datasync.NameCDC, datasync.NameValidation, datasync.NameReconciliation},
	}
}

// Every pipeline's /metrics, scraped once it is ready and before any
// traffic, is valid Prometheus text exposition that promlint finds no
// fault in; every metric the Grafana dashboard and the alert rules query
// exists in it, the runtime ones for each of the pipeline's stages.
func TestMetricsExpositionOfEachPipeline(t *testing.T) {
	used := usedMetrics(t)
	cluster := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)

	exported := make(map[string]bool)
	for _, name := range slices.Sorted(maps.Keys(metricPipelines())) {
		t.Run(name, func(t *testing.T) {
			fams := scrapeMetrics(t, Config{
				Brokers:           cluster.Addrs(),
				CreateTopics:      true,
				Pipelines:         []string{name},
				SchemaRegistryURL: reg.URL(),
			}, nil)
			for _, n := range used {
				if fams[familyName(fams, n)] != nil {
					exported[n] = true
				}
			}
			stages := metricPipelines()[name]
			for _, f := range []string{"carepipe_ready", "carepipe_assigned_partitions"} {
				for _, p := range stages {
					if v, ok := sample(fams[f], p); !ok || v < 1 {
						t.Errorf("%s{pipeline=%q} = %v (present: %v), want at least 1 once ready", f, p, v, ok)
					}
				}
			}
			// A runtime family the dashboard or the rules use is there for
			// each stage, from start-up; a use-case family for its own.
			for _, n := range used {
				f := familyName(fams, n)
				if !strings.HasPrefix(f, "carepipe_") || useCase(f) != "" {
					continue
				}
				for _, p := range stages {
					if _, ok := sample(fams[f], p); !ok {
						t.Errorf("%s has no series for pipeline %q before any traffic", f, p)
					}
				}
			}
			for f, mf := range fams {
				if useCase(f) == name && !hasPipelineLabel(mf) {
					t.Errorf("%s has no pipeline label", f)
				}
			}
			checkBuildInfo(t, fams["carepipe_build_info"])
			if v := embeddedDemoValue(t, fams["carepipe_embedded_demo"]); v != 0 {
				t.Errorf("carepipe_embedded_demo = %v against a cluster, want 0", v)
			}
			for _, f := range []string{"carepipe_txn_duration_seconds", "carepipe_process_seconds_per_record", "carepipe_event_age_at_processing_seconds"} {
				mf := fams[f]
				if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.GetMetric()) == 0 || len(mf.GetMetric()[0].GetHistogram().GetBucket()) < 5 {
					t.Errorf("%s is not a histogram with le buckets: %v", f, mf)
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	for _, f := range used {
		if !exported[f] {
			t.Errorf("the dashboard or the alert rules use %s, which no pipeline exports", f)
		}
	}
}

// The embedded demo's /metrics, with every pipeline running and records
// flowing (histograms filled), is valid too.
func TestMetricsExpositionOfEmbeddedDemo(t *testing.T) {
	fams := scrapeMetrics(t, Config{DemoRate: 200, DemoPatients: 20}, func(fams map[string]*dto.MetricFamily) bool {
		n, _ := sample(fams["carepipe_txn_duration_seconds"], alerts.Name)
		return n > 0
	})
	if n, _ := sample(fams["carepipe_records_in_total"], alerts.Name); n < 1 {
		t.Errorf("carepipe_records_in_total{pipeline=%q} = %v after a transaction", alerts.Name, n)
	}
}

// scrapeMetrics runs carepipe as cfg says (with an HTTP server on a free
// loopback port), waits until it is ready and until (nil: at once) holds
// of its metrics, and returns its /metrics parsed. The exposition must
// parse, every family must have help and a type, and promlint must find
// no problem in it.
func scrapeMetrics(t *testing.T, cfg Config, until func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := &lockedBuffer{}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Stdout = io.Discard
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	run := startCanaryRun(t, cfg)
	base := "http://" + run.httpAddr(ctx, t, logs)
	run.awaitReady(ctx, t, base)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var body string
	var fams map[string]*dto.MetricFamily
	for {
		code, b, err := httpGet(ctx, base+"/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics: %d, %v", code, err)
		}
		body = b
		tp := expfmt.NewTextParser(model.LegacyValidation)
		if fams, err = tp.TextToMetricFamilies(strings.NewReader(body)); err != nil {
			t.Fatalf("/metrics does not parse as Prometheus text exposition: %v", err)
		}
		if until == nil || until(fams) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the metrics never showed the traffic waited for")
		}
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Run after a clean stop: %v", err)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	for name, mf := range fams {
		if mf.GetHelp() == "" || mf.Type == nil {
			t.Errorf("%s has no # HELP or # TYPE", name)
		}
	}
	return fams
}

// useCase is the use case whose name a use-case family carries
// (carepipe_alerts_skipped_total: alerts), "" for a runtime family.
func useCase(family string) string {
	for uc := range metricPipelines() {
		if strings.HasPrefix(family, "carepipe_"+uc+"_") {
			return uc
		}
	}
	return ""
}

// familyName is the family the series name n belongs to in fams: a
// histogram's or summary's _bucket, _sum and _count series belong to it.
func familyName(fams map[string]*dto.MetricFamily, n string) string {
	if fams[n] != nil {
		return n
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if stem, ok := strings.CutSuffix(n, suffix); ok {
			if t := fams[stem].GetType(); t == dto.MetricType_HISTOGRAM || (t == dto.MetricType_SUMMARY && suffix != "_bucket") {
				return stem
			}
		}
	}
	return n
}

// sample is the value of mf's series with pipeline label p (a counter,
// gauge or a histogram's count), and whether there is one.
func sample(mf *dto.MetricFamily, p string) (float64, bool) {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "pipeline" && l.GetValue() == p {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue(), true
				case m.Gauge != nil:
					return m.GetGauge().GetValue(), true
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
				return m.GetUntyped().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasPipelineLabel(mf *dto.MetricFamily) bool {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "pipeline" {
				return true
			}
		}
	}
	return false
}

func checkBuildInfo(t *testing.T, mf *dto.MetricFamily) {
	t.Helper()
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("carepipe_build_info: %d series, want 1", len(mf.GetMetric()))
	}
	m := mf.GetMetric()[0]
	got := make(map[string]string)
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for _, k := range []string{"version", "revision", "go_version"} {
		if got[k] == "" {
			t.Errorf("carepipe_build_info has no %s label: %v", k, got)
		}
	}
	if !strings.HasPrefix(got["go_version"], "go") || m.GetGauge().GetValue() != 1 {
		t.Errorf("carepipe_build_info = %v %v, want go_version go... and value 1", got, m.GetGauge().GetValue())
	}
}

// usedMetrics is every metric name the dashboard's queries and the alert
// rules' expressions select, sorted.
func usedMetrics(t *testing.T) []string {
	t.Helper()
	names := make(map[string]bool)
	for _, e := range dashboardExprs(t) {
		for _, n := range selectedNames(t, "dashboard", e) {
			names[n] = true
		}
	}
	for _, e := range ruleExprs(t) {
		for _, n := range selectedNames(t, "alert rules", e) {
			names[n] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metric names found in the dashboard and the rules: the extraction is broken", len(names))
	}
	return slices.Sorted(maps.Keys(names))
}

// grafanaVars stands in for the dashboard's template variables, so that
// its queries parse as PromQL.
func grafanaVars() *strings.Replacer {
	return strings.NewReplacer(
		"$__rate_interval", "5m",
		"$__range", "1h",
		"${pipeline:regex}", "alerts",
		"$pipeline", "alerts",
		"$instance", ".*",
	)
}

// dashboardExprs is every PromQL query in the dashboard: panel targets and
// query variables.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/carepipe-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("dashboard variable query: %v", err)
		}
		// label_values(selector, label) is Grafana's, not PromQL: its
		// selector is.
		sel, ok := strings.CutPrefix(q.Query, "label_values(")
		if !ok {
			t.Fatalf("dashboard variable query %q: want label_values(...)", q.Query)
		}
		exprs = append(exprs, sel[:strings.LastIndexByte(sel, ',')])
	}
	return exprs
}

// ruleExprs is every expression of the alert rules, which must be rules
// as Prometheus loads them: groups of named alerts with an expression, a
// duration in for, and string labels and annotations.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../deploy/prometheus/carepipe-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("alert rules: group %q has no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if !model.LegacyValidation.IsValidMetricName(r.Alert) {
				t.Errorf("alert rules: alert name %q is not valid", r.Alert)
			}
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("alert rules: %s: for %q: %v", r.Alert, r.For, err)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert rules: %s has no severity label or no summary", r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) < 4 {
		t.Errorf("alert rules: %d rules, want at least the four of issue 20", len(exprs))
	}
	return exprs
}

// selectedNames is the metric names expr selects. A selector must name
// its metric outright: a regular expression on __name__ could select
// names that no longer exist without anyone noticing.
func selectedNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars().Replace(expr))
	if err != nil {
		t.Errorf("%s: %q does not parse as PromQL: %v", where, expr, err)
		return nil
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		named := false
		for _, m := range sel {
			if m.Name != model.MetricNameLabel {
				continue
			}
			if m.Type != labels.MatchEqual {
				t.Errorf("%s: %q selects metric names by %s: name them", where, expr, m)
				continue
			}
			names = append(names, m.Value)
			named = true
		}
		if !named {
			t.Errorf("%s: %q has a selector without a metric name", where, expr)
		}
	}
	return names
}
