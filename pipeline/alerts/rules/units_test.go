package rules

import (
	"maps"
	"math"
	"slices"
	"testing"
)

// unitApprox reports whether got is within rel of want, relative to want.
// A want of zero must be met exactly, so no case expects zero.
func unitApprox(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestConvertUnit(t *testing.T) {
	// Expected values are written out, not derived with the formula under
	// test, so a wrong factor or a wrong direction fails here.
	tests := []struct {
		name     string
		value    float64
		from, to string
		code     string
		want     float64
		rel      float64 // 0 means 1e-9
		wantOK   bool
	}{
		{name: "glucose mmol/L to mg/dL", value: 5.5, from: "mmol/L", to: "mg/dL", code: "2339-0", want: 99.088, wantOK: true},
		{name: "glucose mg/dL to mmol/L", value: 99.088, from: "mg/dL", to: "mmol/L", code: "2339-0", want: 5.5, wantOK: true},
		{name: "glucose umol/L to mg/dL", value: 5500, from: "umol/L", to: "mg/dL", code: "2345-7", want: 99.088, wantOK: true},
		{name: "glucose g/L to mmol/L", value: 0.99088, from: "g/L", to: "mmol/L", code: "15074-8", want: 5.5, wantOK: true},
		{name: "creatinine has no molar factor", value: 88.4, from: "mmol/L", to: "mg/dL", code: "2160-0"},
		{name: "creatinine has no mass factor", value: 1, from: "mg/dL", to: "umol/L", code: "2160-0"},
		{name: "no code has no molar factor", value: 5.5, from: "mmol/L", to: "mg/dL"},
		{name: "molar factor bridges concentrations only", value: 5.5, from: "mmol/L", to: "kg", code: "2339-0"},
		{name: "molar factor does not bridge temperature", value: 37, from: "Cel", to: "mmol/L", code: "2339-0"},
		{name: "molar to molar needs no code", value: 5.5, from: "mmol/L", to: "umol/L", want: 5500, wantOK: true},

		{name: "Cel to degF", value: 39.5, from: "Cel", to: "[degF]", want: 103.1, wantOK: true},
		{name: "degF to Cel", value: 98.6, from: "[degF]", to: "Cel", want: 37, wantOK: true},
		{name: "K to Cel", value: 310.15, from: "K", to: "Cel", want: 37, wantOK: true},
		{name: "Cel to K", value: 37, from: "Cel", to: "K", want: 310.15, wantOK: true},
		{name: "degF to K", value: 98.6, from: "[degF]", to: "K", want: 310.15, wantOK: true},
		{name: "freezing degF to K", value: 32, from: "[degF]", to: "K", want: 273.15, wantOK: true},
		{name: "below zero Cel to degF", value: -40, from: "Cel", to: "[degF]", want: -40, wantOK: true},

		{name: "lb to kg", value: 154, from: "[lb_av]", to: "kg", want: 69.85322498, rel: 1e-6, wantOK: true},
		{name: "kg to g", value: 1, from: "kg", to: "g", want: 1000, wantOK: true},
		{name: "oz to lb", value: 16, from: "[oz_av]", to: "[lb_av]", want: 1, wantOK: true},
		{name: "cm to m", value: 180, from: "cm", to: "m", want: 1.8, wantOK: true},
		{name: "in to ft", value: 12, from: "[in_i]", to: "[ft_i]", want: 1, wantOK: true},
		{name: "ft to mm", value: 6, from: "[ft_i]", to: "mm", want: 1828.8, wantOK: true},

		// 13.3322 kPa is 100 mm[Hg] to the five figures it is given in;
		// the exact product pins the factor.
		{name: "kPa to mmHg", value: 13.3322, from: "kPa", to: "mm[Hg]", want: 99.9997236609294, wantOK: true},
		{name: "kPa to mmHg roughly", value: 13.3322, from: "kPa", to: "mm[Hg]", want: 100, rel: 1e-5, wantOK: true},
		{name: "mmHg to kPa", value: 120, from: "mm[Hg]", to: "kPa", want: 15.998684210615255, wantOK: true},

		{name: "fraction to percent", value: 0.97, from: "1", to: "%", want: 97, wantOK: true},
		{name: "percent to fraction", value: 97, from: "%", to: "1", want: 0.97, wantOK: true},

		{name: "beats annotation is per minute", value: 72, from: "{beats}/min", to: "/min", want: 72, wantOK: true},
		{name: "breath to breaths", value: 16, from: "{breath}/min", to: "{breaths}/min", want: 16, wantOK: true},
		{name: "per second to per minute", value: 1, from: "/s", to: "/min", want: 60, wantOK: true},
		{name: "per minute to per second", value: 90, from: "{beat}/min", to: "/s", want: 1.5, wantOK: true},

		{name: "g/dL to mg/dL", value: 2, from: "g/dL", to: "mg/dL", want: 2000, wantOK: true},
		{name: "mg/L to mg/dL", value: 50, from: "mg/L", to: "mg/dL", want: 5, wantOK: true},
		{name: "L/min to mL/min", value: 2, from: "L/min", to: "mL/min", want: 2000, wantOK: true},

		{name: "different dimensions", value: 70, from: "kg", to: "Cel"},
		{name: "score to percent", value: 3, from: "{score}", to: "%"},
		{name: "unknown from", value: 1, from: "foo", to: "mg/dL"},
		{name: "unknown to", value: 1, from: "mg/dL", to: "foo"},
		{name: "wrong case is unknown", value: 100, from: "mg/dl", to: "mg/dL"},
		{name: "unknown to itself", value: 42.5, from: "foo", to: "foo", want: 42.5, wantOK: true},
		{name: "score to itself", value: 3, from: "{score}", to: "{score}", want: 3, wantOK: true},
		{name: "empty unit to itself", value: 7, from: "", to: "", want: 7, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ConvertUnit(tt.value, tt.from, tt.to, tt.code)
			if ok != tt.wantOK {
				t.Fatalf("ConvertUnit(%v, %q, %q, %q) ok = %v, want %v", tt.value, tt.from, tt.to, tt.code, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			rel := tt.rel
			if rel == 0 {
				rel = 1e-9
			}
			if !unitApprox(got, tt.want, rel) {
				t.Errorf("ConvertUnit(%v, %q, %q, %q) = %v, want %v (rel %g)", tt.value, tt.from, tt.to, tt.code, got, tt.want, rel)
			}
		})
	}
}

func TestConvertUnitGlucoseCodes(t *testing.T) {
	// Every glucose code converts, whichever property it names: a rule on
	// the mass code may meet an observation in mmol/L and the other way.
	for _, code := range []string{"2339-0", "2345-7", "41653-7", "15074-8", "14749-6", "14743-9", "2341-6", "1558-6"} {
		t.Run(code, func(t *testing.T) {
			got, ok := ConvertUnit(10, "mmol/L", "mg/dL", code)
			if !ok || !unitApprox(got, 180.16, 1e-9) {
				t.Errorf("10 mmol/L = %v mg/dL (ok %v), want 180.16", got, ok)
			}
			got, ok = ConvertUnit(180.16, "mg/dL", "mmol/L", code)
			if !ok || !unitApprox(got, 10, 1e-9) {
				t.Errorf("180.16 mg/dL = %v mmol/L (ok %v), want 10", got, ok)
			}
		})
	}
}

func TestKnownUnit(t *testing.T) {
	// Written out so that a unit added to or dropped from the table is a
	// decision this test has to be told about.
	known := []string{
		"Cel", "[degF]", "K",
		"kg", "g", "[lb_av]", "[oz_av]",
		"m", "cm", "mm", "[in_i]", "[ft_i]",
		"mm[Hg]", "kPa",
		"/min", "{beats}/min", "{beat}/min", "{breaths}/min", "{breath}/min", "/s",
		"%", "1",
		"mg/dL", "g/L", "mg/L", "g/dL",
		"mmol/L", "umol/L",
		"L/min", "mL/min",
		"{score}",
	}
	for _, u := range known {
		if !KnownUnit(u) {
			t.Errorf("KnownUnit(%q) = false, want true", u)
		}
	}
	if got := slices.Sorted(maps.Keys(ucumUnits)); !slices.Equal(got, slices.Sorted(slices.Values(known))) {
		t.Errorf("table units %q, want %q", got, slices.Sorted(slices.Values(known)))
	}
	// Near misses: the table never guesses at case, spacing or annotations.
	for _, u := range []string{
		"", "mg/dl", "MG/DL", "cel", "degF", "[degf]", "kpa", "mmHg", "mm[hg]",
		"beats/min", "{Beats}/min", "{bpm}/min", "bpm", " mg/dL", "mg/dL ", "mmol/l", "kg/m2", "foo",
	} {
		if KnownUnit(u) {
			t.Errorf("KnownUnit(%q) = true, want false", u)
		}
	}
}

func TestUnitTableRoundTrip(t *testing.T) {
	// The base of each dimension, stated here independently of the table.
	bases := map[unitDimension]string{
		dimTemperature:        "Cel",
		dimMass:               "kg",
		dimLength:             "m",
		dimPressure:           "mm[Hg]",
		dimFrequency:          "/min",
		dimFraction:           "%",
		dimMassConcentration:  "mg/dL",
		dimMolarConcentration: "mmol/L",
		dimFlow:               "L/min",
		dimScore:              "{score}",
	}
	for _, base := range bases {
		if e := ucumUnits[base]; e.scale != 1 || e.offset != 0 {
			t.Errorf("base %q maps to its base as %+v, want scale 1 offset 0", base, e)
		}
	}
	for _, u := range slices.Sorted(maps.Keys(ucumUnits)) {
		t.Run(u, func(t *testing.T) {
			if !KnownUnit(u) {
				t.Errorf("KnownUnit(%q) = false for a table unit", u)
			}
			base, ok := bases[ucumUnits[u].dim]
			if !ok {
				t.Fatalf("unit %q has dimension %d with no base", u, ucumUnits[u].dim)
			}
			for _, v := range []float64{37.5, -12.25, 1e6} {
				b, ok := ConvertUnit(v, u, base, "")
				if !ok {
					t.Fatalf("ConvertUnit(%v, %q, %q) not ok", v, u, base)
				}
				back, ok := ConvertUnit(b, base, u, "")
				if !ok {
					t.Fatalf("ConvertUnit(%v, %q, %q) not ok", b, base, u)
				}
				if !unitApprox(back, v, 1e-9) {
					t.Errorf("%v %s -> %v %s -> %v %s", v, u, b, base, back, u)
				}
			}
		})
	}
}
