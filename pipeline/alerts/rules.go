package alerts

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule is a threshold rule: it fires when an observation carries a coding
// with System and Code and its value compares to Threshold by Comparator.
type Rule struct {
	// ID names the rule in alert ids and alert records: letters, digits,
	// '.', '_' and '-'. Unique within a rule set.
	ID          string
	Code        string
	System      string
	Comparator  Comparator
	Threshold   float64
	Severity    Severity
	Description string
}

// Comparator compares an observation value (left) with a rule threshold
// (right).
type Comparator string

// The comparators.
const (
	GT Comparator = "gt"
	LT Comparator = "lt"
	EQ Comparator = "eq"
	NE Comparator = "ne"
	GE Comparator = "ge"
	LE Comparator = "le"
)

// Holds reports whether "value c threshold" holds. An unknown comparator
// never holds.
func (c Comparator) Holds(value, threshold float64) bool {
	switch c {
	case GT:
		return value > threshold
	case LT:
		return value < threshold
	case EQ:
		return value == threshold
	case NE:
		return value != threshold
	case GE:
		return value >= threshold
	case LE:
		return value <= threshold
	}
	return false
}

// Valid reports whether c is one of the comparators.
func (c Comparator) Valid() bool {
	switch c {
	case GT, LT, EQ, NE, GE, LE:
		return true
	}
	return false
}

// LOINC is the code system of the built-in rules.
const LOINC = "http://loinc.org"

// DefaultRules are the seed's rules, used when none are configured.
func DefaultRules() []Rule {
	return []Rule{
		{ID: "heart-rate-high", Code: "8867-4", System: LOINC, Comparator: GT, Threshold: 120, Severity: SeverityHigh, Description: "Elevated heart rate"},
		{ID: "systolic-bp-high", Code: "8480-6", System: LOINC, Comparator: GT, Threshold: 180, Severity: SeverityHigh, Description: "Elevated blood pressure"},
		{ID: "glucose-low", Code: "2339-0", System: LOINC, Comparator: LT, Threshold: 70, Severity: SeverityHigh, Description: "Hypoglycemia"},
	}
}

// ValidateRules checks rules as [ParseRules] checks a file: at least one
// rule, every field set and well-formed, ids unique. It returns every
// problem, joined.
func ValidateRules(rules []Rule) error {
	if len(rules) == 0 {
		return errors.New("rules: no rules")
	}
	var errs []error
	seen := make(map[string]int, len(rules))
	for i, r := range rules {
		for _, msg := range ruleProblems(&r) {
			errs = append(errs, fmt.Errorf("rule %d: %s", i+1, msg))
		}
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, fmt.Errorf("rule %d: duplicate rule id %q (also rule %d)", i+1, r.ID, j+1))
		} else {
			seen[r.ID] = i
		}
	}
	return errors.Join(errs...)
}

// ruleProblems lists what is wrong with one rule's fields, in field order.
func ruleProblems(r *Rule) []string {
	var ps []string
	if msg := checkRuleID(r.ID); msg != "" {
		ps = append(ps, msg)
	}
	if r.Code == "" {
		ps = append(ps, "missing code")
	}
	if r.System == "" {
		ps = append(ps, "missing system")
	}
	if msg := checkComparator(r.Comparator); msg != "" {
		ps = append(ps, msg)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		ps = append(ps, "threshold is not a finite number")
	}
	if msg := checkSeverity(r.Severity); msg != "" {
		ps = append(ps, msg)
	}
	if r.Description == "" {
		ps = append(ps, "missing description")
	}
	return ps
}

func checkRuleID(id string) string {
	if id == "" {
		return "missing id"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return fmt.Sprintf("rule id %q: only letters, digits, '.', '_' and '-' are allowed", id)
		}
	}
	return ""
}

func checkComparator(c Comparator) string {
	switch {
	case c == "":
		return "missing comparator"
	case !c.Valid():
		return fmt.Sprintf("comparator %q is not one of gt, lt, eq, ne, ge, le", string(c))
	}
	return ""
}

func checkSeverity(s Severity) string {
	switch {
	case s == "":
		return "missing severity"
	case !s.Valid():
		return fmt.Sprintf("severity %q is not one of critical, high, medium, low", string(s))
	}
	return ""
}

// ruleSet is a validated rule list indexed by code for evaluation.
type ruleSet struct {
	rules []Rule
	// byCode maps a code to the indices of its rules, ascending.
	byCode map[string][]int
}

func newRuleSet(rules []Rule) (*ruleSet, error) {
	if err := ValidateRules(rules); err != nil {
		return nil, err
	}
	s := &ruleSet{rules: slices.Clone(rules), byCode: make(map[string][]int, len(rules))}
	for i, r := range s.rules {
		s.byCode[r.Code] = append(s.byCode[r.Code], i)
	}
	return s, nil
}

// match appends to dst the indices of the rules that fire for an
// observation with codings and value, in rule order, each once (a rule may
// match several codings).
func (s *ruleSet) match(codings []Coding, value float64, dst []int) []int {
	start := len(dst)
	for ci := range codings {
		c := &codings[ci]
		for _, i := range s.byCode[c.Code] {
			r := &s.rules[i]
			if r.System != c.System || !r.Comparator.Holds(value, r.Threshold) {
				continue
			}
			if !slices.Contains(dst[start:], i) {
				dst = append(dst, i)
			}
		}
	}
	if len(dst)-start > 1 {
		slices.Sort(dst[start:])
	}
	return dst
}

// RuleError is one problem in a rules file, at a line (1-based; 0 when the
// problem has no line, such as an unreadable file).
type RuleError struct {
	File string
	Line int
	Msg  string
	// Err is the underlying error, if any (reading the file).
	Err error
}

func (e *RuleError) Unwrap() error { return e.Err }

func (e *RuleError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadRules reads and parses a rules file; see [ParseRules]. Problems name
// the file.
func LoadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &RuleError{File: path, Msg: fmt.Sprintf("reading rules: %v", err), Err: err}
	}
	return parseRules(path, data)
}

// ParseRules parses a rules document:
//
//	rules:
//	  - id: heart-rate-high
//	    code: "8867-4"
//	    system: http://loinc.org
//	    comparator: gt        # gt | lt | eq | ne | ge | le
//	    threshold: 120
//	    severity: high        # critical | high | medium | low
//	    description: Elevated heart rate
//
// Every field is required; unknown keys, duplicate keys and duplicate ids
// are errors. It reports every problem, each a *[RuleError] with its line,
// joined with errors.Join (unwrap with `interface{ Unwrap() []error }`).
func ParseRules(data []byte) ([]Rule, error) { return parseRules("", data) }

func parseRules(file string, data []byte) ([]Rule, error) {
	p := &ruleParser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.syntaxError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errorf(1, "no rules: the document is empty")
		return nil, p.err()
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "want a mapping with the key \"rules\"")
		return nil, p.err()
	}
	var rulesNode *yaml.Node
	p.mapping(root, func(k, v *yaml.Node) {
		switch k.Value {
		case "rules":
			rulesNode = v
		default:
			p.errorf(k.Line, "unknown key %q", k.Value)
		}
	})
	if rulesNode == nil {
		p.errorf(root.Line, "missing key \"rules\"")
		return nil, p.err()
	}
	if rulesNode.Kind != yaml.SequenceNode {
		p.errorf(rulesNode.Line, "rules: want a list of rules")
		return nil, p.err()
	}
	if len(rulesNode.Content) == 0 {
		p.errorf(rulesNode.Line, "no rules")
	}
	rules := make([]Rule, 0, len(rulesNode.Content))
	firstLine := make(map[string]int)
	for _, item := range rulesNode.Content {
		item = resolve(item)
		r, ok := p.rule(item)
		if r.ID != "" {
			if line, dup := firstLine[r.ID]; dup {
				p.errorf(item.Line, "duplicate rule id %q (first at line %d)", r.ID, line)
			} else {
				firstLine[r.ID] = item.Line
			}
		}
		if ok {
			rules = append(rules, r)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return rules, nil
}

type ruleParser struct {
	file     string
	problems []error
}

func (p *ruleParser) errorf(line int, format string, args ...any) {
	p.problems = append(p.problems, &RuleError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err joins the problems, ordered by line.
func (p *ruleParser) err() error {
	slices.SortStableFunc(p.problems, func(a, b error) int {
		return a.(*RuleError).Line - b.(*RuleError).Line
	})
	return errors.Join(p.problems...)
}

// syntaxError turns a yaml.v3 error ("yaml: line N: msg") into a RuleError.
func (p *ruleParser) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, after
			}
		}
	}
	return &RuleError{File: p.file, Line: line, Msg: msg}
}

// mapping calls fn for each key and value of m, reporting non-scalar and
// duplicate keys.
func (p *ruleParser) mapping(m *yaml.Node, fn func(k, v *yaml.Node)) {
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "keys must be strings")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errorf(k.Line, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k, v)
	}
}

// rule parses one rule mapping; ok is false when it has problems (already
// reported).
func (p *ruleParser) rule(n *yaml.Node) (Rule, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "a rule must be a mapping")
		return Rule{}, false
	}
	before := len(p.problems)
	var r Rule
	var hasThreshold bool
	p.mapping(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "id":
			r.ID = p.str(k, v)
			if r.ID != "" {
				if msg := checkRuleID(r.ID); msg != "" {
					p.errorf(v.Line, "%s", msg)
				}
			}
		case "code":
			r.Code = p.str(k, v)
		case "system":
			r.System = p.str(k, v)
		case "comparator":
			r.Comparator = Comparator(p.str(k, v))
			if r.Comparator != "" {
				if msg := checkComparator(r.Comparator); msg != "" {
					p.errorf(v.Line, "%s", msg)
				}
			}
		case "threshold":
			hasThreshold = true
			r.Threshold = p.number(k, v)
		case "severity":
			r.Severity = Severity(p.str(k, v))
			if r.Severity != "" {
				if msg := checkSeverity(r.Severity); msg != "" {
					p.errorf(v.Line, "%s", msg)
				}
			}
		case "description":
			r.Description = p.str(k, v)
		default:
			p.errorf(k.Line, "unknown key %q (want id, code, system, comparator, threshold, severity, description)", k.Value)
		}
	})
	var missing []string
	for _, f := range [...]struct {
		name string
		set  bool
	}{
		{"id", r.ID != ""}, {"code", r.Code != ""}, {"system", r.System != ""},
		{"comparator", r.Comparator != ""}, {"threshold", hasThreshold},
		{"severity", r.Severity != ""}, {"description", r.Description != ""},
	} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		p.errorf(n.Line, "rule is missing %s", strings.Join(missing, ", "))
	}
	return r, len(p.problems) == before
}

// str is a scalar's text; a null or non-scalar is reported (a null counts
// as missing, reported by the caller).
func (p *ruleParser) str(k, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode {
		p.errorf(v.Line, "%s: want a string", k.Value)
		return ""
	}
	if v.Tag == "!!null" {
		return ""
	}
	return strings.TrimSpace(v.Value)
}

func (p *ruleParser) number(k, v *yaml.Node) float64 {
	if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") {
		p.errorf(v.Line, "%s: want a number", k.Value)
		return 0
	}
	var f float64
	if err := v.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.errorf(v.Line, "%s: want a finite number", k.Value)
		return 0
	}
	return f
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
