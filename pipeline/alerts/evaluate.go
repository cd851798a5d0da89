package alerts

import (
	"slices"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// Observation statuses (FHIR R4 ObservationStatus).
const (
	statusRegistered     = "registered"
	statusPreliminary    = "preliminary"
	statusFinal          = "final"
	statusAmended        = "amended"
	statusCorrected      = "corrected"
	statusCancelled      = "cancelled"
	statusEnteredInError = "entered-in-error"
	statusUnknown        = "unknown"
)

// statusClass is what an observation's status asks of the pipeline.
type statusClass uint8

const (
	// classPending: no result yet (registered); nothing to evaluate.
	classPending statusClass = iota
	// classResult: evaluate (final, amended, corrected).
	classResult
	// classProvisional: evaluate, and mark alerts provisional
	// (preliminary, unknown).
	classProvisional
	// classWithdrawn: the observation is void (cancelled,
	// entered-in-error); retract what it raised.
	classWithdrawn
)

func classify(status string) (statusClass, error) {
	switch status {
	case statusRegistered:
		return classPending, nil
	case statusFinal, statusAmended, statusCorrected:
		return classResult, nil
	case statusPreliminary, statusUnknown:
		return classProvisional, nil
	case statusCancelled, statusEnteredInError:
		return classWithdrawn, nil
	}
	return 0, pipeline.Rejectf(pipeline.TypeInvalid, "observation status is not a FHIR observation status")
}

// firing is a threshold rule that fires on an observation.
type firing struct {
	rule *rules.Rule
	// value and unit are the value as observed (unit for display);
	// compared is the value in the rule's unit.
	value    float64
	unit     string
	compared float64
	// converted reports that compared differs in unit from the observed.
	converted bool
}

// findings is what an observation says, before state: the rules it fires
// and the NEWS2 parameters it carries.
type findings struct {
	class   statusClass
	firings []firing
	vitals  []vitalReading
}

// vitalReading is one NEWS2 parameter value from an observation, in the
// parameter's unit (see [vital]).
type vitalReading struct {
	vital vital
	value float64
}

// evaluate reads what obs says. A value whose unit cannot be converted to
// the unit a rule or NEWS2 needs is an [pipeline.TypeInvalid] record error,
// as is an unknown status or consciousness answer: never a silent miss.
func (s *ruleSet) evaluate(obs *observation, dst *findings) error {
	class, err := classify(obs.Status)
	if err != nil {
		return err
	}
	dst.class = class
	if class == classPending || class == classWithdrawn {
		// A withdrawn observation is not checked for plausibility: an
		// implausible value is what gets entered in error, and its
		// retraction must go through.
		return nil
	}
	var own codingConcepts
	if err := plausible(&obs.measurement, &own); err != nil {
		return err
	}
	for i := range obs.Components {
		if err := plausible(&obs.Components[i], nil); err != nil {
			return err
		}
	}
	var cand [16]codeRule
	cands := s.candidates(obs, cand[:0])
	done := -1
	for _, c := range cands {
		if c.index == done {
			continue
		}
		// A variant is the rule for one of its codes: the first whose
		// coding carries a value decides, and the rule fires once.
		r := c.rule
		m, code := measurementOf(r, obs)
		if m == nil {
			continue
		}
		done = c.index
		v, converted, err := inUnit(m, r.Unit, code)
		if err != nil {
			return err
		}
		if r.Comparator.Holds(v, r.Threshold) {
			unit := m.UnitText
			if unit == "" {
				unit = m.Unit
			}
			dst.firings = append(dst.firings, firing{rule: r, value: m.Value, unit: unit, compared: v, converted: converted})
		}
	}
	if s.news2.Enabled {
		return vitalsOf(obs, &own, dst)
	}
	return nil
}

// plausible checks m's value against the physiological limits of the
// concepts its codes belong to (see [rules.Limits]), whether or not a rule
// reads it: an observation is rejected or not by what it says, not by the
// rule pack. A value whose unit does not convert to the limits' is left to
// the rule or NEWS2 that reads it, which rejects it then. The error names
// the code and the limits, never the value.
func plausible(m *measurement, seen *codingConcepts) error {
	if !m.HasValue {
		return nil
	}
	for i := range m.Codings {
		c := &m.Codings[i]
		if rules.CanonicalSystem(c.System) != rules.LOINC {
			continue
		}
		lc, ok := loincCodes[c.Code]
		seen.note(i, lc, ok)
		if !ok {
			continue
		}
		l := &lc.concept.limits
		v, _, err := inUnit(m, l.Unit, c.Code)
		if err != nil {
			continue
		}
		if v < l.Lo || v > l.Hi {
			return pipeline.Rejectf(pipeline.TypeInvalid, "observation coded %s has a value outside the physiological limits %g to %g %s", c.Code, l.Lo, l.Hi, l.Unit)
		}
	}
	return nil
}

// candidates appends the rule variants whose code and system obs or one of
// its components carries, ordered by rule, each once.
func (s *ruleSet) candidates(obs *observation, dst []codeRule) []codeRule {
	add := func(cs []coding) {
		for i := range cs {
			sys := rules.CanonicalSystem(cs[i].System)
			if !slices.Contains(s.systems, sys) {
				continue
			}
			for _, c := range s.byCode[cs[i].Code] {
				if c.rule.System == sys && !slices.Contains(dst, c) {
					dst = append(dst, c)
				}
			}
		}
	}
	add(obs.Codings)
	for i := range obs.Components {
		add(obs.Components[i].Codings)
	}
	slices.SortStableFunc(dst, func(a, b codeRule) int { return a.index - b.index })
	return dst
}

// measurementOf is the measurement of obs that r reads, with the code that
// names its analyte; nil when obs carries no value for r (none coded so,
// or a dataAbsentReason).
func measurementOf(r *rules.Rule, obs *observation) (*measurement, string) {
	if r.Component != "" {
		if !hasCoding(obs.Codings, r.System, r.Code) {
			return nil, ""
		}
		for i := range obs.Components {
			if c := &obs.Components[i]; c.HasValue && hasCoding(c.Codings, r.System, r.Component) {
				return c, r.Component
			}
		}
		return nil, ""
	}
	if obs.HasValue && hasCoding(obs.Codings, r.System, r.Code) {
		return &obs.measurement, r.Code
	}
	for i := range obs.Components {
		if c := &obs.Components[i]; c.HasValue && hasCoding(c.Codings, r.System, r.Code) {
			return c, r.Code
		}
	}
	return nil, ""
}

// hasCoding reports whether cs has code in system (a canonical URI; a
// coding's system may be its OID).
func hasCoding(cs []coding, system, code string) bool {
	for i := range cs {
		if cs[i].Code == code && rules.CanonicalSystem(cs[i].System) == system {
			return true
		}
	}
	return false
}

// inUnit is m's value in unit (UCUM), for the analyte code (LOINC when it
// is in the concept table). A value with no unit is never taken to be in
// the rule's unit: only a bare number of a code whose property fixes the
// unit has one. Errors name the code, never the value or what was sent as
// its unit.
func inUnit(m *measurement, unit, code string) (v float64, converted bool, err error) {
	from := m.Unit
	if from == "" {
		lc, ok := loincCodes[code]
		if !ok || !lc.Implied || !m.Bare {
			return 0, false, pipeline.Rejectf(pipeline.TypeInvalid, "observation coded %s has a value without a unit", code)
		}
		from = lc.Unit
	}
	if from == unit {
		return m.Value, false, nil
	}
	v, ok := rules.ConvertUnit(m.Value, from, unit, code)
	if !ok {
		if !rules.KnownUnit(from) {
			return 0, false, pipeline.Rejectf(pipeline.TypeInvalid, "observation coded %s has a value in a unit carepipe does not know (want one convertible to %s)", code, unit)
		}
		return 0, false, pipeline.Rejectf(pipeline.TypeInvalid, "observation coded %s has a value whose unit cannot be converted to %s", code, unit)
	}
	return v, true, nil
}

// NEWS2 parameters as FHIR carries them: LOINC vital-sign codes, inhaled
// oxygen flow and concentration, SNOMED's "on oxygen" finding, and LOINC's
// ACVPU level of responsiveness with its answer codes.
const (
	loincOxygenFlow     = "3151-8"
	loincOxygenFraction = "3150-0"
	loincResponsiveness = "67775-7"
	snomedOnOxygen      = "371825009"
	snomedYes           = "373066001"
	snomedNo            = "373067005"
	// airOxygenPercent is room air's oxygen fraction: an inhaled fraction
	// above it means supplemental oxygen.
	airOxygenPercent = 21
)

// acvpu maps LOINC's ACVPU answers to the consciousness parameter: alert
// is 0, new confusion, voice, pain and unresponsive are 1 (CVPU).
var acvpu = map[string]float64{
	"LA9340-6":  0, // alert
	"LA6560-2":  1, // confused
	"LA17108-4": 1, // voice
	"LA17107-6": 1, // pain
	"LA9343-0":  1, // unresponsive
}

// vitalsOf appends the NEWS2 parameters obs carries, its own and its
// components'.
// codingConcepts remembers what the concept table said of a measurement's
// first codings, so that the table is looked up once per coding: the
// look-ups were a tenth of evaluation. A nil one remembers nothing.
type codingConcepts struct {
	n  int // codings 0..n-1 were looked up (those not LOINC as not found)
	lc [4]loincCode
	ok [4]bool
}

func (cc *codingConcepts) note(i int, lc loincCode, ok bool) {
	if cc == nil || i >= len(cc.lc) {
		return
	}
	cc.lc[i], cc.ok[i], cc.n = lc, ok, i+1
}

// lookup is the concept table's entry for coding i, code, of the
// measurement remembered.
func (cc *codingConcepts) lookup(i int, code string) (loincCode, bool) {
	if cc != nil && i < cc.n {
		return cc.lc[i], cc.ok[i]
	}
	lc, ok := loincCodes[code]
	return lc, ok
}

func vitalsOf(obs *observation, own *codingConcepts, dst *findings) error {
	if err := vitalsOfMeasurement(&obs.measurement, own, dst); err != nil {
		return err
	}
	for i := range obs.Components {
		if err := vitalsOfMeasurement(&obs.Components[i], nil, dst); err != nil {
			return err
		}
	}
	return nil
}

func vitalsOfMeasurement(m *measurement, seen *codingConcepts, dst *findings) error {
	for i := range m.Codings {
		c := &m.Codings[i]
		switch sys := rules.CanonicalSystem(c.System); {
		case sys == rules.LOINC && c.Code == loincResponsiveness:
			if len(m.Coded) == 0 {
				continue
			}
			v, ok := acvpuValue(m.Coded)
			if !ok {
				return pipeline.Rejectf(pipeline.TypeInvalid, "level of responsiveness answer is not an ACVPU code")
			}
			dst.add(vitalConsciousness, v)
		case sys == rules.SNOMED && c.Code == snomedOnOxygen:
			switch {
			case hasCoding(m.Coded, rules.SNOMED, snomedYes):
				dst.add(vitalSupplementalOxygen, 1)
			case hasCoding(m.Coded, rules.SNOMED, snomedNo):
				dst.add(vitalSupplementalOxygen, 0)
			}
		case sys == rules.LOINC && (c.Code == loincOxygenFlow || c.Code == loincOxygenFraction) && m.HasValue:
			unit, onAbove := "L/min", 0.0
			if c.Code == loincOxygenFraction {
				unit, onAbove = "%", airOxygenPercent
			}
			v, _, err := inUnit(m, unit, c.Code)
			if err != nil {
				return err
			}
			on := 0.0
			if v > onAbove {
				on = 1
			}
			dst.add(vitalSupplementalOxygen, on)
		case sys == rules.LOINC && m.HasValue:
			// The concept table, as the rules use it: an oral
			// temperature is NEWS2's temperature as much as 8310-5 is.
			lc, ok := seen.lookup(i, c.Code)
			if !ok || lc.concept.vital == numVitals {
				continue
			}
			v, converted, err := inUnit(m, lc.concept.vitalUnit, c.Code)
			if err != nil {
				return err
			}
			if converted {
				v = chartValue(lc.concept.vital, v)
			}
			dst.add(lc.concept.vital, v)
		}
	}
	return nil
}

// missingValue is the error of an observation with no value,
// dataAbsentReason, component or hasMember whose code a rule or NEWS2
// reads: a vital sign must carry a value or say why not (vital-signs
// profile vs-2), and one that cannot be evaluated would be a silent miss.
// Of any other code such a result is valid FHIR (obs-6), and skipped.
// The processor judges it when it decodes, once per record.
func (s *ruleSet) missingValue(obs *observation) error {
	if obs.skip != skipNoValue {
		return nil
	}
	class, _ := classify(obs.Status)
	if class == classPending || class == classWithdrawn {
		return nil
	}
	var cand [16]codeRule
	if len(s.candidates(obs, cand[:0])) > 0 || s.news2.Enabled && news2Reads(&obs.measurement) {
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation has no value, components, hasMember or dataAbsentReason")
	}
	return nil
}

// news2Reads reports whether m is coded as a NEWS2 parameter.
func news2Reads(m *measurement) bool {
	for i := range m.Codings {
		c := &m.Codings[i]
		switch rules.CanonicalSystem(c.System) {
		case rules.LOINC:
			switch c.Code {
			case loincResponsiveness, loincOxygenFlow, loincOxygenFraction:
				return true
			}
			if lc, ok := loincCodes[c.Code]; ok && lc.concept.vital != numVitals {
				return true
			}
		case rules.SNOMED:
			if c.Code == snomedOnOxygen {
				return true
			}
		}
	}
	return false
}

func acvpuValue(cs []coding) (float64, bool) {
	for i := range cs {
		if rules.CanonicalSystem(cs[i].System) != rules.LOINC {
			continue
		}
		if v, ok := acvpu[cs[i].Code]; ok {
			return v, true
		}
	}
	return 0, false
}

// add records a parameter once: an observation coded twice for the same
// parameter (2708-6 and 59408-5 for SpO2) carries one reading.
func (f *findings) add(v vital, value float64) {
	for i := range f.vitals {
		if f.vitals[i].vital == v {
			return
		}
	}
	f.vitals = append(f.vitals, vitalReading{vital: v, value: value})
}
