package datasync

import "strings"

// genderCodes is the table from a source's administrative gender code to
// the canonical set, FHIR's AdministrativeGender (male, female, other,
// unknown; http://hl7.org/fhir/R4/valueset-administrative-gender.html).
// Codes are matched after trimming, ignoring case: sources write "m", "M"
// and "Male" alike.
//
//	source code                         canonical  ground
//	male, female, other, unknown        the same   FHIR AdministrativeGender
//	F (Female)                          female     HL7 v2 table 0001; V2-to-FHIR IG
//	M (Male)                            male       HL7 v2 table 0001; V2-to-FHIR IG
//	O (Other)                           other      HL7 v2 table 0001; V2-to-FHIR IG
//	U (Unknown)                         unknown    HL7 v2 table 0001; V2-to-FHIR IG
//	A (Ambiguous)                       other      V2-to-FHIR IG; FHIR cm-administrative-gender-v2
//	N (Not applicable)                  other      V2-to-FHIR IG
//	X (Non-binary, v2.9)                other      FHIR's definition of "other"
//
// The HL7 V2-to-FHIR implementation guide's ConceptMap
// table-hl70001-to-administrative-gender gives the v2 rows; FHIR R4's
// ConceptMap cm-administrative-gender-v2 maps "other" to both A and O
// ("broader than"), so both come back as "other". X was added to table 0001
// after that map (HL7 Terminology, CodeSystem v2-0001): it is "a value other
// than male, female or unknown", FHIR's own definition of "other". N is the
// IG's choice, not "unknown": "not applicable" is a statement about the
// person, "unknown" says no one knows.
//
// A code not in the table is kept as written (trimmed, lower-cased), not
// turned into "unknown": "unknown" would assert something the source did not
// say and, under last-writer-wins, overwrite a gender held from another
// source. The validation stage rejects it with the value set in its reason,
// and the change lands on the error topic whole, to be replayed once the
// table knows the code. The same holds for every other coded field (status,
// class): the mapping normalises, validation judges.
var genderCodes = map[string]string{
	"male": "male", "female": "female", "other": "other", "unknown": "unknown",
	"f": "female", "m": "male", "o": "other", "u": "unknown",
	"a": "other", "n": "other", "x": "other",
}

// canonicalGender is the canonical code of a source's gender code; a code
// not in [genderCodes] comes back trimmed and lower-cased, for validation to
// reject.
func canonicalGender(code string) string {
	c := strings.ToLower(strings.TrimSpace(code))
	if g, ok := genderCodes[c]; ok {
		return g
	}
	return c
}
