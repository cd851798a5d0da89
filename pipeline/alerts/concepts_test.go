package alerts

import (
	"testing"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// TestNEWS2Parameters: every concept news2Parameters names is in the
// concept table, and every code of it converts to its parameter's unit.
func TestNEWS2Parameters(t *testing.T) {
	concepts := make(map[string]rules.Concept)
	for _, c := range rules.Concepts() {
		concepts[c.Name] = c
	}
	for name, p := range news2Parameters {
		c, ok := concepts[name]
		if !ok {
			t.Errorf("news2Parameters names %q, which is not a concept", name)
			continue
		}
		for _, cc := range c.Codes {
			if _, ok := rules.ConvertUnit(1, cc.Unit, p.unit, cc.Code); !ok {
				t.Errorf("%s %s: %s does not convert to %s (%v)", name, cc.Code, cc.Unit, p.unit, p.vital)
			}
			if lc := loincCodes[cc.Code]; lc.concept.vital != p.vital || lc.concept.vitalUnit != p.unit {
				t.Errorf("%s %s: indexed as %v in %s", name, cc.Code, lc.concept.vital, lc.concept.vitalUnit)
			}
		}
	}
}
