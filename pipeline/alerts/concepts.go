package alerts

// A hospital does not send one LOINC code per measurement: glucose comes as
// blood, serum/plasma or capillary glucose, by mass or by moles; body
// temperature as the generic code or the site's (oral, rectal, ...); SpO2
// as pulse oximetry or arterial saturation. A rule keyed on one of them is
// silent for the rest, so rules and NEWS2 name a concept, and the concept
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

// concept is one clinical quantity and every LOINC code that carries it.
type concept struct {
	name string
	// vital is the NEWS2 parameter the concept feeds, NumVitals for none;
	// vitalUnit is the unit of that parameter's bands.
	vital     Vital
	vitalUnit string
	codes     []conceptCode
	// limits are the physiological limits of the concept's values (see
	// [plausible]).
	limits plausibility
}

// plausibility is the range of values a living patient can have, in unit,
// inclusive. A value outside it is not an extreme reading but a corrupt
// record (a sign lost, a unit mislabelled, a fraction sent as a
// percentage), and alerting on it, or scoring it into NEWS2, would page a
// clinician about nothing while hiding the broken feed. The limits are
// the widest values survived or measured in published cases, not normal
// ranges: a real extreme must never be rejected, because a rejected
// reading raises no alert.
type plausibility struct {
	unit   string
	lo, hi float64
}

// conceptCode is one LOINC code of a concept.
type conceptCode struct {
	code string
	// unit is the UCUM unit of the code's LOINC property (mass
	// concentration mg/dL, substance concentration mmol/L, ...): what a
	// rule's unit must convert from.
	unit string
	// implied reports that the property admits no other unit (a rate per
	// minute), so that a bare number (valueInteger, valueDecimal) is in
	// unit. For every other code a value without a unit is an error: a
	// glucose of 5.5 may be mmol/L or a typo of mg/dL, an SpO2 of 0.97 a
	// fraction, a temperature °C or °F.
	implied bool
}

// concepts is the table. Read-only.
var concepts = [...]concept{
	{name: ConceptGlucose, vital: NumVitals, codes: []conceptCode{
		{code: "2339-0", unit: "mg/dL"},   // Glucose [Mass/volume] in Blood
		{code: "2345-7", unit: "mg/dL"},   // Glucose [Mass/volume] in Serum or Plasma
		{code: "2341-6", unit: "mg/dL"},   // Glucose [Mass/volume] in Blood by Test strip manual
		{code: "41653-7", unit: "mg/dL"},  // Glucose [Mass/volume] in Capillary blood by Glucometer
		{code: "1558-6", unit: "mg/dL"},   // Fasting glucose [Mass/volume] in Serum or Plasma
		{code: "15074-8", unit: "mmol/L"}, // Glucose [Moles/volume] in Blood
		{code: "14749-6", unit: "mmol/L"}, // Glucose [Moles/volume] in Serum or Plasma
		{code: "14743-9", unit: "mmol/L"}, // Glucose [Moles/volume] in Capillary blood by Glucometer
	},
		// 0: an undetectable glucose is reported as 0. 3000 mg/dL (166
		// mmol/L): above the highest glucose survived on record, 2656
		// mg/dL (147.6 mmol/L, a child in diabetic ketoacidosis, Guinness
		// World Records 2008), and above hyperosmolar cases in the
		// literature (about 2000 mg/dL).
		limits: plausibility{unit: "mg/dL", lo: 0, hi: 3000}},
	{name: ConceptSpO2, vital: VitalSpO2, vitalUnit: "%", codes: []conceptCode{
		{code: "59408-5", unit: "%"}, // Oxygen saturation in Arterial blood by Pulse oximetry
		{code: "2708-6", unit: "%"},  // Oxygen saturation in Arterial blood
		{code: "20564-1", unit: "%"}, // Oxygen saturation in Blood
		{code: "2710-2", unit: "%"},  // Oxygen saturation in Capillary blood by Oximetry
	},
		// A saturation is the share of haemoglobin carrying oxygen: 0 to
		// 100 % by definition (an SpO2 of 97 sent with unit "1" is 9700 %).
		limits: plausibility{unit: "%", lo: 0, hi: 100}},
	{name: ConceptBodyTemperature, vital: VitalTemperature, vitalUnit: "Cel", codes: []conceptCode{
		{code: "8310-5", unit: "Cel"},  // Body temperature
		{code: "8331-1", unit: "Cel"},  // Oral temperature
		{code: "8332-9", unit: "Cel"},  // Rectal temperature
		{code: "8333-7", unit: "Cel"},  // Tympanic membrane temperature
		{code: "8328-7", unit: "Cel"},  // Axillary temperature
		{code: "75539-7", unit: "Cel"}, // Body temperature - Temporal artery
	},
		// 10 °C: below the lowest core temperature survived, 13.7 °C
		// (accidental hypothermia, Gilbert et al., Lancet 2000;355:375),
		// and the 18-20 °C of deep hypothermic circulatory arrest in
		// cardiac surgery. 47 °C: above the highest survived, 46.5 °C
		// (heat stroke, Atlanta 1980, Guinness World Records). Narrower
		// limits such as 25-45 °C would reject readings of patients who
		// lived. A temperature of 5 °C, or a Fahrenheit value sent as
		// Celsius (98.6), is rejected.
		limits: plausibility{unit: "Cel", lo: 10, hi: 47}},
	{name: ConceptHeartRate, vital: VitalPulse, vitalUnit: "/min", codes: []conceptCode{
		{code: "8867-4", unit: "/min", implied: true}, // Heart rate
		{code: "8889-8", unit: "/min", implied: true}, // Heart rate by Pulse oximetry
		{code: "8893-0", unit: "/min", implied: true}, // Heart rate Peripheral artery by palpation
	},
		// 0: asystole is a reading, the most urgent one. 600 /min: the
		// highest heart rate published, ventricular response to
		// pre-excited atrial fibrillation (Chhabra et al., Indian Pacing
		// Electrophysiol J 2012;12:32); infants' SVT runs 220-300.
		limits: plausibility{unit: "/min", lo: 0, hi: 600}},
	{name: ConceptRespiratoryRate, vital: VitalRespiratoryRate, vitalUnit: "/min", codes: []conceptCode{
		{code: "9279-1", unit: "/min", implied: true}, // Respiratory rate
	},
		// 0: apnoea. 150 /min: no published spontaneous rate comes near
		// it; neonatal tachypnoea is defined from 60 /min and reaches
		// 100-120 in distress. (High-frequency ventilator rates are a
		// device setting, not LOINC 9279-1.)
		limits: plausibility{unit: "/min", lo: 0, hi: 150}},
	{name: ConceptSystolicBP, vital: VitalSystolicBP, vitalUnit: "mm[Hg]", codes: []conceptCode{
		{code: "8480-6", unit: "mm[Hg]"},  // Systolic blood pressure
		{code: "8459-0", unit: "mm[Hg]"},  // Systolic blood pressure--sitting
		{code: "8460-8", unit: "mm[Hg]"},  // Systolic blood pressure--standing
		{code: "8461-6", unit: "mm[Hg]"},  // Systolic blood pressure--supine
		{code: "76534-7", unit: "mm[Hg]"}, // Systolic blood pressure by Noninvasive
		{code: "76215-3", unit: "mm[Hg]"}, // Invasive Systolic blood pressure
	},
		// 0: an arterial line reads about 0 in cardiac arrest. 500
		// mm[Hg]: above the highest intra-arterial systolic pressure
		// measured in a person, 480 mm[Hg] (heavy leg press, MacDougall et
		// al., J Appl Physiol 1985;58:785).
		limits: plausibility{unit: "mm[Hg]", lo: 0, hi: 500}},
	// Diastolic pressure feeds no NEWS2 parameter (NEWS2 scores systolic
	// only), but a hypertensive emergency is defined on either (ACC/AHA
	// 2017 guideline: systolic > 180 and/or diastolic > 120 mm[Hg]).
	{name: ConceptDiastolicBP, vital: NumVitals, codes: []conceptCode{
		{code: "8462-4", unit: "mm[Hg]"},  // Diastolic blood pressure
		{code: "8453-3", unit: "mm[Hg]"},  // Diastolic blood pressure--sitting
		{code: "8454-1", unit: "mm[Hg]"},  // Diastolic blood pressure--standing
		{code: "8455-8", unit: "mm[Hg]"},  // Diastolic blood pressure--supine
		{code: "76535-4", unit: "mm[Hg]"}, // Diastolic blood pressure by Noninvasive
		{code: "76213-8", unit: "mm[Hg]"}, // Invasive Diastolic blood pressure
	},
		// 0: an arterial line in cardiac arrest. 400 mm[Hg]: above the
		// 350 mm[Hg] diastolic measured intra-arterially with the
		// 480 mm[Hg] systolic of the leg-press study cited above.
		limits: plausibility{unit: "mm[Hg]", lo: 0, hi: 400}},
}

// loincCode is what the concept table says of one LOINC code.
type loincCode struct {
	concept *concept
	conceptCode
}

// loincCodes indexes the concept table by code. Read-only.
var loincCodes = func() map[string]loincCode {
	m := make(map[string]loincCode)
	for i := range concepts {
		for _, cc := range concepts[i].codes {
			if _, dup := m[cc.code]; dup {
				panic("alerts: LOINC code " + cc.code + " in two concepts")
			}
			m[cc.code] = loincCode{concept: &concepts[i], conceptCode: cc}
		}
	}
	return m
}()

// lookupConcept is the concept named name.
func lookupConcept(name string) (*concept, bool) {
	for i := range concepts {
		if concepts[i].name == name {
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
		s += concepts[i].name
	}
	return s
}

// Code systems are sent by URI or, from HL7 v2 and CDA sources, by OID
// (HL7's terminology registry: LOINC 2.16.840.1.113883.6.1, SNOMED CT
// 2.16.840.1.113883.6.96, UCUM 2.16.840.1.113883.6.8). Both name the same
// system; an OID left unrecognised would make a LOINC coding match nothing.
const (
	loincOID  = "urn:oid:2.16.840.1.113883.6.1"
	snomedOID = "urn:oid:2.16.840.1.113883.6.96"
	ucumOID   = "urn:oid:2.16.840.1.113883.6.8"
)

// canonicalSystem is the URI of a code system sent by its OID, else s.
func canonicalSystem(s string) string {
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
