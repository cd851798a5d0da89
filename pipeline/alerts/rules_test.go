package alerts

import (
	"errors"
	"fmt"
	"github.com/carepipe/carepipe/pipeline"
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

func TestRuleSetFires(t *testing.T) {
	pack := SeedRules()
	pack.Rules = append(pack.Rules,
		Rule{ID: "hr-watch", Code: "8867-4", System: LOINC, Unit: "/min", Comparator: GE, Threshold: 100, Severity: SeverityMedium, Description: "HR watch"},
		Rule{ID: "hr-local", Code: "HR", System: "http://hospital.org/codes", Unit: "/min", Comparator: GT, Threshold: 120, Severity: SeverityLow, Description: "local HR"},
		Rule{ID: "glucose-zero", Code: "2339-0", System: LOINC, Unit: "mg/dL", Comparator: EQ, Threshold: 0, Severity: SeverityCritical, Description: "zero glucose"},
		Rule{ID: "panel-systolic", Code: "85354-9", System: LOINC, Component: "8480-6", Unit: "mm[Hg]", Comparator: GE, Threshold: 160, Severity: SeverityMedium, Description: "panel systolic"},
	)
	rs, err := newRuleSet(pack)
	if err != nil {
		t.Fatal(err)
	}
	loinc := func(code string) Coding { return Coding{System: LOINC, Code: code} }
	value := func(v float64, unit string, codings ...Coding) Measurement {
		return Measurement{Codings: codings, HasValue: true, Value: v, Unit: unit}
	}
	obs := func(own Measurement, comps ...Measurement) *Observation {
		return &Observation{ID: "o", Status: "final", PatientID: "p", Measurement: own, Components: comps}
	}
	panel := func(sys float64) *Observation {
		return obs(Measurement{Codings: []Coding{loinc("85354-9")}},
			value(sys, "mm[Hg]", loinc("8480-6")), value(80, "mm[Hg]", loinc("8462-4")))
	}
	tests := []struct {
		name string
		obs  *Observation
		want []string
	}{
		{"no rule for code", obs(value(500, "", loinc("1234-5"))), nil},
		{"heart rate normal", obs(value(72, "/min", loinc("8867-4"))), nil},
		{"heart rate at threshold", obs(value(120, "/min", loinc("8867-4"))), []string{"hr-watch"}},
		{"heart rate high fires both, rule order", obs(value(130, "/min", loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"annotated unit is the same unit", obs(value(130, "{beats}/min", loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"system mismatch", obs(value(130, "", Coding{System: SNOMED, Code: "8867-4"})), nil},
		{"no system", obs(value(130, "", Coding{Code: "8867-4"})), nil},
		{"match on a later coding", obs(value(130, "/min", Coding{System: SNOMED, Code: "364075005"}, loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"codings matching different rules merge in rule order", obs(value(130, "/min", Coding{System: "http://hospital.org/codes", Code: "HR"}, loinc("8867-4"))), []string{"heart-rate-high", "hr-watch", "hr-local"}},
		{"same coding twice fires once", obs(value(130, "/min", loinc("8867-4"), loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"zero is a value", obs(value(0, "mg/dL", loinc("2339-0"))), []string{"glucose-low", "glucose-zero"}},
		{"glucose at threshold", obs(value(70, "mg/dL", loinc("2339-0"))), nil},
		{"glucose in mmol/L converted", obs(value(3.5, "mmol/L", loinc("2339-0"))), []string{"glucose-low"}},
		{"glucose in mmol/L above", obs(value(5.5, "mmol/L", loinc("2339-0"))), nil},
		{"systolic above", obs(value(180.5, "mm[Hg]", loinc("8480-6"))), []string{"systolic-bp-high"}},
		{"systolic in kPa", obs(value(25, "kPa", loinc("8480-6"))), []string{"systolic-bp-high"}},
		{"panel component fires the standalone rule and the panel rule", panel(185), []string{"systolic-bp-high", "panel-systolic"}},
		{"panel component below", panel(150), nil},
		{"panel rule needs the panel", obs(value(170, "mm[Hg]", loinc("8480-6"))), nil},
		{"data absent is no value", obs(Measurement{Codings: []Coding{loinc("8867-4")}, Absent: true}), nil},
		{"absent component is no value", obs(Measurement{Codings: []Coding{loinc("85354-9")}}, Measurement{Codings: []Coding{loinc("8480-6")}, Absent: true}), nil},
		{"no codings", obs(value(130, "/min")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f findings
			if err := rs.evaluate(tt.obs, &f); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fr := range f.firings {
				got = append(got, fr.rule.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fired %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("unconvertible unit is an error, not a miss", func(t *testing.T) {
		for _, m := range []Measurement{
			value(130, "kg", loinc("8867-4")),
			value(130, "beats/minute", loinc("8867-4")),
			value(130, "http://example.org/units|/min", loinc("8867-4")),
			value(5.5, "mmol/L", loinc("8480-6")),
		} {
			var f findings
			if err := rs.evaluate(obs(m), &f); errorType(err) != pipeline.TypeInvalid {
				t.Errorf("unit %q: error %v, want an invalid record", m.Unit, err)
			}
		}
	})
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
			var pack RulePack
			var err error
			if tt.file != "" {
				pack, err = LoadRules(filepath.Join("testdata", tt.file))
			} else {
				pack, err = ParseRules([]byte(tt.yaml))
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
				if err := ValidateRules(pack); err != nil {
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

func ruleProblemsOf(t *testing.T, err error) []*RuleError {
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
	out := make([]*RuleError, 0, len(errs))
	for _, e := range errs {
		var re *RuleError
		if !errors.As(e, &re) {
			t.Fatalf("problem %v is %T, want *RuleError", e, e)
		}
		out = append(out, re)
	}
	return out
}

func TestLoadRulesMissingFile(t *testing.T) {
	_, err := LoadRules(filepath.Join(t.TempDir(), "nope.yaml"))
	var re *RuleError
	if !errors.As(err, &re) || !errors.Is(err, os.ErrNotExist) || re.Line != 0 {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultRulesStartWithTheSeeds(t *testing.T) {
	if err := ValidateRules(DefaultRules()); err != nil {
		t.Fatal(err)
	}
	if err := ValidateRules(SeedRules()); err != nil {
		t.Fatal(err)
	}
	seeds := SeedRules().Rules
	for i := range seeds {
		seeds[i].Suppression = DefaultSuppression
	}
	def := DefaultRules()
	if !reflect.DeepEqual(def.Rules[:3], seeds) || def.NEWS2 != DefaultNEWS2() {
		t.Errorf("DefaultRules does not start with the seeds (with the default window) or lacks NEWS2: %+v", def)
	}
	fromFile, err := LoadRules(filepath.Join("testdata", "rules_valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// rules_valid.yaml is the format before concepts: each seed by the
	// one code that was all it matched then, its concept's first.
	byCode := slices.Clone(seeds)
	for i := range byCode {
		byCode[i].Code, byCode[i].Concept = ruleCodes(&byCode[i])[0], ""
	}
	if !reflect.DeepEqual(fromFile.Rules[:3], byCode) {
		t.Errorf("the first three rules of rules_valid.yaml differ from the seeds:\n%+v\n%+v", fromFile.Rules[:3], byCode)
	}
	if fromFile.Rules[3].Suppression != 0 || fromFile.NEWS2.Suppression != 30*time.Minute || fromFile.Rules[4].Component != "8480-6" {
		t.Errorf("rules_valid.yaml: per-rule settings not read: %+v", fromFile)
	}
}

func TestValidateRules(t *testing.T) {
	good := DefaultRules().Rules[0]
	news2 := func(mut func(*NEWS2Rule)) RulePack {
		n := DefaultNEWS2()
		mut(&n)
		return RulePack{NEWS2: n}
	}
	tests := []struct {
		name string
		pack RulePack
		want []string
	}{
		{"none", RulePack{}, []string{"no rules and NEWS2 off"}},
		{"defaults", DefaultRules(), nil},
		{"NEWS2 alone", RulePack{NEWS2: DefaultNEWS2()}, nil},
		{"duplicate id", RulePack{Rules: []Rule{good, good}}, []string{`rule 2: duplicate rule id "heart-rate-high" (also rule 1)`}},
		{"every field missing", RulePack{Rules: []Rule{{Threshold: math.NaN(), Suppression: -1}}}, []string{
			"rule 1: missing id", "rule 1: missing code", "rule 1: missing system", "rule 1: missing unit", "rule 1: missing comparator",
			"rule 1: threshold is not a finite number", "rule 1: missing severity", "rule 1: missing description",
			"rule 1: suppression must not be negative",
		}},
		{"bad enums", RulePack{Rules: []Rule{{ID: "x", Code: "c", System: "s", Unit: "furlongs", Comparator: ">", Severity: "urgent", Description: "d"}}}, []string{
			`rule 1: unit "furlongs"`, `rule 1: comparator ">" is not one of`, `rule 1: severity "urgent" is not one of`,
		}},
		{"news2 id taken", RulePack{Rules: []Rule{func() Rule { r := good; r.ID = "news2"; return r }()}}, []string{`rule 1: rule id "news2" is the NEWS2 alert's`}},
		{"news2 scale", news2(func(n *NEWS2Rule) { n.SpO2Scale = 0 }), []string{"news2: spo2Scale must be 1 or 2"}},
		{"news2 freshness", news2(func(n *NEWS2Rule) { n.Freshness = 0 }), []string{"news2: freshness must be positive"}},
		{"news2 single", news2(func(n *NEWS2Rule) { n.SingleParameter = 4 }), []string{"news2: singleParameter must be between 1 and 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRules(tt.pack)
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
		pack, err := LoadRules(filepath.Join("testdata", "rules_concepts.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		seeds := SeedRules().Rules
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
			_, err := ParseRules([]byte(fmt.Sprintf(base, tt.match, tt.unit)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConceptTable: every code of the table has a unit carepipe converts,
// every molar glucose code meets mass through glucose's molar mass, and
// every concept with a NEWS2 parameter converts to its bands' unit.
func TestConceptTable(t *testing.T) {
	for i := range concepts {
		c := &concepts[i]
		for _, cc := range c.codes {
			if !KnownUnit(cc.unit) {
				t.Errorf("%s %s: unit %q unknown", c.name, cc.code, cc.unit)
			}
			if c.name == ConceptGlucose && mgdLPerMmolL[cc.code] != glucoseMgdLPerMmolL {
				t.Errorf("glucose %s has no molar factor", cc.code)
			}
			if c.vital != NumVitals {
				if _, ok := ConvertUnit(1, cc.unit, c.vitalUnit, cc.code); !ok {
					t.Errorf("%s %s: %s does not convert to %s", c.name, cc.code, cc.unit, c.vitalUnit)
				}
			}
		}
	}
}
