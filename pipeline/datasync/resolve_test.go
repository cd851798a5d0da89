package datasync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
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
		before := MarshalState(st)
		out := p.Apply(st, ch)
		if out.Kind != Applied {
			t.Fatalf("setup change %d: %v, want applied", i, out.Kind)
		}
		if !bytes.Equal(before, MarshalState(st)) {
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

func TestResolveStrategies(t *testing.T) {
	pol := DefaultPolicies()
	lww, surv, merge := pol[Encounter], pol[Patient], pol[Prescription]
	dec := func(f, w string, wt int64, l string, lt int64) FieldDecision {
		return FieldDecision{Field: f, Winner: w, WinnerTimestamp: wt, Loser: l, LoserTimestamp: lt}
	}
	tests := []struct {
		name    string
		policy  Policy
		held    []*Change // applied first, each must be Applied
		ch      *Change
		kind    OutcomeKind
		changed bool
		res     *Resolution
		want    string // materialized fields after
		op      Operation
		src     string
		time    int64
	}{
		{
			name: "lww newer wins", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 1, "status", `"planned"`)},
			ch:   rsUpd(Encounter, "ehr", 2, "status", `"finished"`),
			kind: Applied, changed: true, want: `status="finished"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "lww older is stale", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 2, "status", `"finished"`)},
			ch:   rsUpd(Encounter, "ehr", 1, "status", `"planned"`),
			kind: Stale, want: `status="finished"`, op: OpUpsert, src: "ehr", time: 2,
			res: &Resolution{Strategy: "last-writer-wins", ConflictingSystems: []string{"ehr"}, Fields: []FieldDecision{dec("*", "ehr", 2, "ehr", 1)}},
		},
		{
			name: "lww duplicate", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 2, "status", `"finished"`)},
			ch:   rsUpd(Encounter, "ehr", 2, "status", `"finished"`),
			kind: Duplicate, want: `status="finished"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "lww equal time, priority wins", policy: lww,
			held: []*Change{rsUpd(Encounter, "portal", 5, "status", `"planned"`)},
			ch:   rsUpd(Encounter, "ehr", 5, "status", `"arrived"`),
			kind: Applied, changed: true, want: `status="arrived"`, op: OpUpsert, src: "ehr", time: 5,
			res: &Resolution{Strategy: "last-writer-wins", ConflictingSystems: []string{"ehr", "portal"}, Fields: []FieldDecision{dec("*", "ehr", 5, "portal", 5)}},
		},
		{
			name: "lww equal time, lower priority is stale", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 5, "status", `"arrived"`)},
			ch:   rsUpd(Encounter, "portal", 5, "status", `"planned"`),
			kind: Stale, want: `status="arrived"`, op: OpUpsert, src: "ehr", time: 5,
			res: &Resolution{Strategy: "last-writer-wins", ConflictingSystems: []string{"ehr", "portal"}, Fields: []FieldDecision{dec("*", "ehr", 5, "portal", 5)}},
		},
		{
			name: "lww delete then older update is stale", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 1, "status", `"planned"`), rsDel(Encounter, "ehr", 3)},
			ch:   rsUpd(Encounter, "ehr", 2, "status", `"arrived"`),
			kind: Stale, want: "<nil>", op: OpDelete, src: "ehr", time: 3,
			res: &Resolution{Strategy: "last-writer-wins", ConflictingSystems: []string{"ehr"}, Fields: []FieldDecision{dec("*", "ehr", 3, "ehr", 2)}},
		},
		{
			name: "lww delete then newer update resurrects", policy: lww,
			held: []*Change{rsUpd(Encounter, "ehr", 1, "status", `"planned"`), rsDel(Encounter, "ehr", 3)},
			ch:   rsUpd(Encounter, "ehr", 4, "class", `"AMB"`),
			kind: Applied, changed: true, want: `class="AMB"`, op: OpUpsert, src: "ehr", time: 4,
		},
		{
			name: "survivorship newer from same source wins", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 1, "firstName", `"Ann"`)},
			ch:   rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`),
			kind: Applied, changed: true, want: `firstName="Anne"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "survivorship older is stale", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`)},
			ch:   rsUpd(Patient, "ehr", 1, "firstName", `"Ann"`),
			kind: Stale, want: `firstName="Anne"`, op: OpUpsert, src: "ehr", time: 2,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr"}, Fields: []FieldDecision{dec("firstName", "ehr", 2, "ehr", 1)}},
		},
		{
			name: "survivorship duplicate", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`, "lastName", `"Lee"`)},
			ch:   rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`, "lastName", `"Lee"`),
			kind: Duplicate, want: `firstName="Anne" lastName="Lee"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "survivorship keeps registration address, takes newer ehr firstName", policy: surv,
			held: []*Change{rsUpd(Patient, "registration", 1, "address", `{"line":["1 Main"]}`, "firstName", `"Ann"`)},
			ch:   rsUpd(Patient, "ehr", 3, "address", `{"line":["9 Elm"]}`, "firstName", `"Anne"`),
			kind: Applied, changed: true, want: `address={"line":["1 Main"]} firstName="Anne"`, op: OpUpsert, src: "ehr", time: 3,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr", "registration"}, Fields: []FieldDecision{dec("address", "registration", 1, "ehr", 3)}},
		},
		{
			name: "survivorship a losing value is still accepted", policy: surv,
			held: []*Change{rsUpd(Patient, "registration", 1, "address", `{"line":["1 Main"]}`)},
			ch:   rsUpd(Patient, "ehr", 3, "address", `{"line":["9 Elm"]}`),
			kind: Applied, want: `address={"line":["1 Main"]}`, op: OpUpsert, src: "registration", time: 1,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr", "registration"}, Fields: []FieldDecision{dec("address", "registration", 1, "ehr", 3)}},
		},
		{
			name: "survivorship older value wins by priority", policy: surv,
			held: []*Change{rsUpd(Patient, "registration", 5, "firstName", `"Ann"`)},
			ch:   rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`),
			kind: Applied, changed: true, want: `firstName="Anne"`, op: OpUpsert, src: "ehr", time: 2,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr", "registration"}, Fields: []FieldDecision{dec("firstName", "ehr", 2, "registration", 5)}},
		},
		{
			name: "survivorship equal time, priority wins", policy: surv,
			held: []*Change{rsUpd(Patient, "pharmacy", 4, "gender", `"male"`)},
			ch:   rsUpd(Patient, "ehr", 4, "gender", `"female"`),
			kind: Applied, changed: true, want: `gender="female"`, op: OpUpsert, src: "ehr", time: 4,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr", "pharmacy"}, Fields: []FieldDecision{dec("gender", "ehr", 4, "pharmacy", 4)}},
		},
		{
			name: "survivorship delete then older update is stale", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 1, "firstName", `"Ann"`), rsDel(Patient, "ehr", 3)},
			ch:   rsUpd(Patient, "ehr", 2, "firstName", `"Anne"`),
			kind: Stale, want: "<nil>", op: OpDelete, src: "ehr", time: 3,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr"}, Fields: []FieldDecision{dec("firstName", "ehr", 3, "ehr", 2)}},
		},
		{
			name: "survivorship delete then newer update resurrects", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 1, "firstName", `"Ann"`, "lastName", `"Lee"`), rsDel(Patient, "ehr", 3)},
			ch:   rsUpd(Patient, "registration", 4, "lastName", `"Li"`),
			kind: Applied, changed: true, want: `lastName="Li"`, op: OpUpsert, src: "registration", time: 4,
		},
		{
			name: "survivorship delete outlived by a newer value", policy: surv,
			held: []*Change{rsUpd(Patient, "registration", 1, "address", `{"line":["1 Main"]}`), rsUpd(Patient, "ehr", 3, "address", `{"line":["9 Elm"]}`)},
			ch:   rsDel(Patient, "registration", 2),
			kind: Applied, changed: true, want: `address={"line":["9 Elm"]}`, op: OpUpsert, src: "ehr", time: 3,
			res: &Resolution{Strategy: "survivorship", ConflictingSystems: []string{"ehr", "registration"}, Fields: []FieldDecision{dec("*", "ehr", 3, "registration", 2)}},
		},
		{
			name: "survivorship identifiers union", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 1, "identifiers", `[{"system":"mrn","value":"7"}]`)},
			ch:   rsUpd(Patient, "registration", 2, "identifiers", `[{"system":"ssn","value":"1"},{"system":"mrn","value":"7"}]`),
			kind: Applied, changed: true, want: `identifiers=[{"system":"mrn","value":"7"},{"system":"ssn","value":"1"}]`, op: OpUpsert, src: "registration", time: 2,
		},
		{
			name: "survivorship identifiers replaced by the same source", policy: surv,
			held: []*Change{rsUpd(Patient, "ehr", 1, "identifiers", `[{"system":"mrn","value":"7"}]`), rsUpd(Patient, "registration", 1, "identifiers", `[{"system":"ssn","value":"1"}]`)},
			ch:   rsUpd(Patient, "ehr", 2, "identifiers", `[{"system":"mrn","value":"8"}]`),
			kind: Applied, changed: true, want: `identifiers=[{"system":"mrn","value":"8"},{"system":"ssn","value":"1"}]`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "field-merge per field latest", policy: merge,
			held: []*Change{rsUpd(Prescription, "pharmacy", 1, "status", `"active"`, "dosage", `"10mg"`)},
			ch:   rsUpd(Prescription, "ehr", 2, "dosage", `"20mg"`),
			kind: Applied, changed: true, want: `dosage="20mg" status="active"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "field-merge older is stale", policy: merge,
			held: []*Change{rsUpd(Prescription, "ehr", 2, "dosage", `"20mg"`)},
			ch:   rsUpd(Prescription, "pharmacy", 1, "dosage", `"10mg"`),
			kind: Stale, want: `dosage="20mg"`, op: OpUpsert, src: "ehr", time: 2,
			res: &Resolution{Strategy: "field-merge", ConflictingSystems: []string{"ehr", "pharmacy"}, Fields: []FieldDecision{dec("dosage", "ehr", 2, "pharmacy", 1)}},
		},
		{
			name: "field-merge duplicate", policy: merge,
			held: []*Change{rsUpd(Prescription, "ehr", 2, "dosage", `"20mg"`)},
			ch:   rsUpd(Prescription, "ehr", 2, "dosage", `"20mg"`),
			kind: Duplicate, want: `dosage="20mg"`, op: OpUpsert, src: "ehr", time: 2,
		},
		{
			name: "field-merge equal time, priority wins", policy: merge,
			held: []*Change{rsUpd(Prescription, "ehr", 3, "status", `"stopped"`)},
			ch:   rsUpd(Prescription, "pharmacy", 3, "status", `"active"`),
			kind: Applied, changed: true, want: `status="active"`, op: OpUpsert, src: "pharmacy", time: 3,
			res: &Resolution{Strategy: "field-merge", ConflictingSystems: []string{"ehr", "pharmacy"}, Fields: []FieldDecision{dec("status", "pharmacy", 3, "ehr", 3)}},
		},
		{
			name: "field-merge delete then older update is stale", policy: merge,
			held: []*Change{rsUpd(Prescription, "pharmacy", 1, "status", `"active"`), rsDel(Prescription, "pharmacy", 3)},
			ch:   rsUpd(Prescription, "ehr", 2, "status", `"stopped"`),
			kind: Stale, want: "<nil>", op: OpDelete, src: "pharmacy", time: 3,
			res: &Resolution{Strategy: "field-merge", ConflictingSystems: []string{"ehr", "pharmacy"}, Fields: []FieldDecision{dec("status", "pharmacy", 3, "ehr", 2)}},
		},
		{
			name: "field-merge delete then newer update resurrects", policy: merge,
			held: []*Change{rsUpd(Prescription, "pharmacy", 1, "status", `"active"`, "dosage", `"1mg"`), rsDel(Prescription, "pharmacy", 3)},
			ch:   rsUpd(Prescription, "ehr", 4, "status", `"completed"`),
			kind: Applied, changed: true, want: `status="completed"`, op: OpUpsert, src: "ehr", time: 4,
		},
		{
			name: "field-merge older delete is stale", policy: merge,
			held: []*Change{rsUpd(Prescription, "pharmacy", 5, "status", `"active"`), rsDel(Prescription, "pharmacy", 3)},
			ch:   rsDel(Prescription, "ehr", 2),
			kind: Stale, want: `status="active"`, op: OpUpsert, src: "pharmacy", time: 5,
			res: &Resolution{Strategy: "field-merge", ConflictingSystems: []string{"ehr", "pharmacy"}, Fields: []FieldDecision{dec("*", "pharmacy", 5, "ehr", 2)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := rsApplyAll(t, tt.policy, tt.held...)
			held := MarshalState(st)
			out := tt.policy.Apply(st, tt.ch)
			if out.Kind != tt.kind {
				t.Fatalf("kind %v, want %v", out.Kind, tt.kind)
			}
			if !bytes.Equal(held, MarshalState(st)) {
				t.Fatal("Apply modified the state it was given")
			}
			switch out.Kind {
			case Applied:
				if out.State == st {
					t.Fatal("applied: the state is the input state")
				}
				if out.State.Version != st.Version+1 {
					t.Fatalf("version %d, want %d", out.State.Version, st.Version+1)
				}
			default:
				if out.State != st {
					t.Fatal("not applied: the state is not the input state")
				}
			}
			if out.Changed != tt.changed {
				t.Errorf("changed %v, want %v", out.Changed, tt.changed)
			}
			if !reflect.DeepEqual(out.Resolution, tt.res) {
				t.Errorf("resolution\n got %+v\nwant %+v", out.Resolution, tt.res)
			}
			m := out.State.Materialize(tt.ch.Entity, "p1")
			if got := rsFields(m.Fields); got != tt.want {
				t.Errorf("fields %s, want %s", got, tt.want)
			}
			if m.Op != tt.op || m.Source != tt.src || m.SourceTime != tt.time || m.Entity != tt.ch.Entity || m.ID != "p1" {
				t.Errorf("materialized %s %s %s@%d, want %s %s@%d", m.Entity, m.Op, m.Source, m.SourceTime, tt.op, tt.src, tt.time)
			}
		})
	}
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
	out := pol[Prescription].Apply(st, rsUpd(Prescription, "pharmacy", 3, "status", `"stopped"`))
	if out.Kind != Applied {
		t.Fatalf("kind %v", out.Kind)
	}
	if got := rsFields(out.State.Materialize(Prescription, "p1").Fields); got != `dosage="1mg" status="stopped"` {
		t.Fatalf("fields %s", got)
	}
	back := pol[Encounter].Apply(out.State, rsUpd(Prescription, "ehr", 3, "status", `"completed"`))
	if back.Kind != Applied || rsFields(back.State.Materialize(Prescription, "p1").Fields) != `status="completed"` {
		t.Fatalf("back to lww: %v %s", back.Kind, rsFields(back.State.Materialize(Prescription, "p1").Fields))
	}
}

func TestResolveParseStrategy(t *testing.T) {
	for _, s := range []Strategy{LastWriterWins, Survivorship, FieldMerge} {
		if got, err := ParseStrategy(string(s)); err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "lww", "Survivorship"} {
		if _, err := ParseStrategy(s); err == nil {
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
			if err := tt.p.Validate(); (err != nil) != tt.bad {
				t.Fatalf("Validate() = %v, want error %v", err, tt.bad)
			}
		})
	}
	for e, p := range DefaultPolicies() {
		if err := p.Validate(); err != nil {
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
			a, b := MarshalState(forward), MarshalState(backward)
			if !bytes.Equal(a, b) {
				t.Fatalf("equal states, different bytes:\n%s\n%s", a, b)
			}
			back, err := UnmarshalState(a)
			if err != nil {
				t.Fatal(err)
			}
			if c := MarshalState(back); !bytes.Equal(a, c) {
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
	if got := MarshalState(nil); string(got) != "null" {
		t.Fatalf("MarshalState(nil) = %s", got)
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
		st = p.Apply(st, ch).State
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
					out := p.Apply(direct, chs[i])
					if out.Kind == Applied {
						applied++
					} else if out.State != direct {
						t.Fatalf("%v but a new state", out.Kind)
					}
					direct = out.State
					// The same through the store: serialized after every change.
					b := MarshalState(p.Apply(stored, chs[i]).State)
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
				if x, y := MarshalState(&a), MarshalState(&b); !bytes.Equal(x, y) {
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
				held := MarshalState(st)
				for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(chs)-1), 1, 5).Draw(t, "again") {
					out := p.Apply(st, chs[i])
					if out.Kind != Duplicate && out.Kind != Stale {
						t.Fatalf("change %d again: %v", i, out.Kind)
					}
					if out.State != st || out.Changed {
						t.Fatalf("change %d again: a new state", i)
					}
					requireSameEntity(t, "again", want, out.State.Materialize(Patient, "p1"))
				}
				if !bytes.Equal(held, MarshalState(st)) {
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
					before := MarshalState(st)
					out := p.Apply(st, ch)
					if out.Kind == Applied && st != nil {
						a, b := *st, *out.State
						a.Version, b.Version = 0, 0
						if bytes.Equal(MarshalState(&a), MarshalState(&b)) {
							t.Fatal("applied, but the state is the same")
						}
					}
					if r := out.Resolution; r != nil {
						if len(r.Fields) == 0 || r.Strategy != string(p.Strategy) || !slices.IsSorted(r.ConflictingSystems) {
							t.Fatalf("resolution %+v", r)
						}
					}
					if out.Kind == Duplicate && out.Resolution != nil {
						t.Fatal("duplicate with a resolution")
					}
					if !bytes.Equal(before, MarshalState(st)) {
						t.Fatal("the input state was modified")
					}
					st = out.State
				}
			})
		})
	}
}
