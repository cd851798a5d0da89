package datasync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// rsUpd is a change of entity e, id p1, from src at t, with fields given as name,
// JSON value pairs.
func rsUpd(e Entity, src string, t int64, kv ...string) *Change {
	fs := Fields{}
	for i := 0; i+1 < len(kv); i += 2 {
		fs[kv[i]] = json.RawMessage(kv[i+1])
	}
	return &Change{Entity: e, ID: "p1", Op: OpUpsert, Source: src, SourceTime: t, SourceVersion: 1, Fields: fs}
}

func rsDel(e Entity, src string, t int64) *Change {
	return &Change{Entity: e, ID: "p1", Op: OpDelete, Source: src, SourceTime: t, SourceVersion: 1}
}

// rsApplyAll applies chs in order from nothing, requiring each to be Applied
// and never to modify the state it was given.
func rsApplyAll(t *testing.T, p Policy, chs ...*Change) *State {
	t.Helper()
	var st *State
	for i, ch := range chs {
		before := mustMarshalState(t, st)
		out := p.apply(st, ch)
		if out.Kind != outcomeApplied {
			t.Fatalf("setup change %d: %v, want applied", i, out.Kind)
		}
		if !bytes.Equal(before, mustMarshalState(t, st)) {
			t.Fatalf("setup change %d modified the state it was given", i)
		}
		st = out.State
	}
	return st
}

func rsFields(fs Fields) string {
	if fs == nil {
		return "<nil>"
	}
	var b strings.Builder
	for _, k := range sortedKeys(fs) {
		fmt.Fprintf(&b, "%s=%s ", k, fs[k])
	}
	return strings.TrimSpace(b.String())
}

// TestResolveScripts runs the conflict-resolution scripts of
// testdata/resolve (the format is described at the top of each file): for
// each case it applies the given changes from no state, applies the change
// under test and compares the outcome, rendered, with the case's expect
// lines. It also checks what no script states: Apply never modifies the
// state it is given, an applied change is a new state one version on, and
// a duplicate or stale change returns the state it was given.
func TestResolveScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "resolve", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/resolve: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases, err := parseResolveScript(string(src))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			var rewritten strings.Builder
			for _, c := range cases {
				got := c.run(t)
				rewritten.WriteString(c.text)
				for _, l := range got {
					rewritten.WriteString("expect " + l + "\n")
				}
				if !slices.Equal(got, c.expect) {
					t.Errorf("%s:%d: case %s:\n got:\n  expect %s\nwant:\n  expect %s", file, c.line, c.name,
						strings.Join(got, "\n  expect "), strings.Join(c.expect, "\n  expect "))
				}
			}
			if updateGoldens() {
				if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// resolveCase is one case of a resolution script.
type resolveCase struct {
	name   string
	line   int
	entity Entity
	given  []*Change
	apply  *Change
	expect []string
	// text is the case's source up to its expect lines, with the comments
	// and blank lines before it, for -update.
	text string
}

func parseResolveScript(src string) ([]*resolveCase, error) {
	var cases []*resolveCase
	var cur *resolveCase
	var pending strings.Builder // comments and blank lines before a case
	for i, raw := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		ln := i + 1
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			if cur != nil && len(cur.expect) == 0 {
				cur.text += raw + "\n"
			} else {
				pending.WriteString(raw + "\n")
			}
			continue
		}
		verb, rest, _ := strings.Cut(l, " ")
		if verb == "case" {
			cur = &resolveCase{name: rest, line: ln, text: pending.String() + raw + "\n"}
			pending.Reset()
			cases = append(cases, cur)
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %s before the first case", ln, verb)
		}
		if verb != "expect" {
			if len(cur.expect) > 0 {
				return nil, fmt.Errorf("line %d: %s after the expect lines", ln, verb)
			}
			cur.text += raw + "\n"
		}
		switch verb {
		case "entity":
			cur.entity = Entity(rest)
			if _, ok := DefaultPolicies()[cur.entity]; !ok {
				return nil, fmt.Errorf("line %d: no policy for entity %q", ln, rest)
			}
		case "given", "apply":
			if cur.entity == "" {
				return nil, fmt.Errorf("line %d: %s before entity", ln, verb)
			}
			ch, err := parseScriptChange(cur.entity, rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", ln, err)
			}
			if verb == "given" {
				cur.given = append(cur.given, ch)
			} else if cur.apply != nil {
				return nil, fmt.Errorf("line %d: a second apply", ln)
			} else {
				cur.apply = ch
			}
		case "expect":
			cur.expect = append(cur.expect, rest)
		default:
			return nil, fmt.Errorf("line %d: unknown verb %q", ln, verb)
		}
	}
	for _, c := range cases {
		if c.apply == nil {
			return nil, fmt.Errorf("line %d: case %s has no apply", c.line, c.name)
		}
	}
	return cases, nil
}

// parseScriptChange reads "SRC@T upsert {JSON}" or "SRC@T delete": a
// change of id p1, source version 1.
func parseScriptChange(e Entity, s string) (*Change, error) {
	at, rest, _ := strings.Cut(s, " ")
	src, ts, ok := strings.Cut(at, "@")
	tm, err := strconv.ParseInt(ts, 10, 64)
	if !ok || src == "" || err != nil {
		return nil, fmt.Errorf("%q is not SOURCE@TIME", at)
	}
	op, fields, _ := strings.Cut(rest, " ")
	switch Operation(op) {
	case OpDelete:
		return rsDel(e, src, tm), nil
	case OpUpsert:
		fs := Fields{}
		if err := json.Unmarshal([]byte(fields), &fs); err != nil {
			return nil, fmt.Errorf("fields: %w", err)
		}
		ch := rsUpd(e, src, tm)
		ch.Fields = fs
		return ch, nil
	}
	return nil, fmt.Errorf("operation %q is neither upsert nor delete", op)
}

// run applies the case and renders its outcome as expect lines.
func (c *resolveCase) run(t *testing.T) []string {
	t.Helper()
	policy := DefaultPolicies()[c.entity]
	st := rsApplyAll(t, policy, c.given...)
	held := mustMarshalState(t, st)
	out := policy.apply(st, c.apply)
	if !bytes.Equal(held, mustMarshalState(t, st)) {
		t.Errorf("case %s: Apply modified the state it was given", c.name)
	}
	if out.Kind == outcomeApplied {
		if out.State == st || out.State.Version != st.Version+1 {
			t.Errorf("case %s: applied, but the state is not a new one at version %d", c.name, st.Version+1)
		}
	} else if out.State != st {
		t.Errorf("case %s: %v, but the state is not the one given", c.name, out.Kind)
	}
	kind := out.Kind.String()
	if out.Changed {
		kind += " changed"
	}
	m := out.State.Materialize(c.apply.Entity, "p1")
	if m.Entity != c.apply.Entity || m.ID != "p1" {
		t.Errorf("case %s: materialized %s/%s", c.name, m.Entity, m.ID)
	}
	lines := []string{kind, fmt.Sprintf("state %s %s@%d %s", m.Op, m.Source, m.SourceTime, rsFields(m.Fields))}
	if r := out.Resolution; r != nil {
		lines = append(lines, fmt.Sprintf("resolution %s systems=%s", r.Strategy, strings.Join(r.ConflictingSystems, ",")))
		for _, d := range r.Fields {
			lines = append(lines, fmt.Sprintf("decision %s %s@%d over %s@%d", d.Field, d.Winner, d.WinnerTimestamp, d.Loser, d.LoserTimestamp))
		}
	}
	return lines
}

func TestResolveMaterializeSystemFields(t *testing.T) {
	p := DefaultPolicies()[Prescription]
	a := rsUpd(Prescription, "ehr", 4, "dosage", `"1mg"`)
	a.SourceVersion = 7
	b := rsUpd(Prescription, "pharmacy", 4, "status", `"active"`)
	b.SourceVersion = 3
	st := rsApplyAll(t, p, a, b)
	m := st.Materialize(Prescription, "rx1")
	// Equal times: pharmacy ranks first for prescriptions.
	if m.Source != "pharmacy" || m.SourceTime != 4 || m.SourceVersion != 3 || m.Op != OpUpsert || m.ID != "rx1" {
		t.Fatalf("materialized %+v", m)
	}
	var none *State
	if m := none.Materialize(Patient, "x"); m.Op != OpUpsert || len(m.Fields) != 0 || m.SourceTime != 0 {
		t.Fatalf("nil state materialized %+v", m)
	}
	d := rsDel(Prescription, "ehr", 9)
	d.SourceVersion = 2
	st = rsApplyAll(t, p, a, b, d)
	if m := st.Materialize(Prescription, "rx1"); m.Op != OpDelete || m.Fields != nil || m.Source != "ehr" || m.SourceTime != 9 || m.SourceVersion != 2 {
		t.Fatalf("deleted materialized %+v", m)
	}
}

func TestResolveStrategyChange(t *testing.T) {
	pol := DefaultPolicies()
	// Held under last-writer-wins, then applied under field-merge and back.
	st := rsApplyAll(t, pol[Encounter], rsUpd(Prescription, "ehr", 2, "status", `"active"`, "dosage", `"1mg"`))
	out := pol[Prescription].apply(st, rsUpd(Prescription, "pharmacy", 3, "status", `"stopped"`))
	if out.Kind != outcomeApplied {
		t.Fatalf("kind %v", out.Kind)
	}
	if got := rsFields(out.State.Materialize(Prescription, "p1").Fields); got != `dosage="1mg" status="stopped"` {
		t.Fatalf("fields %s", got)
	}
	back := pol[Encounter].apply(out.State, rsUpd(Prescription, "ehr", 3, "status", `"completed"`))
	if back.Kind != outcomeApplied || rsFields(back.State.Materialize(Prescription, "p1").Fields) != `status="completed"` {
		t.Fatalf("back to lww: %v %s", back.Kind, rsFields(back.State.Materialize(Prescription, "p1").Fields))
	}
}

func TestResolveParseStrategy(t *testing.T) {
	for _, s := range []Strategy{LastWriterWins, Survivorship, FieldMerge} {
		if got, err := parseStrategy(string(s)); err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "lww", "Survivorship"} {
		if _, err := parseStrategy(s); err == nil {
			t.Errorf("ParseStrategy(%q): no error", s)
		}
	}
}

func TestResolvePolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		bad  bool
	}{
		{"lww", Policy{Strategy: LastWriterWins, SourcePriority: []string{"ehr"}}, false},
		{"no priorities", Policy{Strategy: FieldMerge}, false},
		{"survivorship with fields", Policy{Strategy: Survivorship, SourcePriority: []string{"a", "b"}, FieldPriority: map[string][]string{"x": {"b", "a"}}}, false},
		{"unknown strategy", Policy{Strategy: "newest"}, true},
		{"empty strategy", Policy{}, true},
		{"field priority under merge", Policy{Strategy: FieldMerge, FieldPriority: map[string][]string{"x": {"a"}}}, true},
		{"empty source", Policy{Strategy: FieldMerge, SourcePriority: []string{"a", ""}}, true},
		{"duplicate source", Policy{Strategy: FieldMerge, SourcePriority: []string{"a", "b", "a"}}, true},
		{"duplicate field source", Policy{Strategy: Survivorship, FieldPriority: map[string][]string{"x": {"a", "a"}}}, true},
		{"empty field source", Policy{Strategy: Survivorship, FieldPriority: map[string][]string{"x": {""}}}, true},
		{"empty field name", Policy{Strategy: Survivorship, FieldPriority: map[string][]string{"": {"a"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.validate(); (err != nil) != tt.bad {
				t.Fatalf("Validate() = %v, want error %v", err, tt.bad)
			}
		})
	}
	for e, p := range DefaultPolicies() {
		if err := p.validate(); err != nil {
			t.Errorf("default policy of %s: %v", e, err)
		}
	}
	if got := len(DefaultPolicies()); got != len(Entities()) {
		t.Errorf("%d default policies, want one per entity", got)
	}
}

func TestStateMarshalDeterministic(t *testing.T) {
	pol := DefaultPolicies()
	chs := []*Change{
		rsUpd(Patient, "registration", 1, "address", `{"line":["1 Main"]}`, "firstName", `"Ann"`),
		rsUpd(Patient, "ehr", 3, "address", `{"line":["9 Elm"]}`, "identifiers", `[{"system":"mrn","value":"7"}]`),
		rsUpd(Patient, "pharmacy", 2, "identifiers", `[{"system":"rx","value":"3"}]`, "gender", `"female"`),
		rsDel(Patient, "other", 1),
	}
	for _, p := range []Policy{pol[Patient], pol[Prescription], pol[Encounter]} {
		t.Run(string(p.Strategy), func(t *testing.T) {
			forward := p.applyInOrder(nil, chs)
			backward := p.applyInOrder(nil, []*Change{chs[3], chs[2], chs[1], chs[0]})
			forward.Version, backward.Version = 0, 0
			a, b := mustMarshalState(t, forward), mustMarshalState(t, backward)
			if !bytes.Equal(a, b) {
				t.Fatalf("equal states, different bytes:\n%s\n%s", a, b)
			}
			back, err := UnmarshalState(a)
			if err != nil {
				t.Fatal(err)
			}
			if c := mustMarshalState(t, back); !bytes.Equal(a, c) {
				t.Fatalf("round trip changed the bytes:\n%s\n%s", a, c)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, a); err != nil || !bytes.Equal(compact.Bytes(), a) {
				t.Fatalf("not compact JSON (%v): %s", err, a)
			}
		})
	}
}

func TestStateUnmarshal(t *testing.T) {
	if st, err := UnmarshalState([]byte("null")); err != nil || st != nil {
		t.Fatalf("null: %v, %v", st, err)
	}
	if got := mustMarshalState(t, nil); string(got) != "null" {
		t.Fatalf("mustMarshalState(t, nil) = %s", got)
	}
	for _, b := range []string{
		`{"version":1`,
		`{"version":"secret-value"}`,
		`{"version":1,"strategy":"newest"}`,
		`{"version":1,"strategy":"last-writer-wins","fields":{"a":[{"s":"x","t":1,"v":1}]}}`,
		`{"version":1,"strategy":"field-merge","winner":{"s":"x","t":1}}`,
	} {
		_, err := UnmarshalState([]byte(b))
		if err == nil {
			t.Errorf("%s: no error", b)
			continue
		}
		if strings.Contains(err.Error(), "secret-value") {
			t.Errorf("error quotes the input: %v", err)
		}
	}
}

// applyInOrder applies chs in order from st, whatever the outcomes.
func (p Policy) applyInOrder(st *State, chs []*Change) *State {
	for _, ch := range chs {
		st = p.apply(st, ch).State
	}
	return st
}

// Property tests: the materialized entity is a function of the set of
// changes applied, whatever their order and duplication.

var propSources = []string{"ehr", "registration", "pharmacy", "other"}

var propValues = map[string][]string{
	"firstName":   {`"Ann"`, `"Bo"`},
	"lastName":    {`"Lee"`, `"Li"`, `"Ng"`},
	"gender":      {`"female"`, `"male"`},
	"address":     {`{"line":["1 Main"]}`, `{"city":"Oslo","line":["2 Elm"]}`},
	"identifiers": {`[{"system":"mrn","value":"1"}]`, `[{"system":"mrn","value":"2"}]`, `[{"system":"mrn","value":"1"},{"system":"ssn","value":"9"}]`, `[]`},
}

func genChange(e Entity) *rapid.Generator[*Change] {
	names := sortedKeys(propValues)
	return rapid.Custom(func(t *rapid.T) *Change {
		ch := &Change{
			Entity:        e,
			ID:            "p1",
			Source:        rapid.SampledFrom(propSources).Draw(t, "source"),
			SourceTime:    rapid.Int64Range(1, 6).Draw(t, "time"),
			SourceVersion: rapid.Int64Range(1, 2).Draw(t, "version"),
		}
		if rapid.IntRange(1, 100).Draw(t, "pct") <= 15 {
			ch.Op = OpDelete
			return ch
		}
		ch.Op = rapid.SampledFrom([]Operation{OpUpsert, OpCreate, OpUpdate}).Draw(t, "op")
		ch.Fields = Fields{}
		for _, f := range rapid.SliceOfNDistinct(rapid.SampledFrom(names), 1, 4, func(s string) string { return s }).Draw(t, "fields") {
			ch.Fields[f] = json.RawMessage(rapid.SampledFrom(propValues[f]).Draw(t, f))
		}
		return ch
	})
}

var propPolicies = map[string]Policy{
	"last-writer-wins": {Strategy: LastWriterWins, SourcePriority: []string{"ehr", "pharmacy"}},
	"survivorship":     DefaultPolicies()[Patient],
	"field-merge":      {Strategy: FieldMerge, SourcePriority: []string{"pharmacy", "ehr"}},
}

// requireSameEntity fails unless a and b are the same materialized entity.
func requireSameEntity(t *rapid.T, what string, a, b Change) {
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: materialized differently:\n%s %s %s@%d v%d {%s}\n%s %s %s@%d v%d {%s}", what,
			a.Op, a.ID, a.Source, a.SourceTime, a.SourceVersion, rsFields(a.Fields),
			b.Op, b.ID, b.Source, b.SourceTime, b.SourceVersion, rsFields(b.Fields))
	}
}

func TestPropertyOrderIndependence(t *testing.T) {
	for _, name := range sortedKeys(propPolicies) {
		p := propPolicies[name]
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				chs := rapid.SliceOfN(genChange(Patient), 1, 12).Draw(t, "changes")
				ref := p.applyInOrder(nil, chs)
				want := ref.Materialize(Patient, "p1")

				// Each change 1..3 times, in any order.
				var idx []int
				for i := range chs {
					for range rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("copies%d", i)) {
						idx = append(idx, i)
					}
				}
				idx = rapid.Permutation(idx).Draw(t, "order")
				var direct, stored *State
				applied := int64(0)
				for _, i := range idx {
					out := p.apply(direct, chs[i])
					if out.Kind == outcomeApplied {
						applied++
					} else if out.State != direct {
						t.Fatalf("%v but a new state", out.Kind)
					}
					direct = out.State
					// The same through the store: serialized after every change.
					b := mustMarshalState(t, p.apply(stored, chs[i]).State)
					var err error
					if stored, err = UnmarshalState(b); err != nil {
						t.Fatalf("unmarshal: %v", err)
					}
				}
				requireSameEntity(t, "permuted", want, direct.Materialize(Patient, "p1"))
				requireSameEntity(t, "through the store", want, stored.Materialize(Patient, "p1"))
				if direct.Version != applied {
					t.Fatalf("version %d, %d applied", direct.Version, applied)
				}
				// The state itself, Version aside, is the same.
				a, b := *ref, *direct
				a.Version, b.Version = 0, 0
				if x, y := mustMarshalState(t, &a), mustMarshalState(t, &b); !bytes.Equal(x, y) {
					t.Fatalf("states differ:\n%s\n%s", x, y)
				}
			})
		})
	}
}

func TestPropertyReapply(t *testing.T) {
	for _, name := range sortedKeys(propPolicies) {
		p := propPolicies[name]
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				chs := rapid.SliceOfN(genChange(Patient), 1, 12).Draw(t, "changes")
				st := p.applyInOrder(nil, chs)
				want := st.Materialize(Patient, "p1")
				held := mustMarshalState(t, st)
				for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(chs)-1), 1, 5).Draw(t, "again") {
					out := p.apply(st, chs[i])
					if out.Kind != outcomeDuplicate && out.Kind != outcomeStale {
						t.Fatalf("change %d again: %v", i, out.Kind)
					}
					if out.State != st || out.Changed {
						t.Fatalf("change %d again: a new state", i)
					}
					requireSameEntity(t, "again", want, out.State.Materialize(Patient, "p1"))
				}
				if !bytes.Equal(held, mustMarshalState(t, st)) {
					t.Fatal("the held state was modified")
				}
			})
		})
	}
}

// TestPropertyOutcome checks the outcome against the state: Applied exactly
// when the state changed, and a Resolution only with decisions in it.
func TestPropertyOutcome(t *testing.T) {
	for _, name := range sortedKeys(propPolicies) {
		p := propPolicies[name]
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				chs := rapid.SliceOfN(genChange(Patient), 1, 12).Draw(t, "changes")
				var st *State
				for _, ch := range chs {
					before := mustMarshalState(t, st)
					out := p.apply(st, ch)
					if out.Kind == outcomeApplied && st != nil {
						a, b := *st, *out.State
						a.Version, b.Version = 0, 0
						if bytes.Equal(mustMarshalState(t, &a), mustMarshalState(t, &b)) {
							t.Fatal("applied, but the state is the same")
						}
					}
					if r := out.Resolution; r != nil {
						if len(r.Fields) == 0 || r.Strategy != string(p.Strategy) || !slices.IsSorted(r.ConflictingSystems) {
							t.Fatalf("resolution %+v", r)
						}
					}
					if out.Kind == outcomeDuplicate && out.Resolution != nil {
						t.Fatal("duplicate with a resolution")
					}
					if !bytes.Equal(before, mustMarshalState(t, st)) {
						t.Fatal("the input state was modified")
					}
					st = out.State
				}
			})
		})
	}
}

// mustMarshalState is MarshalState for tests, where a state that does not
// encode fails the test.
func mustMarshalState(t interface {
	Helper()
	Fatal(...any)
}, s *State) []byte {
	t.Helper()
	b, err := marshalState(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
