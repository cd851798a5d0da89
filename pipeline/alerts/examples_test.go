package alerts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// examplesManifest is testdata/examples/manifest.yaml: the public example
// Observations of HL7 FHIR R4 and US Core, copied as they are published,
// each with what the processor must make of it. The file's header says
// what each field means.
type examplesManifest struct {
	Sources map[string]struct {
		Repo    string `yaml:"repo"`
		Commit  string `yaml:"commit"`
		Version string `yaml:"version"`
		Path    string `yaml:"path"`
		Web     string `yaml:"web"`
	} `yaml:"sources"`
	Cases []exampleCase `yaml:"cases"`
}

type exampleCase struct {
	File    string `yaml:"file"`
	Source  string `yaml:"source"`
	Origin  string `yaml:"origin"`
	Patient string `yaml:"patient"`
	// At most one outcome: fires, news2 and news2Alert; skipped; or
	// error. None means the observation raised, fed and counted nothing.
	Fires []string       `yaml:"fires"`
	NEWS2 []exampleVital `yaml:"news2"`
	Alert *exampleNEWS2  `yaml:"news2Alert"`
	Skip  string         `yaml:"skipped"`
	Error *exampleError  `yaml:"error"`
	Why   string         `yaml:"why"`
	Known *exampleDefect `yaml:"defect"`
}

type exampleVital struct {
	Parameter string  `yaml:"parameter"`
	Value     float64 `yaml:"value"`
	Score     int     `yaml:"score"`
}

type exampleNEWS2 struct {
	Score   int    `yaml:"score"`
	Trigger string `yaml:"trigger"`
}

type exampleError struct {
	Type     pipeline.ErrorType `yaml:"type"`
	Contains string             `yaml:"contains"`
}

// exampleDefect marks a case whose expected outcome the processor does not
// give yet: the case is skipped while it does not, and fails once it does,
// so that the entry goes with the defect.
type exampleDefect struct {
	Actual string `yaml:"actual"`
	Issue  string `yaml:"issue"`
}

func readExamplesManifest(t *testing.T) examplesManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "examples", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m examplesManifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExamplesManifestCoversTestdata: every example file is a case and
// every case a file, cited from a source that names its repository and
// commit; an example added without an expected outcome, or a case whose
// file went, fails here.
func TestExamplesManifestCoversTestdata(t *testing.T) {
	m := readExamplesManifest(t)
	for name, s := range m.Sources {
		if s.Repo == "" || len(s.Commit) != 40 || s.Path == "" || s.Web == "" {
			t.Errorf("source %s lacks repo, commit, path or web address", name)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range m.Cases {
		if seen[c.File] {
			t.Errorf("%s: two cases", c.File)
		}
		seen[c.File] = true
		if _, ok := m.Sources[c.Source]; !ok {
			t.Errorf("%s: unknown source %q", c.File, c.Source)
		}
		if c.Origin == "" || strings.TrimSpace(c.Why) == "" {
			t.Errorf("%s: no origin or no why", c.File)
		}
	}
	for _, f := range files {
		rel := filepath.ToSlash(strings.TrimPrefix(f, filepath.Join("testdata", "examples")+string(filepath.Separator)))
		if !seen[rel] {
			t.Errorf("%s has no case in the manifest", rel)
		}
		delete(seen, rel)
	}
	for f := range seen {
		t.Errorf("case %s has no file", f)
	}
}

// TestExamples runs each public example Observation through the processor
// as the runtime does (Process on a harness, built-in rule pack, NEWS2 on
// scale 1, no site time zone): sent unkeyed on fhir.Observation, re-keyed
// by its patient, then evaluated against an empty patient state. It
// checks the outcome the manifest gives: the rules that fire, the NEWS2
// readings the patient's state takes and their scores, the skip counted,
// or the error record.
func TestExamples(t *testing.T) {
	m := readExamplesManifest(t)
	if len(m.Cases) == 0 {
		t.Fatal("no cases")
	}
	for i, c := range m.Cases {
		t.Run(c.File, func(t *testing.T) {
			if outcomes(&c) > 1 {
				t.Fatal("case gives more than one outcome (fires/news2, skipped, error)")
			}
			value, err := os.ReadFile(filepath.Join("testdata", "examples", filepath.FromSlash(c.File)))
			if err != nil {
				t.Fatal(err)
			}
			got := runExample(t, value, int64(i))
			want := exampleOutcome{fires: sorted(c.Fires), news2: c.NEWS2, alert: c.Alert, skipped: c.Skip, patient: c.Patient}
			if c.Error != nil {
				want.errType, want.errText = c.Error.Type, c.Error.Contains
			}
			msg := got.mismatch(&want)
			switch {
			case c.Known != nil && msg == "":
				// A skip that outlives its defect hides a case that
				// passes: the entry must go.
				t.Errorf("defect %s is fixed (the outcome is as expected): delete the case's defect entry", c.Known.Issue)
			case c.Known != nil:
				t.Skipf("known defect (issue %s): expected %s, but the processor %s", c.Known.Issue, expectedText(&c), strings.TrimSpace(c.Known.Actual))
			case msg != "":
				t.Errorf("%s\nwhy the expectation holds: %s", msg, strings.TrimSpace(c.Why))
			}
		})
	}
}

// outcomes counts the outcomes c gives: a skip, an error, readings or
// firings. None is an outcome too: the observation raised and fed nothing.
func outcomes(c *exampleCase) int {
	n := 0
	if c.Skip != "" {
		n++
	}
	if c.Error != nil {
		n++
	}
	if len(c.Fires) > 0 || len(c.NEWS2) > 0 || c.Alert != nil {
		n++
	}
	return n
}

func expectedText(c *exampleCase) string {
	switch {
	case c.Error != nil:
		return fmt.Sprintf("an %s error saying %q", c.Error.Type, c.Error.Contains)
	case c.Skip != "":
		return "a skip counted as " + c.Skip
	}
	return fmt.Sprintf("rules %v and NEWS2 readings %v", c.Fires, c.NEWS2)
}

// exampleOutcome is what one observation did.
type exampleOutcome struct {
	errType pipeline.ErrorType
	errText string
	patient string
	fires   []string
	news2   []exampleVital
	alert   *exampleNEWS2
	skipped string
	records int
}

// runExample processes value as an unkeyed record on fhir.Observation and,
// when the processor re-keys it, the re-keyed record on the repartition
// topic, on a fresh harness and metrics set.
func runExample(t *testing.T, value []byte, offset int64) exampleOutcome {
	t.Helper()
	set := metrics.NewSet()
	p := newProcessor(t, WithMetrics(set))
	h, err := pipeline.NewHarness(p.Spec())
	if err != nil {
		t.Fatal(err)
	}
	var got exampleOutcome
	rec := &kgo.Record{
		Topic: TopicObservations, Partition: 0, Offset: offset, Value: value,
		Timestamp: time.Date(2024, 4, 5, 18, 0, 0, 0, time.UTC),
	}
	recordError := func(err error) exampleOutcome {
		if errorType(err) == "" {
			t.Fatalf("error %v is not a record error", err)
		}
		return exampleOutcome{errType: errorType(err), errText: err.Error()}
	}
	out, err := h.Process(rec)
	if err != nil {
		return recordError(err)
	}
	repart := pipeline.RepartitionTopic(Group, RepartitionByPatient)
	if len(out) != 1 || out[0].Topic != repart {
		t.Fatalf("an unkeyed observation emitted %d records, want it re-keyed by patient", len(out))
	}
	got.patient = string(out[0].Key)
	keyed := *out[0]
	keyed.Partition, keyed.Offset = 0, offset
	if out, err = h.Process(&keyed); err != nil {
		return recordError(err)
	}
	got.records = len(out)
	for _, r := range out {
		if r.Topic != TopicAlerts {
			continue
		}
		var a Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatalf("alert record: %v", err)
		}
		got.fires = append(got.fires, a.RuleID)
		if a.NEWS2 != nil {
			got.alert = &exampleNEWS2{Score: a.NEWS2.Score, Trigger: a.NEWS2.Trigger}
		}
	}
	slices.Sort(got.fires)
	if state, ok := h.Store(StorePatientAlerts).Get(got.patient); ok {
		st, err := readState(state)
		if err != nil {
			t.Fatalf("patient state: %v", err)
		}
		onOxygen := false
		for _, v := range st.Vitals {
			if v.Vital == vitalSupplementalOxygen && v.Value != 0 {
				onOxygen = true
			}
		}
		for _, v := range st.Vitals {
			got.news2 = append(got.news2, exampleVital{
				Parameter: v.Vital.String(), Value: v.Value,
				Score: scoreVital(v.Vital, v.Value, rules.DefaultNEWS2SpO2Scale, onOxygen),
			})
		}
	}
	got.skipped = skippedReasons(t, set)
	return got
}

// skippedReasons is the reasons carepipe_alerts_skipped_total counts, from
// the metrics as exported, joined by commas.
func skippedReasons(t *testing.T, set *metrics.Set) string {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	var reasons []string
	const prefix = `carepipe_alerts_skipped_total{pipeline="alerts",reason="`
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		reason, count, ok := strings.Cut(line, `"} `)
		if !ok {
			t.Fatalf("unreadable metric line %q", sc.Text())
		}
		n, err := strconv.ParseFloat(count, 64)
		if err != nil {
			t.Fatalf("unreadable metric line %q", sc.Text())
		}
		if n != 0 {
			reasons = append(reasons, reason)
		}
	}
	return strings.Join(reasons, ",")
}

// mismatch describes how o differs from want, "" when it does not.
func (o *exampleOutcome) mismatch(want *exampleOutcome) string {
	var d []string
	if want.errType != "" {
		if o.errType != want.errType || !strings.Contains(o.errText, want.errText) {
			return fmt.Sprintf("outcome %s, want an %s error saying %q", o, want.errType, want.errText)
		}
		return ""
	}
	if o.errType != "" {
		return fmt.Sprintf("outcome %s, want no error", o)
	}
	if o.patient != want.patient {
		d = append(d, fmt.Sprintf("re-keyed to patient %q, want %q", o.patient, want.patient))
	}
	if o.skipped != want.skipped {
		d = append(d, fmt.Sprintf("skip counted %q, want %q", o.skipped, want.skipped))
	}
	if !slices.Equal(o.fires, want.fires) {
		d = append(d, fmt.Sprintf("fired %v, want %v", o.fires, want.fires))
	}
	sameVitals := len(o.news2) == len(want.news2)
	for i := 0; sameVitals && i < len(o.news2); i++ {
		g, w := o.news2[i], want.news2[i]
		sameVitals = g.Parameter == w.Parameter && g.Score == w.Score && math.Abs(g.Value-w.Value) <= 1e-9*math.Max(1, math.Abs(w.Value))
	}
	if !sameVitals {
		d = append(d, fmt.Sprintf("NEWS2 readings %v, want %v", o.news2, want.news2))
	}
	if (o.alert == nil) != (want.alert == nil) || o.alert != nil && *o.alert != *want.alert {
		d = append(d, fmt.Sprintf("news2 alert %v, want %v", o.alert, want.alert))
	}
	if want.skipped != "" && o.records != 0 {
		d = append(d, fmt.Sprintf("a skipped observation emitted %d records", o.records))
	}
	return strings.Join(d, "; ")
}

func (o *exampleOutcome) String() string {
	if o.errType != "" {
		return fmt.Sprintf("%s error %q", o.errType, o.errText)
	}
	return fmt.Sprintf("patient %q fired %v NEWS2 %v alert %v skipped %q", o.patient, o.fires, o.news2, o.alert, o.skipped)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
