package priorauth

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/sim"
)

var updateScripts = flag.Bool("update", false, "rewrite the expect lines of testdata/lifecycle")

// TestLifecycleScripts runs the prior-authorization scripts of
// testdata/lifecycle through the processor's real Process and Punctuate on
// the harness (the format is described at the top of each file). After
// each step it renders what the step emitted and what the store holds for
// the prior authorization, and compares that with the step's expect lines.
func TestLifecycleScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "lifecycle", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/lifecycle: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			var s *lifecycleScript
			for i, raw := range strings.Split(strings.TrimSuffix(string(src), "\n"), "\n") {
				line := strings.TrimSpace(raw)
				verb, rest, _ := strings.Cut(line, " ")
				if verb == "expect" {
					s.expect = append(s.expect, rest)
					continue
				}
				// Any other line ends the step before it.
				if s != nil {
					s.check(t, file, &out)
				}
				out.WriteString(raw + "\n")
				switch {
				case line == "" || strings.HasPrefix(line, "#"):
				case verb == "at":
					at, err := time.Parse(time.RFC3339, rest)
					if err != nil {
						t.Fatalf("%s:%d: %v", file, i+1, err)
					}
					if s == nil {
						s = newLifecycleScript(t, at)
					}
					s.clock.Set(at)
				case s == nil:
					t.Fatalf("%s:%d: %s before the first at", file, i+1, verb)
				case verb == "send":
					topic, kv, _ := strings.Cut(rest, " ")
					key, value, _ := strings.Cut(kv, " ")
					s.send(t, topic, key, value, i+1)
				case verb == "punctuate":
					s.punctuate(t, i+1)
				default:
					t.Fatalf("%s:%d: unknown verb %q", file, i+1, verb)
				}
			}
			if s != nil {
				s.check(t, file, &out)
			}
			if *updateScripts {
				if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// lifecycleScript is the state of one script: the harness, its clock, the
// prior authorizations it has seen, and the step being run.
type lifecycleScript struct {
	h     *pipeline.Harness
	clock *sim.VirtualClock
	ids   []string
	// The step being run: where it is, what it produced, what it expects.
	line   int
	got    []string
	expect []string
}

func newLifecycleScript(t *testing.T, at time.Time) *lifecycleScript {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	clock := sim.NewVirtualClock(at)
	h, err := pipeline.NewHarness(p.Spec(), pipeline.HarnessClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return &lifecycleScript{h: h, clock: clock}
}

// send processes a record, and the record it re-keys (a prescription
// keyed by its own id comes back keyed by its prior authorization's).
func (s *lifecycleScript) send(t *testing.T, topic, key, value string, line int) {
	t.Helper()
	s.line = line
	queue := []*kgo.Record{{Topic: topic, Key: []byte(key), Value: []byte(value)}}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		r.Timestamp = s.clock.Now()
		out, err := s.h.Process(r)
		var re *pipeline.RecordError
		switch {
		case errors.As(err, &re):
			s.got = append(s.got, "error-topic "+string(re.Type))
		case err != nil:
			t.Fatalf("line %d: %v", line, err)
		}
		for _, o := range out {
			if o.Topic == pipeline.RepartitionTopic(Group, RepartitionByPriorAuth) {
				again := *o
				queue = append(queue, &again)
				continue
			}
			s.got = append(s.got, renderEmit(o))
		}
		s.track(string(r.Key))
	}
}

func (s *lifecycleScript) punctuate(t *testing.T, line int) {
	t.Helper()
	s.line = line
	out, err := s.h.Punctuate()
	if err != nil {
		t.Fatalf("line %d: punctuate: %v", line, err)
	}
	for _, o := range out {
		s.got = append(s.got, renderEmit(o))
	}
}

// track remembers key when it is a stored prior authorization's id.
func (s *lifecycleScript) track(key string) {
	if _, ok := s.h.Store(StorePriorAuths).Get(key); ok && !slices.Contains(s.ids, key) {
		s.ids = append(s.ids, key)
	}
}

// check renders the step's results after what it emitted: each prior
// authorization's stored status and pending timers, and compares them with
// the step's expect lines, which it writes to out as the code has them.
func (s *lifecycleScript) check(t *testing.T, file string, out *strings.Builder) {
	t.Helper()
	if s.line == 0 {
		s.expect = s.expect[:0]
		return
	}
	for _, id := range s.ids {
		b, ok := s.h.Store(StorePriorAuths).Get(id)
		if !ok {
			s.got = append(s.got, "stored "+id+" none")
			continue
		}
		rec, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("stored %s: %v", id, err)
		}
		line := fmt.Sprintf("stored %s %s", id, rec.Status)
		for _, tm := range rec.Timers {
			line += fmt.Sprintf(" %s@%s", tm.Kind, tm.Due)
		}
		if len(rec.Parked) > 0 {
			line += fmt.Sprintf(" parked=%d", len(rec.Parked))
		}
		s.got = append(s.got, line)
	}
	if !slices.Equal(s.got, s.expect) {
		t.Errorf("%s:%d:\n got:\n  expect %s\nwant:\n  expect %s", file, s.line,
			strings.Join(s.got, "\n  expect "), strings.Join(s.expect, "\n  expect "))
	}
	for _, g := range s.got {
		out.WriteString("expect " + g + "\n")
	}
	s.line, s.got, s.expect = 0, s.got[:0], s.expect[:0]
}

// renderEmit is an output as a script line: its topic and key, and the
// fields of its value a reader of the lifecycle looks for.
func renderEmit(r *kgo.Record) string {
	var v struct {
		Status         string `json:"status"`
		PreviousStatus string `json:"previousStatus"`
		Determination  string `json:"determinationStatus"`
		CheckNumber    int    `json:"checkNumber"`
	}
	_ = json.Unmarshal(r.Value, &v)
	line := fmt.Sprintf("emit %s key=%s", r.Topic, r.Key)
	if v.PreviousStatus != "" {
		line += " from=" + v.PreviousStatus
	}
	if v.Status != "" {
		line += " status=" + v.Status
	}
	if v.Determination != "" {
		line += " determination=" + v.Determination
	}
	if v.CheckNumber != 0 {
		line += fmt.Sprintf(" check=%d", v.CheckNumber)
	}
	return line
}
