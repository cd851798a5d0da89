package alerts

import (
	"errors"
	"strings"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/jsontext"
)

// TestDuplicateMemberIsDecodeError: an object with two members of one name
// that the decoder reads is an undecodable record. RFC 8259 §4: names
// SHOULD be unique, and "when the names within an object are not unique,
// the behavior of software that receives such an object is
// unpredictable" (some readers take the first member, encoding/json the
// last); FHIR's JSON format (http://hl7.org/fhir/R4/json.html) requires
// unique names. Each case is the bare or enveloped heart-rate fixture with
// one member repeated; where the two differ, another consumer reading the
// first member would see another observation than carepipe.
func TestDuplicateMemberIsDecodeError(t *testing.T) {
	bare := string(readTestdata(t, "observation_hr_normal_bare.json"))
	env := string(readTestdata(t, "observation_hr_envelope.json"))
	// inject puts extra right after the first occurrence of at in doc.
	inject := func(doc, at, extra string) []byte {
		t.Helper()
		i := strings.Index(doc, at)
		if i < 0 {
			t.Fatalf("fixture lacks %q", at)
		}
		return []byte(doc[:i+len(at)] + extra + doc[i+len(at):])
	}
	tests := []struct {
		name  string
		value []byte
		dup   bool
	}{
		{name: "valueQuantity.value twice (72, then 180)", value: inject(bare, `"value":72,`, `"value":180,`), dup: true},
		{name: "valueQuantity twice", value: inject(bare, `{"resourceType":"Observation",`, `"valueQuantity":{"value":180,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},`), dup: true},
		{name: "subject.reference twice (another patient)", value: inject(bare, `"subject":{`, `"reference":"Patient/pat-9",`), dup: true},
		{name: "subject twice", value: inject(bare, `{"resourceType":"Observation",`, `"subject":{"reference":"Patient/pat-9"},`), dup: true},
		{name: "status twice (entered-in-error, then final)", value: inject(bare, `{"resourceType":"Observation",`, `"status":"entered-in-error",`), dup: true},
		{name: "id twice", value: inject(bare, `{"resourceType":"Observation",`, `"id":"obs-other",`), dup: true},
		{name: "resourceType twice", value: inject(bare, `{`, `"resourceType":"Patient",`), dup: true},
		{name: "coding code twice", value: inject(bare, `"code":{"coding":[{`, `"code":"8310-5",`), dup: true},
		{name: "coding system twice", value: inject(bare, `"code":{"coding":[{`, `"system":"http://snomed.info/sct",`), dup: true},
		{name: "valueQuantity.code twice", value: inject(bare, `"valueQuantity":{`, `"code":"/s",`), dup: true},
		{name: "effectiveDateTime twice", value: inject(bare, `"subject":`, `{"reference":"Patient/pat-1"},"effectiveDateTime":"2020-01-01T00:00:00Z","subject":`), dup: true},
		{name: "valueString twice", value: inject(strings.Replace(bare, `"valueQuantity"`, `"valueString":"a","valueString"`, 1), `{`, ``), dup: true},
		{name: "envelope payload twice", value: []byte(`{"payload":` + bare + `,` + env[1:]), dup: true},
		{name: "envelope metadata timestamp twice", value: inject(env, `"metadata": {`, `"timestamp": "2020-01-01T00:00:00Z",`), dup: true},
		// Not duplicates: one name in two objects, and names the decoder
		// skips (whatever member of them a reader takes, carepipe reads
		// none, so they are not checked).
		{name: "code in code and in valueQuantity is no duplicate", value: []byte(bare)},
		{name: "a skipped member twice is not checked", value: inject(bare, `{`, `"note":[{"text":"a"}],"note":[{"text":"b"}],`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var obs observation
			_, err := decodeObservation(tt.value, &obs, nil)
			if !tt.dup {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if got := errorType(err); got != pipeline.TypeDecode {
				t.Fatalf("error type %q (%v), want %q", got, err, pipeline.TypeDecode)
			}
			if !errors.Is(err, jsontext.ErrDuplicate) || !strings.Contains(err.Error(), "duplicate member name") {
				t.Errorf("error %q is not a duplicate member error", err)
			}
			if strings.Contains(err.Error(), "pat-") || strings.Contains(err.Error(), "obs-") {
				t.Errorf("error %q quotes the record", err)
			}
		})
	}
}
