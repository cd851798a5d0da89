package datasync

import (
	"encoding/json"
	"testing"
)

// TestGenderCodes maps every code of HL7 v2 table 0001 and of FHIR's
// AdministrativeGender to the canonical set, through Map, as a source
// writes them (a "sex" or "gender" column, any case). Each row cites its
// source.
func TestGenderCodes(t *testing.T) {
	const (
		// HL7 Terminology, CodeSystem v2-0001 (administrativeSex),
		// https://terminology.hl7.org/CodeSystem-v2-0001.html: F, M, O, U,
		// A, N, and X (Non-Binary).
		tho = "HL7 v2 table 0001 (terminology.hl7.org CodeSystem-v2-0001)"
		// HL7 Version 2 to FHIR IG, ConceptMap
		// table-hl70001-to-administrative-gender,
		// http://hl7.org/fhir/uv/v2mappings/2024Jan/ConceptMap-table-hl70001-to-administrative-gender.html:
		// F->female, M->male, O->other, U->unknown, A->other, N->other.
		v2fhir = "V2-to-FHIR IG ConceptMap table-hl70001-to-administrative-gender"
		// FHIR R4 ConceptMap cm-administrative-gender-v2,
		// http://hl7.org/fhir/R4/cm-administrative-gender-v2.html: male=M,
		// female=F, other broader than A and O, unknown=U.
		cm = "FHIR R4 ConceptMap cm-administrative-gender-v2"
		// http://hl7.org/fhir/R4/valueset-administrative-gender.html: male,
		// female, other ("a value other than male or female"), unknown.
		fhir = "FHIR R4 ValueSet administrative-gender"
	)
	for _, tc := range []struct {
		code, want, source string
	}{
		{"F", "female", v2fhir + "; " + cm},
		{"M", "male", v2fhir + "; " + cm},
		{"O", "other", v2fhir + "; " + cm},
		{"U", "unknown", v2fhir + "; " + cm},
		{"A", "other", v2fhir + "; " + cm},
		{"N", "other", v2fhir},
		// Added to table 0001 after the IG's map: FHIR's "other" by its
		// definition.
		{"X", "other", tho + "; " + fhir},
		{"male", "male", fhir},
		{"female", "female", fhir},
		{"other", "other", fhir},
		{"unknown", "unknown", fhir},
		// Sources write codes in any case, with stray spaces.
		{" f ", "female", v2fhir},
		{"Male", "male", fhir},
		{"UNKNOWN", "unknown", fhir},
	} {
		t.Run(tc.code, func(t *testing.T) {
			for _, col := range []string{"gender", "sex"} {
				v, _ := json.Marshal(map[string]string{"id": "p1", col: tc.code})
				m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Value: v})
				if err != nil {
					t.Fatal(err)
				}
				if got := string(m.Change.Fields["gender"]); got != `"`+tc.want+`"` {
					t.Errorf("%s %q: gender %s, want %q (%s)", col, tc.code, got, tc.want, tc.source)
				}
			}
		})
	}
}

// A code in no table is kept as written, lower-cased, for validation to
// reject with the value set in its reason; it never becomes "unknown".
func TestGenderUnknownCodeIsRejectedByValidation(t *testing.T) {
	m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.patient", Value: []byte(`{"id":"p1","firstName":"Ann","dob":"1970-01-02","sex":"Q","lastUpdated":1700000000000}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Change.Fields["gender"]); got != `"q"` {
		t.Fatalf("gender %s, want the code as written, lower-cased", got)
	}
	problems := validateChange(&m.Change)
	if len(problems) != 1 || problems[0] != "gender must be one of male, female, other, unknown" {
		t.Fatalf("validation: %q", problems)
	}
}
