package rules

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rule is a threshold rule: it fires when an observation carries a coding
// in System with Code, one of Codes, or a code of Concept (or, with
// Component set, when an observation coded Code has a component coded
// Component) and the value, in Unit, compares to Threshold by Comparator.
// The alert record's rule is the code that fired.
type Rule struct {
	// ID names the rule in alert ids and alert records: letters, digits,
	// '.', '_' and '-'. Unique within a rule set.
	ID string
	// Exactly one of Code, Codes and Concept is set.
	Code  string
	Codes []string
	// Concept names an entry of the concept table (ConceptGlucose, ...):
	// every LOINC code a hospital may send for it, so that a rule is not
	// silent for the codes its author did not think of. System is then
	// LOINC, or empty for LOINC.
	Concept string
	// System is the code system's URI; its HL7 OID is taken as the same
	// system, in rules and observations.
	System string
	// Component, when set, narrows the rule to the component coded
	// Component (in System) of an observation coded Code: the systolic
	// component of a blood-pressure panel, say. Without it, the rule reads
	// an observation coded Code and any component coded Code.
	Component string
	// Unit is the UCUM unit of Threshold. Values in another unit are
	// converted ([ConvertUnit]); a value that cannot be is an error
	// record. A value with no unit is an error record too, unless it is a
	// bare number (valueInteger) of a code whose LOINC property admits one
	// unit only (heart and respiratory rate, per minute): never taken to
	// be in Unit.
	Unit        string
	Comparator  Comparator
	Threshold   float64
	Severity    Severity
	Description string
	// Suppression is the rule's alert-fatigue window in event time: a
	// repeat for the same patient within it of the last notified alert is
	// counted on that alert, not notified, unless its severity is higher.
	// Zero turns suppression off for the rule.
	Suppression time.Duration
}

// Pack is what a rules file configures: threshold rules and NEWS2.
type Pack struct {
	Rules []Rule
	NEWS2 NEWS2Rule
}

// NEWS2Rule configures the NEWS2 alert (Royal College of Physicians, 2017):
// the latest value of each parameter per patient, scored with the RCP
// bands, alerting at Urgent (severity high) and Emergency (critical)
// aggregates or a single parameter scoring SingleParameter (high).
type NEWS2Rule struct {
	Enabled bool
	// SpO2Scale is the SpO2 scale, 1 or 2 (scale 2 only for patients with
	// hypercapnic respiratory failure, decided clinically).
	SpO2Scale int
	// Freshness is how old, in event time, a parameter may be and still
	// count towards the aggregate.
	Freshness       time.Duration
	Urgent          int
	Emergency       int
	SingleParameter int
	// Suppression is the news2 alert's window, as a Rule's.
	Suppression time.Duration
}

// The defaults a rules file gets for what it leaves out.
const (
	DefaultSuppression     = 15 * time.Minute
	DefaultNEWS2Freshness  = 4 * time.Hour
	DefaultNEWS2Urgent     = 5
	DefaultNEWS2Emergency  = 7
	DefaultNEWS2Single     = 3
	DefaultNEWS2SpO2Scale  = 1
	maxNEWS2Aggregate      = 20
	maxNEWS2ParameterScore = 3
)

// NEWS2ID is the NEWS2 alert's rule id in alert ids and records; no
// threshold rule may take it.
const NEWS2ID = "news2"

// DefaultNEWS2 is NEWS2 on with the RCP's thresholds.
func DefaultNEWS2() NEWS2Rule {
	return NEWS2Rule{
		Enabled: true, SpO2Scale: DefaultNEWS2SpO2Scale, Freshness: DefaultNEWS2Freshness,
		Urgent: DefaultNEWS2Urgent, Emergency: DefaultNEWS2Emergency, SingleParameter: DefaultNEWS2Single,
		Suppression: DefaultSuppression,
	}
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

// Seed are the seed's three rules alone: no NEWS2, no suppression.
// The simulated world's ground truth is computed with them.
func Seed() Pack {
	return Pack{Rules: []Rule{
		{ID: "heart-rate-high", Concept: ConceptHeartRate, System: LOINC, Unit: "/min", Comparator: GT, Threshold: 120, Severity: SeverityHigh, Description: "Elevated heart rate"},
		{ID: "systolic-bp-high", Concept: ConceptSystolicBP, System: LOINC, Unit: "mm[Hg]", Comparator: GT, Threshold: 180, Severity: SeverityHigh, Description: "Elevated blood pressure"},
		{ID: "glucose-low", Concept: ConceptGlucose, System: LOINC, Unit: "mg/dL", Comparator: LT, Threshold: 70, Severity: SeverityHigh, Description: "Hypoglycemia"},
	}}
}

// Default is the built-in pack: the seed's three rules and an adult
// vital-signs set, each with the default suppression window, and NEWS2.
func Default() Pack {
	p := Seed()
	p.Rules = append(p.Rules,
		Rule{ID: "spo2-low", Concept: ConceptSpO2, System: LOINC, Unit: "%", Comparator: LT, Threshold: 90, Severity: SeverityCritical, Description: "Low oxygen saturation"},
		Rule{ID: "heart-rate-low", Concept: ConceptHeartRate, System: LOINC, Unit: "/min", Comparator: LT, Threshold: 40, Severity: SeverityCritical, Description: "Bradycardia"},
		Rule{ID: "diastolic-bp-high", Concept: ConceptDiastolicBP, System: LOINC, Unit: "mm[Hg]", Comparator: GT, Threshold: 120, Severity: SeverityHigh, Description: "Diastolic pressure of a hypertensive emergency"},
		Rule{ID: "systolic-bp-low", Concept: ConceptSystolicBP, System: LOINC, Unit: "mm[Hg]", Comparator: LT, Threshold: 90, Severity: SeverityHigh, Description: "Hypotension"},
		Rule{ID: "temperature-high", Concept: ConceptBodyTemperature, System: LOINC, Unit: "Cel", Comparator: GT, Threshold: 39.5, Severity: SeverityHigh, Description: "High temperature"},
		Rule{ID: "respiratory-rate-high", Concept: ConceptRespiratoryRate, System: LOINC, Unit: "/min", Comparator: GT, Threshold: 30, Severity: SeverityHigh, Description: "High respiratory rate"},
	)
	for i := range p.Rules {
		p.Rules[i].Suppression = DefaultSuppression
	}
	p.NEWS2 = DefaultNEWS2()
	return p
}

// Validate checks a pack as [Parse] checks a file: a rule or
// NEWS2, every rule field set and well-formed, ids unique, NEWS2's
// settings in range. It returns every problem, joined.
func Validate(pack Pack) error {
	if len(pack.Rules) == 0 && !pack.NEWS2.Enabled {
		return errors.New("rules: no rules and NEWS2 off")
	}
	var errs []error
	seen := make(map[string]int, len(pack.Rules))
	for i, r := range pack.Rules {
		for _, msg := range ruleProblems(&r) {
			errs = append(errs, fmt.Errorf("rule %d: %s", i+1, msg))
		}
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, fmt.Errorf("rule %d: duplicate rule id %q (also rule %d)", i+1, r.ID, j+1))
		} else {
			seen[r.ID] = i
		}
		if r.ID == NEWS2ID {
			errs = append(errs, fmt.Errorf("rule %d: rule id %q is the NEWS2 alert's", i+1, r.ID))
		}
	}
	if pack.NEWS2.Enabled {
		for _, msg := range news2Problems(&pack.NEWS2) {
			errs = append(errs, fmt.Errorf("news2: %s", msg))
		}
	}
	return errors.Join(errs...)
}

func news2Problems(n *NEWS2Rule) []string {
	var ps []string
	if n.SpO2Scale != 1 && n.SpO2Scale != 2 {
		ps = append(ps, "spo2Scale must be 1 or 2")
	}
	if n.Freshness <= 0 {
		ps = append(ps, "freshness must be positive")
	}
	if n.Urgent < 1 || n.Urgent > maxNEWS2Aggregate {
		ps = append(ps, fmt.Sprintf("urgent must be between 1 and %d", maxNEWS2Aggregate))
	}
	if n.Emergency < n.Urgent || n.Emergency > maxNEWS2Aggregate {
		ps = append(ps, fmt.Sprintf("emergency must be between urgent and %d", maxNEWS2Aggregate))
	}
	if n.SingleParameter < 1 || n.SingleParameter > maxNEWS2ParameterScore {
		ps = append(ps, fmt.Sprintf("singleParameter must be between 1 and %d", maxNEWS2ParameterScore))
	}
	if n.Suppression < 0 {
		ps = append(ps, "suppression must not be negative")
	}
	return ps
}

// ruleProblems lists what is wrong with one rule's fields, in field order.
func ruleProblems(r *Rule) []string {
	var ps []string
	if msg := checkRuleID(r.ID); msg != "" {
		ps = append(ps, msg)
	}
	ps = append(ps, codeProblems(r)...)
	if msg := checkUnit(r.Unit); msg != "" {
		ps = append(ps, msg)
	} else {
		ps = append(ps, unitCodeProblems(r)...)
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
	if r.Suppression < 0 {
		ps = append(ps, "suppression must not be negative")
	}
	return ps
}

// codeProblems checks what a rule matches: one of code, codes and
// concept, a system (LOINC for a concept), a component only with a code.
func codeProblems(r *Rule) []string {
	var ps []string
	n := 0
	for _, set := range [...]bool{r.Code != "", r.Codes != nil, r.Concept != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		ps = append(ps, "missing code (or codes, or concept)")
	case n > 1:
		ps = append(ps, "set one of code, codes and concept")
	}
	if r.Codes != nil && len(r.Codes) == 0 {
		ps = append(ps, "codes is empty")
	}
	for i, c := range r.Codes {
		if c == "" {
			ps = append(ps, "codes has an empty code")
		} else if slices.Contains(r.Codes[:i], c) {
			ps = append(ps, fmt.Sprintf("codes lists %q twice", c))
		}
	}
	if r.Concept != "" {
		if _, ok := lookupConcept(r.Concept); !ok {
			ps = append(ps, fmt.Sprintf("concept %q is not one of %s", r.Concept, conceptNames()))
		}
		if r.System != "" && CanonicalSystem(r.System) != LOINC {
			ps = append(ps, "a concept's codes are LOINC: system must be http://loinc.org or left out")
		}
	} else if r.System == "" {
		ps = append(ps, "missing system")
	}
	if r.Component != "" && r.Code == "" {
		ps = append(ps, "component needs code (the panel's)")
	}
	return ps
}

// unitCodeProblems reports the codes of the concept table that r matches
// and whose unit cannot convert to r's: a temperature rule in mg/dL would
// turn every temperature into an error record.
func unitCodeProblems(r *Rule) []string {
	if r.Component != "" || CanonicalSystem(r.System) != LOINC && r.Concept == "" {
		return nil
	}
	var ps []string
	for _, code := range r.MatchCodes() {
		cc, ok := conceptCodes[code]
		if !ok {
			continue
		}
		if _, ok := ConvertUnit(1, cc.Unit, r.Unit, code); !ok {
			ps = append(ps, fmt.Sprintf("unit %q cannot express LOINC %s (in %s)", r.Unit, code, cc.Unit))
		}
	}
	return ps
}

// MatchCodes are the codes r matches: its concept's, its list, or its
// code. The slice is r's own (Codes) or new: do not modify it.
func (r *Rule) MatchCodes() []string {
	switch {
	case r.Concept != "":
		c, ok := lookupConcept(r.Concept)
		if !ok {
			return nil
		}
		codes := make([]string, len(c.Codes))
		for i := range c.Codes {
			codes[i] = c.Codes[i].Code
		}
		return codes
	case r.Codes != nil:
		return r.Codes
	}
	return []string{r.Code}
}

func checkUnit(u string) string {
	switch {
	case u == "":
		return "missing unit"
	case !KnownUnit(u):
		return fmt.Sprintf("unit %q is not a UCUM unit carepipe converts (UCUM codes are case-sensitive)", u)
	}
	return ""
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

// Error is one problem in a rules file, at a line (1-based; 0 when the
// problem has no line, such as an unreadable file).
type Error struct {
	File string
	Line int
	Msg  string
	// Err is the underlying error, if any (reading the file).
	Err error
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
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

// Load reads and parses a rules file; see [Parse]. Problems name
// the file.
func Load(path string) (Pack, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Pack{}, &Error{File: path, Msg: fmt.Sprintf("reading rules: %v", err), Err: err}
	}
	return parse(path, data)
}

// Parse parses a rules document:
//
//	suppression: 15m        # default window of every rule; 0s turns it off
//	news2:                  # NEWS2 alert; omit the key to turn it off
//	  enabled: true
//	  spo2Scale: 1          # 1, or 2 for hypercapnic respiratory failure
//	  freshness: 4h         # how old a parameter may be and count
//	  urgent: 5             # aggregate at or above: severity high
//	  emergency: 7          # aggregate at or above: severity critical
//	  singleParameter: 3    # one parameter scoring this: severity high
//	  suppression: 15m
//	rules:
//	  - id: heart-rate-high
//	    code: "8867-4"      # one of code, codes, concept:
//	    # codes: ["2339-0", "2345-7"]  # any of these codes
//	    # concept: glucose  # every LOINC code of a concept (then system
//	    #                   # may be left out: LOINC): glucose, spo2,
//	    #                   # body-temperature, heart-rate,
//	    #                   # respiratory-rate, systolic-bp,
//	    #                   # diastolic-bp
//	    system: http://loinc.org
//	    component: "8480-6" # optional, with code: a component of the panel
//	    unit: /min          # UCUM, case-sensitive
//	    comparator: gt      # gt | lt | eq | ne | ge | le
//	    threshold: 120
//	    severity: high      # critical | high | medium | low
//	    description: Elevated heart rate
//	    suppression: 30m    # optional: this rule's window
//
// Rule fields are required except component and suppression (and system
// with concept); news2's keys other than enabled take the defaults shown.
// Unknown keys, duplicate keys, duplicate ids, unknown concepts, units
// carepipe cannot convert and units a rule's LOINC codes cannot be
// converted to are errors. It reports
// every problem, each a *[Error] with its line, joined with
// errors.Join (unwrap with `interface{ Unwrap() []error }`); a file with a
// problem loads nothing.
func Parse(data []byte) (Pack, error) { return parse("", data) }

func parse(file string, data []byte) (Pack, error) {
	p := &ruleParser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Pack{}, p.syntaxError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errorf(1, "no rules: the document is empty")
		return Pack{}, p.err()
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "want a mapping with the key \"rules\"")
		return Pack{}, p.err()
	}
	var rulesNode, news2Node *yaml.Node
	suppression := DefaultSuppression
	p.mapping(root, func(k, v *yaml.Node) {
		switch k.Value {
		case "rules":
			rulesNode = v
		case "news2":
			news2Node = v
		case "suppression":
			suppression = p.duration(k, v)
		default:
			p.errorf(k.Line, "unknown key %q (want rules, news2, suppression)", k.Value)
		}
	})
	var pack Pack
	if news2Node != nil {
		pack.NEWS2 = p.news2(news2Node, suppression)
	}
	if rulesNode == nil {
		if !pack.NEWS2.Enabled {
			p.errorf(root.Line, "missing key \"rules\" (and NEWS2 is off)")
		}
	} else if rulesNode.Kind != yaml.SequenceNode {
		p.errorf(rulesNode.Line, "rules: want a list of rules")
	} else {
		if len(rulesNode.Content) == 0 && !pack.NEWS2.Enabled {
			p.errorf(rulesNode.Line, "no rules (and NEWS2 is off)")
		}
		firstLine := make(map[string]int)
		for _, item := range rulesNode.Content {
			item = resolve(item)
			r, ok := p.rule(item, suppression)
			if r.ID != "" {
				if line, dup := firstLine[r.ID]; dup {
					p.errorf(item.Line, "duplicate rule id %q (first at line %d)", r.ID, line)
				} else {
					firstLine[r.ID] = item.Line
				}
			}
			if ok {
				pack.Rules = append(pack.Rules, r)
			}
		}
	}
	if err := p.err(); err != nil {
		return Pack{}, err
	}
	return pack, nil
}

// news2 parses the news2 mapping; defaults fill what it leaves out.
func (p *ruleParser) news2(n *yaml.Node, suppression time.Duration) NEWS2Rule {
	r := DefaultNEWS2()
	r.Enabled = false
	r.Suppression = suppression
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "news2: want a mapping")
		return r
	}
	hasEnabled := false
	p.mapping(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "enabled":
			hasEnabled = true
			r.Enabled = p.boolean(k, v)
		case "spo2Scale":
			r.SpO2Scale = p.integer(k, v)
		case "freshness":
			r.Freshness = p.duration(k, v)
		case "urgent":
			r.Urgent = p.integer(k, v)
		case "emergency":
			r.Emergency = p.integer(k, v)
		case "singleParameter":
			r.SingleParameter = p.integer(k, v)
		case "suppression":
			r.Suppression = p.duration(k, v)
		default:
			p.errorf(k.Line, "news2: unknown key %q (want enabled, spo2Scale, freshness, urgent, emergency, singleParameter, suppression)", k.Value)
		}
	})
	if !hasEnabled {
		p.errorf(n.Line, "news2: missing key \"enabled\"")
	}
	if r.Enabled {
		for _, msg := range news2Problems(&r) {
			p.errorf(n.Line, "news2: %s", msg)
		}
	}
	return r
}

type ruleParser struct {
	file     string
	problems []error
}

func (p *ruleParser) errorf(line int, format string, args ...any) {
	p.problems = append(p.problems, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err joins the problems, ordered by line.
func (p *ruleParser) err() error {
	slices.SortStableFunc(p.problems, func(a, b error) int {
		return a.(*Error).Line - b.(*Error).Line
	})
	return errors.Join(p.problems...)
}

// syntaxError turns a yaml.v3 error ("yaml: line N: msg") into a Error.
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
	return &Error{File: p.file, Line: line, Msg: msg}
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
func (p *ruleParser) rule(n *yaml.Node, suppression time.Duration) (Rule, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "a rule must be a mapping")
		return Rule{}, false
	}
	before := len(p.problems)
	r := Rule{Suppression: suppression}
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
		case "codes":
			r.Codes = p.strs(k, v)
		case "concept":
			r.Concept = p.str(k, v)
			if _, ok := lookupConcept(r.Concept); r.Concept != "" && !ok {
				p.errorf(v.Line, "concept %q is not one of %s", r.Concept, conceptNames())
			}
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
		case "component":
			r.Component = p.str(k, v)
		case "unit":
			r.Unit = p.str(k, v)
			if r.Unit != "" {
				if msg := checkUnit(r.Unit); msg != "" {
					p.errorf(v.Line, "%s", msg)
				}
			}
		case "suppression":
			r.Suppression = p.duration(k, v)
		default:
			p.errorf(k.Line, "unknown key %q (want id, code, codes, concept, system, component, unit, comparator, threshold, severity, description, suppression)", k.Value)
		}
	})
	var missing []string
	for _, f := range [...]struct {
		name string
		set  bool
	}{
		{"id", r.ID != ""}, {"code (or codes, or concept)", r.Code != "" || r.Codes != nil || r.Concept != ""},
		{"system", r.System != "" || r.Concept != ""}, {"unit", r.Unit != ""},
		{"comparator", r.Comparator != ""}, {"threshold", hasThreshold},
		{"severity", r.Severity != ""}, {"description", r.Description != ""},
	} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		p.errorf(n.Line, "rule is missing %s", strings.Join(missing, ", "))
	} else if len(p.problems) == before {
		// What needs fields together: one of code, codes and concept,
		// and a unit that the rule's codes can be converted from.
		ps := codeProblems(&r)
		if msg := checkUnit(r.Unit); msg == "" {
			ps = append(ps, unitCodeProblems(&r)...)
		}
		for _, msg := range ps {
			p.errorf(n.Line, "%s", msg)
		}
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

// strs is a list of strings; a scalar or a null is reported.
func (p *ruleParser) strs(k, v *yaml.Node) []string {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "%s: want a list of strings", k.Value)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		e = resolve(e)
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			p.errorf(e.Line, "%s: want a list of strings", k.Value)
			continue
		}
		out = append(out, strings.TrimSpace(e.Value))
	}
	return out
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

func (p *ruleParser) integer(k, v *yaml.Node) int {
	var n int
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
		p.errorf(v.Line, "%s: want an integer", k.Value)
		return 0
	}
	return n
}

func (p *ruleParser) boolean(k, v *yaml.Node) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
		p.errorf(v.Line, "%s: want true or false", k.Value)
		return false
	}
	return b
}

// duration is a Go duration ("15m", "4h", "0s"), not negative.
func (p *ruleParser) duration(k, v *yaml.Node) time.Duration {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.errorf(v.Line, "%s: want a duration such as 15m", k.Value)
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.Value))
	if err != nil || d < 0 {
		p.errorf(v.Line, "%s: want a duration such as 15m, not negative", k.Value)
		return 0
	}
	return d
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
