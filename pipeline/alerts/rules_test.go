package alerts

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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

func TestRuleSetMatch(t *testing.T) {
	rules := append(DefaultRules(),
		Rule{ID: "hr-watch", Code: "8867-4", System: LOINC, Comparator: GE, Threshold: 100, Severity: SeverityMedium, Description: "HR watch"},
		Rule{ID: "hr-local", Code: "HR", System: "http://hospital.org/codes", Comparator: GT, Threshold: 120, Severity: SeverityLow, Description: "local HR"},
		Rule{ID: "glucose-zero", Code: "2339-0", System: LOINC, Comparator: EQ, Threshold: 0, Severity: SeverityCritical, Description: "zero glucose"},
	)
	rs, err := newRuleSet(rules)
	if err != nil {
		t.Fatal(err)
	}
	loinc := func(code string) Coding { return Coding{System: LOINC, Code: code} }
	tests := []struct {
		name    string
		codings []Coding
		value   float64
		want    []string
	}{
		{"no rule for code", []Coding{loinc("1234-5")}, 500, nil},
		{"heart rate normal", []Coding{loinc("8867-4")}, 72, nil},
		{"heart rate at threshold", []Coding{loinc("8867-4")}, 120, []string{"hr-watch"}},
		{"heart rate high fires both, rule order", []Coding{loinc("8867-4")}, 130, []string{"heart-rate-high", "hr-watch"}},
		{"system mismatch", []Coding{{System: "http://snomed.info/sct", Code: "8867-4"}}, 130, nil},
		{"no system", []Coding{{Code: "8867-4"}}, 130, nil},
		{"match on a later coding", []Coding{{System: "http://snomed.info/sct", Code: "364075005"}, loinc("8867-4")}, 130, []string{"heart-rate-high", "hr-watch"}},
		{"codings matching different rules merge in rule order", []Coding{{System: "http://hospital.org/codes", Code: "HR"}, loinc("8867-4")}, 130, []string{"heart-rate-high", "hr-watch", "hr-local"}},
		{"same coding twice fires once", []Coding{loinc("8867-4"), loinc("8867-4")}, 130, []string{"heart-rate-high", "hr-watch"}},
		{"zero is a value", []Coding{loinc("2339-0")}, 0, []string{"glucose-low", "glucose-zero"}},
		{"glucose at threshold", []Coding{loinc("2339-0")}, 70, nil},
		{"systolic above", []Coding{loinc("8480-6")}, 180.5, []string{"systolic-bp-high"}},
		{"no codings", nil, 130, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, i := range rs.match(tt.codings, tt.value, nil) {
				got = append(got, rs.rules[i].ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fired %v, want %v", got, tt.want)
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
			wantIDs: []string{"heart-rate-high", "systolic-bp-high", "glucose-low", "spo2-critical", "heart-rate-watch"},
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
				`10: duplicate rule id "heart-rate-high" (first at line 3)`,
				`14: threshold: want a number`,
				`17: rule is missing system, description`,
			},
		},
		{name: "empty document", yaml: "", wantProblems: []string{"1: no rules"}},
		{name: "no rules key", yaml: "other: 1\n", wantProblems: []string{`1: unknown key "other"`, `1: missing key "rules"`}},
		{name: "empty rules", yaml: "rules: []\n", wantProblems: []string{"1: no rules"}},
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
			var rules []Rule
			var err error
			if tt.file != "" {
				rules, err = LoadRules(filepath.Join("testdata", tt.file))
			} else {
				rules, err = ParseRules([]byte(tt.yaml))
			}
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
				if err := ValidateRules(rules); err != nil {
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
		"    description: d\n"
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

func TestDefaultRulesAreTheSeeds(t *testing.T) {
	if err := ValidateRules(DefaultRules()); err != nil {
		t.Fatal(err)
	}
	fromFile, err := LoadRules(filepath.Join("testdata", "rules_valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromFile[:3], DefaultRules()) {
		t.Errorf("the first three rules of rules_valid.yaml differ from DefaultRules:\n%+v\n%+v", fromFile[:3], DefaultRules())
	}
}

func TestValidateRules(t *testing.T) {
	good := DefaultRules()[0]
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"none", nil, []string{"no rules"}},
		{"defaults", DefaultRules(), nil},
		{"duplicate id", []Rule{good, good}, []string{`rule 2: duplicate rule id "heart-rate-high" (also rule 1)`}},
		{"every field missing", []Rule{{Threshold: math.NaN()}}, []string{
			"rule 1: missing id", "rule 1: missing code", "rule 1: missing system", "rule 1: missing comparator",
			"rule 1: threshold is not a finite number", "rule 1: missing severity", "rule 1: missing description",
		}},
		{"bad enums", []Rule{{ID: "x", Code: "c", System: "s", Comparator: ">", Severity: "urgent", Description: "d"}}, []string{
			`rule 1: comparator ">" is not one of`, `rule 1: severity "urgent" is not one of`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRules(tt.rules)
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
