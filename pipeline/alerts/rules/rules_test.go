package rules

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestComparatorHolds(t *testing.T) {
	tests := []struct {
		name      string
		c         Comparator
		value     float64
		threshold float64
		want      bool
	}{
		{"gt above", GT, 121, 120, true},
		{"gt at boundary", GT, 120, 120, false},
		{"gt below", GT, 119.9, 120, false},
		{"lt below", LT, 69.99, 70, true},
		{"lt at boundary", LT, 70, 70, false},
		{"ge at boundary", GE, 100, 100, true},
		{"ge below", GE, 99.999, 100, false},
		{"le at boundary", LE, 85.5, 85.5, true},
		{"le above", LE, 85.50001, 85.5, false},
		{"eq equal", EQ, 0, 0, true},
		{"eq negative zero", EQ, math.Copysign(0, -1), 0, true},
		{"eq different", EQ, 1, 0, false},
		{"ne different", NE, 1, 0, true},
		{"ne equal", NE, 7, 7, false},
		{"zero is a value below threshold", LT, 0, 70, true},
		{"unknown comparator never holds", Comparator("gte"), 200, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Holds(tt.value, tt.threshold); got != tt.want {
				t.Errorf("%v.Holds(%v, %v) = %v, want %v", tt.c, tt.value, tt.threshold, got, tt.want)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name string
		file string // in testdata, or inline yaml below
		yaml string
		// want: rule ids when valid; else every problem as "line: msg
		// fragment".
		wantIDs      []string
		wantProblems []string
	}{
		{
			name:    "valid file",
			file:    "rules_valid.yaml",
			wantIDs: []string{"heart-rate-high", "systolic-bp-high", "glucose-low", "spo2-critical", "panel-systolic-watch"},
		},
		{
			name:         "unknown key with its line",
			file:         "rules_unknown_key.yaml",
			wantProblems: []string{`2: rule is missing threshold`, `6: unknown key "treshold"`},
		},
		{
			name: "several problems reported together, by line",
			file: "rules_many_problems.yaml",
			wantProblems: []string{
				`1: unknown key "version"`,
				`6: comparator "greater" is not one of`,
				`8: severity "urgent" is not one of`,
				`11: duplicate rule id "heart-rate-high" (first at line 3)`,
				`15: threshold: want a number`,
				`18: unit "mmHg" is not a UCUM unit`,
				`19: rule is missing system, unit, description`,
				`24: suppression: want a duration`,
				`26: news2: spo2Scale must be 1 or 2`,
				`28: news2: unknown key "urgnet"`,
			},
		},
		{name: "empty document", yaml: "", wantProblems: []string{"1: no rules"}},
		{name: "no rules key", yaml: "other: 1\n", wantProblems: []string{`1: unknown key "other"`, `1: missing key "rules"`}},
		{name: "empty rules", yaml: "rules: []\n", wantProblems: []string{"1: no rules"}},
		{name: "NEWS2 alone", yaml: "news2:\n  enabled: true\n", wantIDs: nil},
		{name: "NEWS2 without enabled", yaml: "news2:\n  urgent: 5\nrules: []\n", wantProblems: []string{`2: news2: missing key "enabled"`, "3: no rules"}},
		{name: "NEWS2 thresholds out of order", yaml: "news2:\n  enabled: true\n  urgent: 8\n  emergency: 7\n", wantProblems: []string{"2: news2: emergency must be between urgent"}},
		{name: "bad duration", yaml: "suppression: soon\nnews2:\n  enabled: true\n", wantProblems: []string{"1: suppression: want a duration"}},
		{name: "unknown unit", yaml: strings.Replace(ruleYAML("threshold: 1"), "unit: /min", "unit: bpm", 1), wantProblems: []string{`9: unit "bpm" is not a UCUM unit`}},
		{name: "unit case matters", yaml: strings.Replace(ruleYAML("threshold: 1"), "unit: /min", "unit: MG/DL", 1), wantProblems: []string{`9: unit "MG/DL"`}},
		{name: "rules not a list", yaml: "rules:\n  id: x\n", wantProblems: []string{"2: rules: want a list of rules"}},
		{name: "rule not a mapping", yaml: "rules:\n  - heart-rate\n", wantProblems: []string{"2: a rule must be a mapping"}},
		{name: "syntax error", yaml: "rules:\n  - id: a\n   code: b\n", wantProblems: []string{"1: did not find expected"}},
		{name: "duplicate key", yaml: "rules:\n  - id: a\n    id: b\n", wantProblems: []string{"2: rule is missing code", `3: duplicate key "id" (first at line 2)`}},
		{name: "non-finite threshold", yaml: ruleYAML("threshold: .inf"), wantProblems: []string{"6: threshold: want a finite number"}},
		{name: "quoted threshold", yaml: ruleYAML(`threshold: "120"`), wantProblems: []string{"6: threshold: want a number"}},
		{name: "bad id", yaml: strings.Replace(ruleYAML("threshold: 1"), "id: r1", "id: r 1", 1), wantProblems: []string{`2: rule id "r 1": only letters`}},
		{name: "null field is missing", yaml: strings.Replace(ruleYAML("threshold: 1"), "severity: high", "severity: ~", 1), wantProblems: []string{"2: rule is missing severity"}},
		{name: "list field", yaml: strings.Replace(ruleYAML("threshold: 1"), "code: X", "code: [X]", 1), wantProblems: []string{"2: rule is missing code", "3: code: want a string"}},
		{name: "integer code and threshold", yaml: strings.Replace(ruleYAML("threshold: 7"), "code: X", "code: 2339", 1), wantIDs: []string{"r1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pack Pack
			var err error
			if tt.file != "" {
				pack, err = Load(filepath.Join("testdata", tt.file))
			} else {
				pack, err = Parse([]byte(tt.yaml))
			}
			rules := pack.Rules
			if tt.wantProblems == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				var ids []string
				for _, r := range rules {
					ids = append(ids, r.ID)
				}
				if !slices.Equal(ids, tt.wantIDs) {
					t.Fatalf("ids = %v, want %v", ids, tt.wantIDs)
				}
				if err := Validate(pack); err != nil {
					t.Errorf("parsed rules do not validate: %v", err)
				}
				return
			}
			problems := ruleProblemsOf(t, err)
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("got %d problems, want %d:\n%v", len(problems), len(tt.wantProblems), err)
			}
			for i, want := range tt.wantProblems {
				line, frag, _ := strings.Cut(want, ": ")
				got := problems[i]
				if tt.file != "" && got.File != filepath.Join("testdata", tt.file) {
					t.Errorf("problem %d: file = %q", i, got.File)
				}
				if gotLine := strconv.Itoa(got.Line); gotLine != line || !strings.Contains(got.Msg, frag) {
					t.Errorf("problem %d = line %d %q, want line %s containing %q", i, got.Line, got.Msg, line, frag)
				}
			}
		})
	}
}

// ruleYAML is a one-rule document (rule at line 2) whose threshold line
// (line 6) is given.
func ruleYAML(threshold string) string {
	return "rules:\n" +
		"  - id: r1\n" +
		"    code: X\n" +
		"    system: S\n" +
		"    comparator: gt\n" +
		"    " + threshold + "\n" +
		"    severity: high\n" +
		"    description: d\n" +
		"    unit: /min\n"
}

func ruleProblemsOf(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*Error, 0, len(errs))
	for _, e := range errs {
		var re *Error
		if !errors.As(e, &re) {
			t.Fatalf("problem %v is %T, want *Error", e, e)
		}
		out = append(out, re)
	}
	return out
}

func TestLoadRulesMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var re *Error
	if !errors.As(err, &re) || !errors.Is(err, os.ErrNotExist) || re.Line != 0 {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultRulesStartWithTheSeeds(t *testing.T) {
	if err := Validate(Default()); err != nil {
		t.Fatal(err)
	}
	if err := Validate(Seed()); err != nil {
		t.Fatal(err)
	}
	seeds := Seed().Rules
	for i := range seeds {
		seeds[i].Suppression = DefaultSuppression
	}
	def := Default()
	if !reflect.DeepEqual(def.Rules[:3], seeds) || def.NEWS2 != DefaultNEWS2() {
		t.Errorf("Default does not start with the seeds (with the default window) or lacks NEWS2: %+v", def)
	}
	fromFile, err := Load(filepath.Join("testdata", "rules_valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// rules_valid.yaml is the format before concepts: each seed by the
	// one code that was all it matched then, its concept's first.
	byCode := slices.Clone(seeds)
	for i := range byCode {
		byCode[i].Code, byCode[i].Concept = byCode[i].MatchCodes()[0], ""
	}
	if !reflect.DeepEqual(fromFile.Rules[:3], byCode) {
		t.Errorf("the first three rules of rules_valid.yaml differ from the seeds:\n%+v\n%+v", fromFile.Rules[:3], byCode)
	}
	if fromFile.Rules[3].Suppression != 0 || fromFile.NEWS2.Suppression != 30*time.Minute || fromFile.Rules[4].Component != "8480-6" {
		t.Errorf("rules_valid.yaml: per-rule settings not read: %+v", fromFile)
	}
}

func TestValidateRules(t *testing.T) {
	good := Default().Rules[0]
	news2 := func(mut func(*NEWS2Rule)) Pack {
		n := DefaultNEWS2()
		mut(&n)
		return Pack{NEWS2: n}
	}
	tests := []struct {
		name string
		pack Pack
		want []string
	}{
		{"none", Pack{}, []string{"no rules and NEWS2 off"}},
		{"defaults", Default(), nil},
		{"NEWS2 alone", Pack{NEWS2: DefaultNEWS2()}, nil},
		{"duplicate id", Pack{Rules: []Rule{good, good}}, []string{`rule 2: duplicate rule id "heart-rate-high" (also rule 1)`}},
		{"every field missing", Pack{Rules: []Rule{{Threshold: math.NaN(), Suppression: -1}}}, []string{
			"rule 1: missing id", "rule 1: missing code", "rule 1: missing system", "rule 1: missing unit", "rule 1: missing comparator",
			"rule 1: threshold is not a finite number", "rule 1: missing severity", "rule 1: missing description",
			"rule 1: suppression must not be negative",
		}},
		{"bad enums", Pack{Rules: []Rule{{ID: "x", Code: "c", System: "s", Unit: "furlongs", Comparator: ">", Severity: "urgent", Description: "d"}}}, []string{
			`rule 1: unit "furlongs"`, `rule 1: comparator ">" is not one of`, `rule 1: severity "urgent" is not one of`,
		}},
		{"news2 id taken", Pack{Rules: []Rule{func() Rule { r := good; r.ID = "news2"; return r }()}}, []string{`rule 1: rule id "news2" is the NEWS2 alert's`}},
		{"news2 scale", news2(func(n *NEWS2Rule) { n.SpO2Scale = 0 }), []string{"news2: spo2Scale must be 1 or 2"}},
		{"news2 freshness", news2(func(n *NEWS2Rule) { n.Freshness = 0 }), []string{"news2: freshness must be positive"}},
		{"news2 single", news2(func(n *NEWS2Rule) { n.SingleParameter = 4 }), []string{"news2: singleParameter must be between 1 and 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.pack)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) && !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseRulesConcepts(t *testing.T) {
	t.Run("concepts and code lists", func(t *testing.T) {
		pack, err := Load(filepath.Join("testdata", "rules_concepts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		seeds := Seed().Rules
		for i := range seeds {
			seeds[i].Suppression = DefaultSuppression
		}
		if !reflect.DeepEqual(pack.Rules[:3], seeds) {
			t.Errorf("the concept rules differ from the seeds:\n%+v\n%+v", pack.Rules[:3], seeds)
		}
		if got := pack.Rules[3].Codes; !slices.Equal(got, []string{"2345-7", "14749-6"}) {
			t.Errorf("codes %v", got)
		}
	})
	// Each problem on the rule's line (3), beside its message.
	base := "rules:\n  - id: r\n    %s\n    unit: %s\n    comparator: lt\n    threshold: 1\n    severity: low\n    description: d\n"
	for _, tt := range []struct {
		name, match, unit, want string
	}{
		{"unknown concept", "concept: sugar", "mg/dL", `concept "sugar" is not one of glucose`},
		{"code and concept", "concept: glucose\n    code: \"2339-0\"", "mg/dL", "set one of code, codes and concept"},
		{"concept with another system", "concept: glucose\n    system: http://snomed.info/sct", "mg/dL", "system must be http://loinc.org"},
		// LOINC 8310-5 Body temperature is a temperature: no mg/dL.
		{"concept in a unit its codes lack", "concept: body-temperature", "mg/dL", `unit "mg/dL" cannot express LOINC 8310-5`},
		{"empty codes", "codes: []\n    system: http://loinc.org", "mg/dL", "codes is empty"},
		{"codes twice", "codes: [\"2339-0\", \"2339-0\"]\n    system: http://loinc.org", "mg/dL", `codes lists "2339-0" twice`},
		{"codes not a list", "codes: \"2339-0\"\n    system: http://loinc.org", "mg/dL", "codes: want a list of strings"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(fmt.Sprintf(base, tt.match, tt.unit)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConceptTable: every code of the table has a unit carepipe converts
// and one concept, every molar glucose code meets mass through glucose's
// molar mass, and every code converts to its concept's limits' unit.
func TestConceptTable(t *testing.T) {
	seen := make(map[string]string)
	for _, c := range Concepts() {
		if !KnownUnit(c.Limits.Unit) || c.Limits.Lo >= c.Limits.Hi {
			t.Errorf("%s: limits %+v", c.Name, c.Limits)
		}
		for _, cc := range c.Codes {
			if !KnownUnit(cc.Unit) {
				t.Errorf("%s %s: unit %q unknown", c.Name, cc.Code, cc.Unit)
			}
			if other, dup := seen[cc.Code]; dup {
				t.Errorf("%s %s: also in %s", c.Name, cc.Code, other)
			}
			seen[cc.Code] = c.Name
			if c.Name == ConceptGlucose && mgdLPerMmolL[cc.Code] != glucoseMgdLPerMmolL {
				t.Errorf("glucose %s has no molar factor", cc.Code)
			}
			if _, ok := ConvertUnit(1, cc.Unit, c.Limits.Unit, cc.Code); !ok {
				t.Errorf("%s %s: %s does not convert to its limits' %s", c.Name, cc.Code, cc.Unit, c.Limits.Unit)
			}
		}
	}
}

// TestConceptsIsACopy: the table cannot be changed through Concepts.
func TestConceptsIsACopy(t *testing.T) {
	Concepts()[0].Codes[0].Unit = "kg"
	if got := Concepts()[0].Codes[0].Unit; got == "kg" {
		t.Errorf("a caller changed the concept table through Concepts")
	}
}
