package alerts

import "github.com/carepipe/carepipe/pipeline/alerts/rules"

// The concept table ([rules.Concepts]) is the rule pack's: the codes a
// rule naming a concept matches, each with its unit, and the concept's
// physiological limits. NEWS2 reads its parameters through the same
// table, so that an oral temperature is NEWS2's temperature as much as
// 8310-5 is; which parameter a concept feeds is NEWS2's business, and is
// kept here.

// news2Parameters maps a concept of the table to the NEWS2 parameter it
// feeds and the unit of that parameter's bands. A concept not listed
// (glucose; diastolic pressure, which NEWS2 does not score) feeds none.
// Read-only.
var news2Parameters = map[string]struct {
	vital vital
	unit  string
}{
	rules.ConceptSpO2:            {vitalSpO2, "%"},
	rules.ConceptBodyTemperature: {vitalTemperature, "Cel"},
	rules.ConceptHeartRate:       {vitalPulse, "/min"},
	rules.ConceptRespiratoryRate: {vitalRespiratoryRate, "/min"},
	rules.ConceptSystolicBP:      {vitalSystolicBP, "mm[Hg]"},
}

// concept is what the processor uses of one concept of the table.
type concept struct {
	name string
	// vital is the NEWS2 parameter the concept feeds, numVitals for none;
	// vitalUnit is the unit of that parameter's bands.
	vital     vital
	vitalUnit string
	// limits are the physiological limits of the concept's values (see
	// [plausible]).
	limits rules.Limits
}

// loincCode is what the concept table says of one LOINC code.
type loincCode struct {
	concept *concept
	rules.ConceptCode
}

// loincCodes indexes the concept table by code, for the look-up of every
// coding an observation carries. Read-only.
var loincCodes = func() map[string]loincCode {
	m := make(map[string]loincCode)
	for _, c := range rules.Concepts() {
		cp := &concept{name: c.Name, vital: numVitals, limits: c.Limits}
		if p, ok := news2Parameters[c.Name]; ok {
			cp.vital, cp.vitalUnit = p.vital, p.unit
		}
		for _, cc := range c.Codes {
			m[cc.Code] = loincCode{concept: cp, ConceptCode: cc}
		}
	}
	return m
}()
