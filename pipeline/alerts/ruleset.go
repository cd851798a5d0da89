package alerts

import (
	"slices"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// ruleSet is a validated rule pack indexed by code for evaluation.
type ruleSet struct {
	rules []rules.Rule
	news2 rules.NEWS2Rule
	// byCode maps each code a rule matches (Code, a code of Codes or of
	// Concept) to the rule's variants for it, ascending by rule.
	byCode map[string][]codeRule
	// systems are the code systems of the rules: a coding of another
	// system (the SNOMED coding beside a LOINC one) needs no look-up.
	systems []string
}

// codeRule is a rule's variant for one of its codes: a copy of the rule
// with Code that code, Codes and Concept unset, and System canonical. The
// variant fires, so the alert records the code that fired as its rule.
type codeRule struct {
	index int // in ruleSet.rules
	rule  *rules.Rule
}

func newRuleSet(pack rules.Pack) (*ruleSet, error) {
	if err := rules.Validate(pack); err != nil {
		return nil, err
	}
	s := &ruleSet{rules: slices.Clone(pack.Rules), news2: pack.NEWS2, byCode: make(map[string][]codeRule, len(pack.Rules))}
	for i := range s.rules {
		for _, code := range s.rules[i].MatchCodes() {
			v := s.rules[i]
			v.Code, v.Codes, v.Concept = code, nil, ""
			v.System = rules.CanonicalSystem(v.System)
			if v.System == "" {
				v.System = rules.LOINC
			}
			s.byCode[code] = append(s.byCode[code], codeRule{index: i, rule: &v})
			if !slices.Contains(s.systems, v.System) {
				s.systems = append(s.systems, v.System)
			}
		}
	}
	return s, nil
}

// description is the description of rule id, for records about an alert
// the rule raised earlier: the rule itself, or its id if the rule is no
// longer configured.
func (s *ruleSet) description(id string) string {
	if id == rules.NEWS2ID {
		return "National Early Warning Score 2"
	}
	for i := range s.rules {
		if s.rules[i].ID == id {
			return s.rules[i].Description
		}
	}
	return id
}
