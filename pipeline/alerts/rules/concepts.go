package rules

import "slices"

// A hospital does not send one LOINC code per measurement: glucose comes as
// blood, serum/plasma or capillary glucose, by mass or by moles; body
// temperature as the generic code or the site's (oral, rectal, ...); SpO2
// as pulse oximetry or arterial saturation. A rule keyed on one of them is
// silent for the rest, so rules (and the processor's NEWS2) name a concept, and the concept
// lists every code with the unit LOINC gives its property: what a code
// needs to be compared (a molar code in mmol/L meets a mg/dL threshold
// only through the analyte's molar mass, see mgdLPerMmolL).
//
// Codes and names are LOINC's (https://loinc.org), and the vital signs
// those of the FHIR R4 vital-signs profile
// (http://hl7.org/fhir/R4/observation-vitalsigns.html).

// Concept names, as rules files write them.
const (
	ConceptGlucose         = "glucose"
	ConceptSpO2            = "spo2"
	ConceptBodyTemperature = "body-temperature"
	ConceptHeartRate       = "heart-rate"
	ConceptRespiratoryRate = "respiratory-rate"
	ConceptSystolicBP      = "systolic-bp"
	ConceptDiastolicBP     = "diastolic-bp"
)

// Concept is one clinical quantity and every LOINC code that carries it.
type Concept struct {
	Name  string
	Codes []ConceptCode
	// Limits are the physiological limits of the concept's values: the
	// processor rejects a value outside them, whether or not a rule reads
	// it.
	Limits Limits
}

// Limits is the range of values a living patient can have, in Unit,
// inclusive. A value outside it is not an extreme reading but a corrupt
// record (a sign lost, a unit mislabelled, a fraction sent as a
// percentage), and alerting on it, or scoring it into NEWS2, would page a
// clinician about nothing while hiding the broken feed. The limits are
// the widest values survived or measured in published cases, not normal
// ranges: a real extreme must never be rejected, because a rejected
// reading raises no alert.
type Limits struct {
	Unit   string
	Lo, Hi float64
}

// ConceptCode is one LOINC code of a concept.
type ConceptCode struct {
	Code string
	// Unit is the UCUM unit of the code's LOINC property (mass
	// concentration mg/dL, substance concentration mmol/L, ...): what a
	// rule's unit must convert from.
	Unit string
	// Implied reports that the property admits no other unit (a rate per
	// minute), so that a bare number (valueInteger, valueDecimal) is in
	// Unit. For every other code a value without a unit is an error: a
	// glucose of 5.5 may be mmol/L or a typo of mg/dL, an SpO2 of 0.97 a
	// fraction, a temperature °C or °F.
	Implied bool
}

// concepts is the table. Read-only.
var concepts = [...]Concept{
	{Name: ConceptGlucose, Codes: []ConceptCode{
		{Code: "2339-0", Unit: "mg/dL"},   // Glucose [Mass/volume] in Blood
		{Code: "2345-7", Unit: "mg/dL"},   // Glucose [Mass/volume] in Serum or Plasma
		{Code: "2341-6", Unit: "mg/dL"},   // Glucose [Mass/volume] in Blood by Test strip manual
		{Code: "41653-7", Unit: "mg/dL"},  // Glucose [Mass/volume] in Capillary blood by Glucometer
		{Code: "1558-6", Unit: "mg/dL"},   // Fasting glucose [Mass/volume] in Serum or Plasma
		{Code: "15074-8", Unit: "mmol/L"}, // Glucose [Moles/volume] in Blood
		{Code: "14749-6", Unit: "mmol/L"}, // Glucose [Moles/volume] in Serum or Plasma
		{Code: "14743-9", Unit: "mmol/L"}, // Glucose [Moles/volume] in Capillary blood by Glucometer
	},
		// 0: an undetectable glucose is reported as 0. 3000 mg/dL (166
		// mmol/L): above the highest glucose survived on record, 2656
		// mg/dL (147.6 mmol/L, a child in diabetic ketoacidosis, Guinness
		// World Records 2008), and above hyperosmolar cases in the
		// literature (about 2000 mg/dL).
		Limits: Limits{Unit: "mg/dL", Lo: 0, Hi: 3000}},
	{Name: ConceptSpO2, Codes: []ConceptCode{
		{Code: "59408-5", Unit: "%"}, // Oxygen saturation in Arterial blood by Pulse oximetry
		{Code: "2708-6", Unit: "%"},  // Oxygen saturation in Arterial blood
		{Code: "20564-1", Unit: "%"}, // Oxygen saturation in Blood
		{Code: "2710-2", Unit: "%"},  // Oxygen saturation in Capillary blood by Oximetry
	},
		// A saturation is the share of haemoglobin carrying oxygen: 0 to
		// 100 % by definition (an SpO2 of 97 sent with unit "1" is 9700 %).
		Limits: Limits{Unit: "%", Lo: 0, Hi: 100}},
	{Name: ConceptBodyTemperature, Codes: []ConceptCode{
		{Code: "8310-5", Unit: "Cel"},  // Body temperature
		{Code: "8331-1", Unit: "Cel"},  // Oral temperature
		{Code: "8332-9", Unit: "Cel"},  // Rectal temperature
		{Code: "8333-7", Unit: "Cel"},  // Tympanic membrane temperature
		{Code: "8328-7", Unit: "Cel"},  // Axillary temperature
		{Code: "75539-7", Unit: "Cel"}, // Body temperature - Temporal artery
	},
		// 10 °C: below the lowest core temperature survived, 13.7 °C
		// (accidental hypothermia, Gilbert et al., Lancet 2000;355:375),
		// and the 18-20 °C of deep hypothermic circulatory arrest in
		// cardiac surgery. 47 °C: above the highest survived, 46.5 °C
		// (heat stroke, Atlanta 1980, Guinness World Records). Narrower
		// limits such as 25-45 °C would reject readings of patients who
		// lived. A temperature of 5 °C, or a Fahrenheit value sent as
		// Celsius (98.6), is rejected.
		Limits: Limits{Unit: "Cel", Lo: 10, Hi: 47}},
	{Name: ConceptHeartRate, Codes: []ConceptCode{
		{Code: "8867-4", Unit: "/min", Implied: true}, // Heart rate
		{Code: "8889-8", Unit: "/min", Implied: true}, // Heart rate by Pulse oximetry
		{Code: "8893-0", Unit: "/min", Implied: true}, // Heart rate Peripheral artery by palpation
	},
		// 0: asystole is a reading, the most urgent one. 600 /min: the
		// highest heart rate published, ventricular response to
		// pre-excited atrial fibrillation (Chhabra et al., Indian Pacing
		// Electrophysiol J 2012;12:32); infants' SVT runs 220-300.
		Limits: Limits{Unit: "/min", Lo: 0, Hi: 600}},
	{Name: ConceptRespiratoryRate, Codes: []ConceptCode{
		{Code: "9279-1", Unit: "/min", Implied: true}, // Respiratory rate
	},
		// 0: apnoea. 150 /min: no published spontaneous rate comes near
		// it; neonatal tachypnoea is defined from 60 /min and reaches
		// 100-120 in distress. (High-frequency ventilator rates are a
		// device setting, not LOINC 9279-1.)
		Limits: Limits{Unit: "/min", Lo: 0, Hi: 150}},
	{Name: ConceptSystolicBP, Codes: []ConceptCode{
		{Code: "8480-6", Unit: "mm[Hg]"},  // Systolic blood pressure
		{Code: "8459-0", Unit: "mm[Hg]"},  // Systolic blood pressure--sitting
		{Code: "8460-8", Unit: "mm[Hg]"},  // Systolic blood pressure--standing
		{Code: "8461-6", Unit: "mm[Hg]"},  // Systolic blood pressure--supine
		{Code: "76534-7", Unit: "mm[Hg]"}, // Systolic blood pressure by Noninvasive
		{Code: "76215-3", Unit: "mm[Hg]"}, // Invasive Systolic blood pressure
	},
		// 0: an arterial line reads about 0 in cardiac arrest. 500
		// mm[Hg]: above the highest intra-arterial systolic pressure
		// measured in a person, 480 mm[Hg] (heavy leg press, MacDougall et
		// al., J Appl Physiol 1985;58:785).
		Limits: Limits{Unit: "mm[Hg]", Lo: 0, Hi: 500}},
	// Diastolic pressure feeds no NEWS2 parameter (NEWS2 scores systolic
	// only), but a hypertensive emergency is defined on either (ACC/AHA
	// 2017 guideline: systolic > 180 and/or diastolic > 120 mm[Hg]).
	{Name: ConceptDiastolicBP, Codes: []ConceptCode{
		{Code: "8462-4", Unit: "mm[Hg]"},  // Diastolic blood pressure
		{Code: "8453-3", Unit: "mm[Hg]"},  // Diastolic blood pressure--sitting
		{Code: "8454-1", Unit: "mm[Hg]"},  // Diastolic blood pressure--standing
		{Code: "8455-8", Unit: "mm[Hg]"},  // Diastolic blood pressure--supine
		{Code: "76535-4", Unit: "mm[Hg]"}, // Diastolic blood pressure by Noninvasive
		{Code: "76213-8", Unit: "mm[Hg]"}, // Invasive Diastolic blood pressure
	},
		// 0: an arterial line in cardiac arrest. 400 mm[Hg]: above the
		// 350 mm[Hg] diastolic measured intra-arterially with the
		// 480 mm[Hg] systolic of the leg-press study cited above.
		Limits: Limits{Unit: "mm[Hg]", Lo: 0, Hi: 400}},
}

// Concepts is the concept table, a copy of its own for the caller.
func Concepts() []Concept {
	out := make([]Concept, len(concepts))
	for i, c := range concepts {
		c.Codes = slices.Clone(c.Codes)
		out[i] = c
	}
	return out
}

// conceptCodes indexes the concept table by code. Read-only.
var conceptCodes = func() map[string]ConceptCode {
	m := make(map[string]ConceptCode)
	for i := range concepts {
		for _, cc := range concepts[i].Codes {
			if _, dup := m[cc.Code]; dup {
				panic("rules: LOINC code " + cc.Code + " in two concepts")
			}
			m[cc.Code] = cc
		}
	}
	return m
}()

// lookupConcept is the concept named name.
func lookupConcept(name string) (*Concept, bool) {
	for i := range concepts {
		if concepts[i].Name == name {
			return &concepts[i], true
		}
	}
	return nil, false
}

// conceptNames lists the concepts, for error messages.
func conceptNames() string {
	s := ""
	for i := range concepts {
		if i > 0 {
			s += ", "
		}
		s += concepts[i].Name
	}
	return s
}

// The code systems carepipe reads: LOINC codes observations and rules,
// SNOMED CT the "on oxygen" finding, UCUM units.
const (
	LOINC  = "http://loinc.org"
	SNOMED = "http://snomed.info/sct"
	UCUM   = "http://unitsofmeasure.org"
)

// Code systems are sent by URI or, from HL7 v2 and CDA sources, by OID
// (HL7's terminology registry: LOINC 2.16.840.1.113883.6.1, SNOMED CT
// 2.16.840.1.113883.6.96, UCUM 2.16.840.1.113883.6.8). Both name the same
// system; an OID left unrecognised would make a LOINC coding match nothing.
const (
	loincOID  = "urn:oid:2.16.840.1.113883.6.1"
	snomedOID = "urn:oid:2.16.840.1.113883.6.96"
	ucumOID   = "urn:oid:2.16.840.1.113883.6.8"
)

// CanonicalSystem is the URI of a code system sent by its OID, else s.
func CanonicalSystem(s string) string {
	switch s {
	case loincOID:
		return LOINC
	case snomedOID:
		return SNOMED
	case ucumOID:
		return UCUM
	}
	return s
}
