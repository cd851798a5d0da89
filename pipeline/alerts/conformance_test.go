package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// conformanceCase is one entry of testdata/conformance/concepts.yaml; the
// file's header says what each field means and cites the sources.
type conformanceCase struct {
	Name     string `yaml:"name"`
	Source   string `yaml:"source"`
	System   string `yaml:"system"`
	Code     string `yaml:"code"`
	Quantity *struct {
		Value  float64 `yaml:"value"`
		Code   string  `yaml:"code"`
		System string  `yaml:"system"`
	} `yaml:"quantity"`
	Integer *int64   `yaml:"integer"`
	Fires   []string `yaml:"fires"`
	NEWS2   string   `yaml:"news2"`
	Error   string   `yaml:"error"`
}

// observationJSON is the case as a bare FHIR Observation.
func (c *conformanceCase) observationJSON(t *testing.T) []byte {
	t.Helper()
	system := c.System
	if system == "" {
		system = rules.LOINC
	}
	o := map[string]any{
		"resourceType": "Observation", "id": "conf-1", "status": "final",
		"code":    map[string]any{"coding": []any{map[string]any{"system": system, "code": c.Code}}},
		"subject": map[string]any{"reference": "Patient/pat-1"},
	}
	switch {
	case c.Quantity != nil:
		q := map[string]any{"value": c.Quantity.Value}
		if c.Quantity.Code != "" {
			q["code"], q["system"] = c.Quantity.Code, rules.UCUM
			if c.Quantity.System != "" {
				q["system"] = c.Quantity.System
			}
		}
		o["valueQuantity"] = q
	case c.Integer != nil:
		o["valueInteger"] = *c.Integer
	default:
		t.Fatal("case has neither quantity nor integer")
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "conformance", "concepts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []conformanceCase
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	rs, err := newRuleSet(rules.Default())
	if err != nil {
		t.Fatal(err)
	}
	// Every code of the concept table has a case: a code added without one
	// is a code nobody checked.
	covered := make(map[string]bool)
	for _, c := range cases {
		covered[c.Code] = true
	}
	for code := range loincCodes {
		if !covered[code] {
			t.Errorf("concept code %s has no conformance case", code)
		}
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Source == "" {
				t.Fatal("case cites no source")
			}
			var obs observation
			if _, err := decodeObservation(c.observationJSON(t), &obs, nil); err != nil {
				t.Fatal(err)
			}
			var f findings
			err := rs.evaluate(&obs, &f)
			if c.Error != "" {
				if errorType(err) != pipeline.TypeInvalid || !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("error %v, want an invalid record saying %q", err, c.Error)
				}
				// The message names the code, never the patient's value.
				if c.Quantity != nil && strings.Contains(err.Error(), strconv.FormatFloat(c.Quantity.Value, 'g', -1, 64)) ||
					c.Integer != nil && strings.Contains(err.Error(), strconv.FormatInt(*c.Integer, 10)) {
					t.Errorf("error %q quotes the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var fired []string
			for _, fr := range f.firings {
				fired = append(fired, fr.rule.ID)
				// DESIGN.md's alert record: rule is the LOINC code that fired.
				if fr.rule.Code != c.Code {
					t.Errorf("rule %s records code %s, want %s", fr.rule.ID, fr.rule.Code, c.Code)
				}
			}
			if !slices.Equal(fired, c.Fires) {
				t.Errorf("fired %v, want %v", fired, c.Fires)
			}
			var vitals []string
			for _, v := range f.vitals {
				vitals = append(vitals, v.vital.String())
			}
			var want []string
			if c.NEWS2 != "" {
				want = []string{c.NEWS2}
			}
			if !slices.Equal(vitals, want) {
				t.Errorf("NEWS2 parameters %v, want %v", vitals, want)
			}
		})
	}
}
