package alerts

import (
	"strings"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
)

// TestPlausibility: values outside physiological limits are error records
// (invalid, naming the code and the limits, never the value), not alerts;
// the published extremes the limits come from (rules/concepts.go) still alert.
// Base readings are those of the HL7 FHIR R4 vital-signs examples
// (http://hl7.org/fhir/R4/observation-examples.html): heart-rate 44 /min,
// respiratory-rate 26 /min, satO2 95 %, body-temperature 36.5 Cel,
// blood-pressure 107/60 mm[Hg]; the glucose one is
// observation-example-f001-glucose (6.3 mmol/L, LOINC 15074-8).
func TestPlausibility(t *testing.T) {
	quantity := func(code string, v float64, unit string, status string) []byte {
		return observationJSON(t, func(o map[string]any) {
			o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": code}}}
			o["valueQuantity"] = map[string]any{"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
			if status != "" {
				o["status"] = status
			}
		})
	}
	bp := func(systolic float64) []byte {
		return observationJSON(t, func(o map[string]any) {
			delete(o, "valueQuantity")
			o["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "85354-9"}}}
			o["component"] = []any{
				map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8480-6"}}},
					"valueQuantity": map[string]any{"value": systolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
				map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8462-4"}}},
					"valueQuantity": map[string]any{"value": 60, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
			}
		})
	}
	tests := []struct {
		name  string
		value []byte
		// limit is what the error must say; "" for a plausible value.
		limit string
	}{
		{name: "negative heart rate (heart-rate example, sign lost)", value: quantity("8867-4", -44, "/min", ""), limit: "8867-4 has a value outside the physiological limits 0 to 600 /min"},
		{name: "heart rate above the highest published (600, Chhabra 2012)", value: quantity("8867-4", 601, "/min", ""), limit: "0 to 600 /min"},
		{name: "heart rate 0 is asystole, plausible", value: quantity("8867-4", 0, "/min", "")},
		{name: "SpO2 above 100 % (satO2 example)", value: quantity("59408-5", 101, "%", ""), limit: "59408-5 has a value outside the physiological limits 0 to 100 %"},
		{name: "SpO2 percentage sent as a fraction unit", value: quantity("2708-6", 95, "1", ""), limit: "0 to 100 %"},
		{name: "SpO2 fraction in unit 1 is plausible", value: quantity("2708-6", 0.95, "1", "")},
		{name: "body temperature 5 Cel (body-temperature example)", value: quantity("8310-5", 5, "Cel", ""), limit: "8310-5 has a value outside the physiological limits 10 to 47 Cel"},
		{name: "Fahrenheit value labelled Cel", value: quantity("8331-1", 98.6, "Cel", ""), limit: "10 to 47 Cel"},
		{name: "Fahrenheit value in degF is plausible", value: quantity("8331-1", 98.6, "[degF]", "")},
		{name: "lowest survived 13.7 Cel (Gilbert 2000) is plausible", value: quantity("8310-5", 13.7, "Cel", "")},
		{name: "highest survived 46.5 Cel is plausible", value: quantity("8310-5", 46.5, "Cel", "")},
		{name: "respiratory rate 151 (respiratory-rate example)", value: quantity("9279-1", 151, "/min", ""), limit: "9279-1 has a value outside the physiological limits 0 to 150 /min"},
		{name: "systolic 510 in a blood-pressure panel component", value: bp(510), limit: "8480-6 has a value outside the physiological limits 0 to 500 mm[Hg]"},
		{name: "systolic 480 (MacDougall 1985) is plausible", value: bp(480)},
		{name: "glucose above 3000 mg/dL", value: quantity("2345-7", 3001, "mg/dL", ""), limit: "2345-7 has a value outside the physiological limits 0 to 3000 mg/dL"},
		{name: "glucose in mmol/L above the limit (f001-glucose example)", value: quantity("15074-8", 170, "mmol/L", ""), limit: "15074-8 has a value outside the physiological limits 0 to 3000 mg/dL"},
		{name: "glucose 147.6 mmol/L (highest survived) is plausible", value: quantity("15074-8", 147.6, "mmol/L", "")},
		{name: "negative glucose", value: quantity("2339-0", -1, "mg/dL", ""), limit: "0 to 3000 mg/dL"},
		{name: "implausible value entered in error still retracts", value: quantity("8867-4", -44, "/min", "entered-in-error")},
		{name: "preliminary implausible value is rejected", value: quantity("8867-4", 9999, "/min", "preliminary"), limit: "0 to 600 /min"},
	}
	p := newProcessor(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.handle(obsRecord(tt.value), nil, nil)
			if tt.limit == "" {
				if err != nil {
					t.Fatalf("plausible value rejected: %v", err)
				}
				return
			}
			if got := errorType(err); got != pipeline.TypeInvalid {
				t.Fatalf("error type %q (%v), want %q", got, err, pipeline.TypeInvalid)
			}
			if !strings.Contains(err.Error(), tt.limit) {
				t.Errorf("error %q does not say %q", err, tt.limit)
			}
			for _, v := range []string{"-44", "601", "101", "95", "98.6", "151", "510", "3001", "170", "9999"} {
				if strings.Contains(err.Error(), " "+v+" ") || strings.HasSuffix(err.Error(), " "+v) {
					if !strings.Contains(tt.limit, v) {
						t.Errorf("error %q quotes the value", err)
					}
				}
			}
		})
	}
}
