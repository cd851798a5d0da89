package rules

import (
	"maps"
	"slices"
)

// Rules state their threshold in one UCUM unit, and observations arrive in
// whatever unit the device or lab used. Comparing 5.5 mmol/L with a 180 mg/dL
// threshold would silently never alert, so a value is converted to the
// rule's unit first, and a value that cannot be converted must not be
// compared at all.
//
// Conversion is by exact table entry only. UCUM codes are case-sensitive and
// carry arbitrary annotations; guessing at a spelling (lowercasing, stripping
// "{...}", parsing the expression) could turn an unknown unit into a wrong
// number, and a wrong number in a clinical alert is worse than no number.
// Every accepted spelling is therefore listed, and anything else is unknown.

// unitDimension groups units that convert into each other by a linear map.
// The zero value is no dimension, so a missing table entry never matches.
type unitDimension uint8

// The dimensions, each with its base unit: every unit's table entry maps
// onto that base.
const (
	_                     unitDimension = iota
	dimTemperature                      // Cel
	dimMass                             // kg
	dimLength                           // m
	dimPressure                         // mm[Hg]
	dimFrequency                        // /min
	dimFraction                         // %
	dimMassConcentration                // mg/dL
	dimMolarConcentration               // mmol/L
	dimFlow                             // L/min
	dimScore                            // {score}
)

// ucumUnit maps a unit onto its dimension's base: base = value*scale + offset.
// Only temperature has an offset; keeping the map affine for every unit lets
// one code path convert all of them.
type ucumUnit struct {
	dim    unitDimension
	scale  float64
	offset float64
}

// ucumUnits is the conversion table, keyed by the exact UCUM code. Read-only.
var ucumUnits = map[string]ucumUnit{
	"Cel":    {dimTemperature, 1, 0},
	"[degF]": {dimTemperature, 5.0 / 9, -32 * 5.0 / 9},
	"K":      {dimTemperature, 1, -273.15},

	"kg":      {dimMass, 1, 0},
	"g":       {dimMass, 0.001, 0},
	"[lb_av]": {dimMass, 0.45359237, 0},     // exact by definition
	"[oz_av]": {dimMass, 0.028349523125, 0}, // 1/16 [lb_av], exact

	"m":      {dimLength, 1, 0},
	"cm":     {dimLength, 0.01, 0},
	"mm":     {dimLength, 0.001, 0},
	"[in_i]": {dimLength, 0.0254, 0}, // exact by definition
	"[ft_i]": {dimLength, 0.3048, 0}, // exact by definition

	"mm[Hg]": {dimPressure, 1, 0},
	"kPa":    {dimPressure, 7.500616827, 0}, // 1000 Pa / 133.322387415 Pa

	// Annotations in braces carry no meaning in UCUM, so these are all one
	// unit; they are listed because devices send each spelling.
	"/min":          {dimFrequency, 1, 0},
	"{beats}/min":   {dimFrequency, 1, 0},
	"{beat}/min":    {dimFrequency, 1, 0},
	"{breaths}/min": {dimFrequency, 1, 0},
	"{breath}/min":  {dimFrequency, 1, 0},
	"/s":            {dimFrequency, 60, 0},

	// A unit-less fraction: SpO2 0.97 is 97 %.
	"%": {dimFraction, 1, 0},
	"1": {dimFraction, 100, 0},

	"mg/dL": {dimMassConcentration, 1, 0},
	"g/L":   {dimMassConcentration, 100, 0},
	"mg/L":  {dimMassConcentration, 0.1, 0},
	"g/dL":  {dimMassConcentration, 1000, 0},

	"mmol/L": {dimMolarConcentration, 1, 0},
	"umol/L": {dimMolarConcentration, 0.001, 0},

	"L/min":  {dimFlow, 1, 0},
	"mL/min": {dimFlow, 0.001, 0},

	// A score is a count on its own scale; it converts only to itself.
	"{score}": {dimScore, 1, 0},
}

// glucoseMgdLPerMmolL is the factor clinical labs use for glucose: its molar
// mass, 180.16 g/mol, makes 1 mmol/L 180.16 mg/L.
const glucoseMgdLPerMmolL = 18.016

// mgdLPerMmolL holds, by LOINC code, how many mg/dL one mmol/L of the
// analyte is. Molar and mass concentrations are different dimensions that
// meet only through the analyte's molar mass, so a code not listed here
// cannot cross between them. Read-only.
var mgdLPerMmolL = map[string]float64{
	// Glucose in blood, serum or plasma and capillary blood, by mass and by
	// moles: the analyte is the same whichever property the code names.
	"2339-0":  glucoseMgdLPerMmolL,
	"2345-7":  glucoseMgdLPerMmolL,
	"41653-7": glucoseMgdLPerMmolL,
	"15074-8": glucoseMgdLPerMmolL,
	"14749-6": glucoseMgdLPerMmolL,
	"14743-9": glucoseMgdLPerMmolL,
	"2341-6":  glucoseMgdLPerMmolL,
	"1558-6":  glucoseMgdLPerMmolL,
}

// ConvertUnit converts value from the UCUM unit from to the UCUM unit to,
// for an observation coded code (a LOINC code; it matters only for molar
// conversions, which depend on the analyte). ok is false when the units
// are not convertible (unknown unit, different dimensions, or a molar
// conversion for an analyte with no known factor). from == to converts
// to itself for any unit, known or not.
func ConvertUnit(value float64, from, to, code string) (converted float64, ok bool) {
	// A rule and an observation in the same unit need no table: the value
	// is returned bit for bit, and a unit this table lacks still compares.
	if from == to {
		return value, true
	}
	f, ok := ucumUnits[from]
	if !ok {
		return 0, false
	}
	t, ok := ucumUnits[to]
	if !ok {
		return 0, false
	}
	base := value*f.scale + f.offset
	if f.dim != t.dim {
		factor, ok := mgdLPerMmolL[code]
		switch {
		case !ok:
			return 0, false
		case f.dim == dimMolarConcentration && t.dim == dimMassConcentration:
			base *= factor
		case f.dim == dimMassConcentration && t.dim == dimMolarConcentration:
			base /= factor
		default:
			// An analyte's factor bridges only molar and mass
			// concentration, never, say, mmol/L to kg.
			return 0, false
		}
	}
	return (base - t.offset) / t.scale, true
}

// KnownUnit reports whether u is in the conversion table (rules files are
// checked with it).
func KnownUnit(u string) bool {
	_, ok := ucumUnits[u]
	return ok
}

// Units are the UCUM codes of the conversion table, sorted.
func Units() []string {
	return slices.Sorted(maps.Keys(ucumUnits))
}
