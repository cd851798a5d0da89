package alerts

import (
	"slices"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

func TestRuleSetFires(t *testing.T) {
	pack := rules.Seed()
	pack.Rules = append(pack.Rules,
		rules.Rule{ID: "hr-watch", Code: "8867-4", System: rules.LOINC, Unit: "/min", Comparator: rules.GE, Threshold: 100, Severity: rules.SeverityMedium, Description: "HR watch"},
		rules.Rule{ID: "hr-local", Code: "HR", System: "http://hospital.org/codes", Unit: "/min", Comparator: rules.GT, Threshold: 120, Severity: rules.SeverityLow, Description: "local HR"},
		rules.Rule{ID: "glucose-zero", Code: "2339-0", System: rules.LOINC, Unit: "mg/dL", Comparator: rules.EQ, Threshold: 0, Severity: rules.SeverityCritical, Description: "zero glucose"},
		rules.Rule{ID: "panel-systolic", Code: "85354-9", System: rules.LOINC, Component: "8480-6", Unit: "mm[Hg]", Comparator: rules.GE, Threshold: 160, Severity: rules.SeverityMedium, Description: "panel systolic"},
	)
	rs, err := newRuleSet(pack)
	if err != nil {
		t.Fatal(err)
	}
	loinc := func(code string) coding { return coding{System: rules.LOINC, Code: code} }
	value := func(v float64, unit string, codings ...coding) measurement {
		return measurement{Codings: codings, HasValue: true, Value: v, Unit: unit}
	}
	obs := func(own measurement, comps ...measurement) *observation {
		return &observation{ID: "o", Status: "final", PatientID: "p", measurement: own, Components: comps}
	}
	panel := func(sys float64) *observation {
		return obs(measurement{Codings: []coding{loinc("85354-9")}},
			value(sys, "mm[Hg]", loinc("8480-6")), value(80, "mm[Hg]", loinc("8462-4")))
	}
	tests := []struct {
		name string
		obs  *observation
		want []string
	}{
		{"no rule for code", obs(value(500, "", loinc("1234-5"))), nil},
		{"heart rate normal", obs(value(72, "/min", loinc("8867-4"))), nil},
		{"heart rate at threshold", obs(value(120, "/min", loinc("8867-4"))), []string{"hr-watch"}},
		{"heart rate high fires both, rule order", obs(value(130, "/min", loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"annotated unit is the same unit", obs(value(130, "{beats}/min", loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"system mismatch", obs(value(130, "", coding{System: rules.SNOMED, Code: "8867-4"})), nil},
		{"no system", obs(value(130, "", coding{Code: "8867-4"})), nil},
		{"match on a later coding", obs(value(130, "/min", coding{System: rules.SNOMED, Code: "364075005"}, loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"codings matching different rules merge in rule order", obs(value(130, "/min", coding{System: "http://hospital.org/codes", Code: "HR"}, loinc("8867-4"))), []string{"heart-rate-high", "hr-watch", "hr-local"}},
		{"same coding twice fires once", obs(value(130, "/min", loinc("8867-4"), loinc("8867-4"))), []string{"heart-rate-high", "hr-watch"}},
		{"zero is a value", obs(value(0, "mg/dL", loinc("2339-0"))), []string{"glucose-low", "glucose-zero"}},
		{"glucose at threshold", obs(value(70, "mg/dL", loinc("2339-0"))), nil},
		{"glucose in mmol/L converted", obs(value(3.5, "mmol/L", loinc("2339-0"))), []string{"glucose-low"}},
		{"glucose in mmol/L above", obs(value(5.5, "mmol/L", loinc("2339-0"))), nil},
		{"systolic above", obs(value(180.5, "mm[Hg]", loinc("8480-6"))), []string{"systolic-bp-high"}},
		{"systolic in kPa", obs(value(25, "kPa", loinc("8480-6"))), []string{"systolic-bp-high"}},
		{"panel component fires the standalone rule and the panel rule", panel(185), []string{"systolic-bp-high", "panel-systolic"}},
		{"panel component below", panel(150), nil},
		{"panel rule needs the panel", obs(value(170, "mm[Hg]", loinc("8480-6"))), nil},
		{"data absent is no value", obs(measurement{Codings: []coding{loinc("8867-4")}, Absent: true}), nil},
		{"absent component is no value", obs(measurement{Codings: []coding{loinc("85354-9")}}, measurement{Codings: []coding{loinc("8480-6")}, Absent: true}), nil},
		{"no codings", obs(value(130, "/min")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f findings
			if err := rs.evaluate(tt.obs, &f); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fr := range f.firings {
				got = append(got, fr.rule.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fired %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("unconvertible unit is an error, not a miss", func(t *testing.T) {
		for _, m := range []measurement{
			value(130, "kg", loinc("8867-4")),
			value(130, "beats/minute", loinc("8867-4")),
			value(130, "http://example.org/units|/min", loinc("8867-4")),
			value(5.5, "mmol/L", loinc("8480-6")),
		} {
			var f findings
			if err := rs.evaluate(obs(m), &f); errorType(err) != pipeline.TypeInvalid {
				t.Errorf("unit %q: error %v, want an invalid record", m.Unit, err)
			}
		}
	})
}
