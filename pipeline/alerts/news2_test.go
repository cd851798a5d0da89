package alerts

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// The expected scores below are copied from RCP NEWS2 (2017) Chart 1, not
// derived from the band tables: every band edge of every parameter on both
// sides, plus decimals that fall in the gaps between the chart's bands.
// A gap value expects the higher of its two neighbours' chart scores (the
// package's rule, news2.go): marked "gap" with both neighbours' scores.
func TestScoreVital(t *testing.T) {
	const (
		air = false
		o2  = true
	)
	tests := []struct {
		v        vital
		value    float64
		scale    int
		onOxygen bool
		want     int
	}{
		// Respiratory rate: ≤8 3, 9–11 1, 12–20 0, 21–24 2, ≥25 3.
		{vitalRespiratoryRate, 0, 1, air, 3},
		{vitalRespiratoryRate, 8, 1, air, 3},
		{vitalRespiratoryRate, 8.5, 1, air, 3}, // gap: ≤8 3, 9–11 1
		{vitalRespiratoryRate, 9, 1, air, 1},
		{vitalRespiratoryRate, 11, 1, air, 1},
		{vitalRespiratoryRate, 11.5, 1, air, 1}, // gap: 9–11 1, 12–20 0
		{vitalRespiratoryRate, 12, 1, air, 0},
		{vitalRespiratoryRate, 20, 1, air, 0},
		{vitalRespiratoryRate, 20.5, 1, air, 2}, // gap: 12–20 0, 21–24 2
		{vitalRespiratoryRate, 21, 1, air, 2},
		{vitalRespiratoryRate, 24, 1, air, 2},
		{vitalRespiratoryRate, 24.5, 1, air, 3}, // gap: 21–24 2, ≥25 3
		{vitalRespiratoryRate, 25, 1, air, 3},
		{vitalRespiratoryRate, 60, 1, air, 3},

		// SpO2 scale 1: ≤91 3, 92–93 2, 94–95 1, ≥96 0. Oxygen does not
		// change scale 1.
		{vitalSpO2, 50, 1, air, 3},
		{vitalSpO2, 91, 1, air, 3},
		{vitalSpO2, 91.5, 1, air, 3}, // gap: ≤91 3, 92–93 2
		{vitalSpO2, 93.5, 1, air, 2}, // gap: 92–93 2, 94–95 1
		{vitalSpO2, 92, 1, air, 2},
		{vitalSpO2, 93, 1, air, 2},
		{vitalSpO2, 94, 1, air, 1},
		{vitalSpO2, 95, 1, air, 1},
		{vitalSpO2, 95.5, 1, air, 1}, // gap: 94–95 1, ≥96 0
		{vitalSpO2, 96, 1, air, 0},
		{vitalSpO2, 100, 1, air, 0},
		{vitalSpO2, 97, 1, o2, 0},
		{vitalSpO2, 91, 1, o2, 3},
		// A scale other than 2 is scale 1.
		{vitalSpO2, 93, 0, air, 2},
		{vitalSpO2, 97, 3, o2, 0},
		{vitalSpO2, 95, -1, air, 1},

		// SpO2 scale 2: ≤83 3, 84–85 2, 86–87 1, 88–92 0, ≥93 on air 0;
		// on oxygen 93–94 1, 95–96 2, ≥97 3.
		{vitalSpO2, 70, 2, air, 3},
		{vitalSpO2, 83, 2, air, 3},
		{vitalSpO2, 83.5, 2, air, 3}, // gap: ≤83 3, 84–85 2
		{vitalSpO2, 84, 2, air, 2},
		{vitalSpO2, 85, 2, air, 2},
		{vitalSpO2, 86, 2, air, 1},
		{vitalSpO2, 87, 2, air, 1},
		{vitalSpO2, 85.5, 2, air, 2}, // gap: 84–85 2, 86–87 1
		{vitalSpO2, 87.5, 2, air, 1}, // gap: 86–87 1, 88–92 0
		{vitalSpO2, 88, 2, air, 0},
		{vitalSpO2, 92, 2, air, 0},
		{vitalSpO2, 92.5, 2, air, 0}, // no gap on air: ≥88 0
		{vitalSpO2, 93, 2, air, 0},
		{vitalSpO2, 94, 2, air, 0},
		{vitalSpO2, 95, 2, air, 0},
		{vitalSpO2, 96, 2, air, 0},
		{vitalSpO2, 97, 2, air, 0},
		{vitalSpO2, 100, 2, air, 0},
		{vitalSpO2, 83, 2, o2, 3},
		{vitalSpO2, 84, 2, o2, 2},
		{vitalSpO2, 85, 2, o2, 2},
		{vitalSpO2, 86, 2, o2, 1},
		{vitalSpO2, 87, 2, o2, 1},
		{vitalSpO2, 88, 2, o2, 0},
		{vitalSpO2, 92, 2, o2, 0},
		{vitalSpO2, 92.5, 2, o2, 1}, // gap: 88–92 0, 93–94 1
		{vitalSpO2, 93, 2, o2, 1},
		{vitalSpO2, 94, 2, o2, 1},
		{vitalSpO2, 94.5, 2, o2, 2}, // gap: 93–94 1, 95–96 2
		{vitalSpO2, 95, 2, o2, 2},
		{vitalSpO2, 96, 2, o2, 2},
		{vitalSpO2, 96.5, 2, o2, 3}, // gap: 95–96 2, ≥97 3
		{vitalSpO2, 87.5, 2, o2, 1}, // gap: 86–87 1, 88–92 0
		{vitalSpO2, 97, 2, o2, 3},
		{vitalSpO2, 100, 2, o2, 3},

		// Supplemental oxygen: oxygen 2, air 0.
		{vitalSupplementalOxygen, 0, 1, air, 0},
		{vitalSupplementalOxygen, 1, 1, air, 2},
		{vitalSupplementalOxygen, 1, 2, air, 2},

		// Systolic BP: ≤90 3, 91–100 2, 101–110 1, 111–219 0, ≥220 3.
		{vitalSystolicBP, 60, 1, air, 3},
		{vitalSystolicBP, 90, 1, air, 3},
		{vitalSystolicBP, 90.5, 1, air, 3}, // gap: ≤90 3, 91–100 2
		{vitalSystolicBP, 91, 1, air, 2},
		{vitalSystolicBP, 100, 1, air, 2},
		{vitalSystolicBP, 101, 1, air, 1},
		{vitalSystolicBP, 110, 1, air, 1},
		{vitalSystolicBP, 100.5, 1, air, 2}, // gap: 91–100 2, 101–110 1
		{vitalSystolicBP, 110.5, 1, air, 1}, // gap: 101–110 1, 111–219 0
		{vitalSystolicBP, 111, 1, air, 0},
		{vitalSystolicBP, 219, 1, air, 0},
		{vitalSystolicBP, 219.5, 1, air, 3}, // gap: 111–219 0, ≥220 3
		{vitalSystolicBP, 220, 1, air, 3},

		// Pulse: ≤40 3, 41–50 1, 51–90 0, 91–110 1, 111–130 2, ≥131 3.
		{vitalPulse, 30, 1, air, 3},
		{vitalPulse, 40, 1, air, 3},
		{vitalPulse, 40.5, 1, air, 3}, // gap: ≤40 3, 41–50 1
		{vitalPulse, 41, 1, air, 1},
		{vitalPulse, 50, 1, air, 1},
		{vitalPulse, 50.5, 1, air, 1}, // gap: 41–50 1, 51–90 0
		{vitalPulse, 51, 1, air, 0},
		{vitalPulse, 90, 1, air, 0},
		{vitalPulse, 90.5, 1, air, 1}, // gap: 51–90 0, 91–110 1
		{vitalPulse, 91, 1, air, 1},
		{vitalPulse, 110, 1, air, 1},
		{vitalPulse, 110.5, 1, air, 2}, // gap: 91–110 1, 111–130 2
		{vitalPulse, 111, 1, air, 2},
		{vitalPulse, 130, 1, air, 2},
		{vitalPulse, 130.5, 1, air, 3}, // gap: 111–130 2, ≥131 3
		{vitalPulse, 131, 1, air, 3},

		// Consciousness: alert 0, new confusion/voice/pain/unresponsive 3.
		{vitalConsciousness, 0, 1, air, 0},
		{vitalConsciousness, 1, 1, air, 3},

		// Temperature: ≤35.0 3, 35.1–36.0 1, 36.1–38.0 0, 38.1–39.0 1,
		// ≥39.1 2.
		{vitalTemperature, 33, 1, air, 3},
		{vitalTemperature, 35.0, 1, air, 3},
		{vitalTemperature, 35.05, 1, air, 3}, // gap: ≤35.0 3, 35.1–36.0 1
		{vitalTemperature, 35.1, 1, air, 1},
		{vitalTemperature, 36.0, 1, air, 1},
		{vitalTemperature, 36.05, 1, air, 1}, // gap: 35.1–36.0 1, 36.1–38.0 0
		{vitalTemperature, 36.1, 1, air, 0},
		{vitalTemperature, 38.0, 1, air, 0},
		{vitalTemperature, 38.05, 1, air, 1}, // gap: 36.1–38.0 0, 38.1–39.0 1
		{vitalTemperature, 38.1, 1, air, 1},
		{vitalTemperature, 39.0, 1, air, 1},
		{vitalTemperature, 39.05, 1, air, 2}, // gap: 38.1–39.0 1, ≥39.1 2
		{vitalTemperature, 39.1, 1, air, 2},
		{vitalTemperature, 42, 1, air, 2},

		// Not measurements, or not vitals.
		{vitalRespiratoryRate, math.NaN(), 1, air, 0},
		{vitalSpO2, math.NaN(), 2, o2, 0},
		{vitalSupplementalOxygen, math.NaN(), 1, air, 0},
		{vitalConsciousness, math.NaN(), 1, air, 0},
		{vitalTemperature, math.NaN(), 1, air, 0},
		{vitalPulse, math.Inf(1), 1, air, 3},
		{vitalPulse, math.Inf(-1), 1, air, 3},
		{numVitals, 1000, 1, air, 0},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v=%g/scale%d/oxygen=%t", tt.v, tt.value, tt.scale, tt.onOxygen)
		t.Run(name, func(t *testing.T) {
			if got := scoreVital(tt.v, tt.value, tt.scale, tt.onOxygen); got != tt.want {
				t.Errorf("scoreVital(%v, %v, %d, %t) = %d, want %d", tt.v, tt.value, tt.scale, tt.onOxygen, got, tt.want)
			}
		})
	}
}

func TestScoreNEWS2(t *testing.T) {
	all := [numVitals]bool{true, true, true, true, true, true, true}
	tests := []struct {
		name    string
		values  [numVitals]float64
		present [numVitals]bool
		scale   int
		want    news2Score
	}{
		{
			// Tachypnoeic, tachycardic and febrile on air: a NEWS2 of 7,
			// the RCP's threshold for an emergency response.
			name: "realistic patient totals 7",
			values: [numVitals]float64{
				vitalRespiratoryRate:    22,
				vitalSpO2:               94,
				vitalSupplementalOxygen: 0,
				vitalSystolicBP:         105,
				vitalPulse:              115,
				vitalConsciousness:      0,
				vitalTemperature:        38.5,
			},
			present: all,
			scale:   1,
			want: news2Score{
				Total:     7,
				Scores:    [numVitals]int{2, 1, 0, 1, 2, 0, 1},
				Present:   all,
				MaxSingle: 2,
			},
		},
		{
			name: "all normal totals 0",
			values: [numVitals]float64{
				vitalRespiratoryRate: 16, vitalSpO2: 98, vitalSystolicBP: 120,
				vitalPulse: 70, vitalTemperature: 37,
			},
			present: all,
			scale:   1,
			want:    news2Score{Present: all},
		},
		{
			// Values that would score 3 each are ignored when absent.
			name: "absent vitals score 0 and stay absent",
			values: [numVitals]float64{
				vitalRespiratoryRate:    30,
				vitalSpO2:               80,
				vitalSupplementalOxygen: 1,
				vitalSystolicBP:         80,
				vitalPulse:              95,
				vitalConsciousness:      1,
				vitalTemperature:        34,
			},
			present: [numVitals]bool{vitalPulse: true},
			scale:   1,
			want: news2Score{
				Total:     1,
				Scores:    [numVitals]int{vitalPulse: 1},
				Present:   [numVitals]bool{vitalPulse: true},
				MaxSingle: 1,
			},
		},
		{
			name:    "nothing present",
			values:  [numVitals]float64{vitalRespiratoryRate: 40, vitalConsciousness: 1},
			present: [numVitals]bool{},
			scale:   1,
			want:    news2Score{},
		},
		{
			// One red score (3) among otherwise low scores: MaxSingle is
			// what the chart's "score of 3 in any single parameter" trigger
			// reads, and it is 3 although the total is only 4.
			name: "max single is the highest sub-score",
			values: [numVitals]float64{
				vitalRespiratoryRate: 18, vitalSpO2: 97, vitalSystolicBP: 125,
				vitalPulse: 45, vitalConsciousness: 1, vitalTemperature: 37,
			},
			present: all,
			scale:   1,
			want: news2Score{
				Total:     4,
				Scores:    [numVitals]int{vitalPulse: 1, vitalConsciousness: 3},
				Present:   all,
				MaxSingle: 3,
			},
		},
		{
			name: "scale 2 on oxygen scores high saturation",
			values: [numVitals]float64{
				vitalRespiratoryRate: 16, vitalSpO2: 97, vitalSupplementalOxygen: 1,
				vitalSystolicBP: 120, vitalPulse: 70, vitalTemperature: 37,
			},
			present: all,
			scale:   2,
			want: news2Score{
				Total:     5,
				Scores:    [numVitals]int{vitalSpO2: 3, vitalSupplementalOxygen: 2},
				Present:   all,
				MaxSingle: 3,
			},
		},
		{
			name: "scale 2 on air does not score high saturation",
			values: [numVitals]float64{
				vitalRespiratoryRate: 16, vitalSpO2: 97, vitalSupplementalOxygen: 0,
				vitalSystolicBP: 120, vitalPulse: 70, vitalTemperature: 37,
			},
			present: all,
			scale:   2,
			want:    news2Score{Present: all},
		},
		{
			// Without the oxygen vital there is no evidence of oxygen, so
			// SpO2 is scored as on air even though the value says 1.
			name: "scale 2 with oxygen absent counts as air",
			values: [numVitals]float64{
				vitalSpO2: 95, vitalSupplementalOxygen: 1,
			},
			present: [numVitals]bool{vitalSpO2: true},
			scale:   2,
			want: news2Score{
				Present: [numVitals]bool{vitalSpO2: true},
			},
		},
		{
			name: "scale 1 ignores oxygen for SpO2",
			values: [numVitals]float64{
				vitalSpO2: 97, vitalSupplementalOxygen: 1,
			},
			present: [numVitals]bool{vitalSpO2: true, vitalSupplementalOxygen: true},
			scale:   1,
			want: news2Score{
				Total:     2,
				Scores:    [numVitals]int{vitalSupplementalOxygen: 2},
				Present:   [numVitals]bool{vitalSpO2: true, vitalSupplementalOxygen: true},
				MaxSingle: 2,
			},
		},
		{
			name: "NaN marked present is absent",
			values: [numVitals]float64{
				vitalPulse: math.NaN(), vitalTemperature: 39.5,
			},
			present: [numVitals]bool{vitalPulse: true, vitalTemperature: true},
			scale:   1,
			want: news2Score{
				Total:     2,
				Scores:    [numVitals]int{vitalTemperature: 2},
				Present:   [numVitals]bool{vitalTemperature: true},
				MaxSingle: 2,
			},
		},
		{
			// A NaN oxygen vital is no evidence of oxygen either.
			name: "NaN oxygen counts as air on scale 2",
			values: [numVitals]float64{
				vitalSpO2: 97, vitalSupplementalOxygen: math.NaN(),
			},
			present: [numVitals]bool{vitalSpO2: true, vitalSupplementalOxygen: true},
			scale:   2,
			want: news2Score{
				Present: [numVitals]bool{vitalSpO2: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scoreNEWS2(tt.values, tt.present, tt.scale); got != tt.want {
				t.Errorf("scoreNEWS2(%v, %v, %d) =\n%+v, want\n%+v", tt.values, tt.present, tt.scale, got, tt.want)
			}
		})
	}
}

func TestVitalString(t *testing.T) {
	tests := []struct {
		v    vital
		want string
	}{
		{vitalRespiratoryRate, "respiratoryRate"},
		{vitalSpO2, "spo2"},
		{vitalSupplementalOxygen, "supplementalOxygen"},
		{vitalSystolicBP, "systolicBP"},
		{vitalPulse, "pulse"},
		{vitalConsciousness, "consciousness"},
		{vitalTemperature, "temperature"},
		{numVitals, "Vital(7)"},
		{255, "Vital(255)"},
	}
	if len(tests)-2 != int(numVitals) {
		t.Fatalf("%d named vitals tested, want %d", len(tests)-2, numVitals)
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.v.String(); got != tt.want {
				t.Errorf("Vital(%d).String() = %q, want %q", uint8(tt.v), got, tt.want)
			}
		})
	}
}

// TestNEWS2ConvertedValueAsCharted sends vitals in another UCUM unit through
// the processor and checks the reading it keeps and its Chart 1 score.
// Conversion factors are UCUM's: [degF] is 5/9 K with 0 °F = 255.372 K
// (so °C = (°F − 32) × 5/9); K = Cel + 273.15; /s = 60 /min; "1" = 100 %.
// UCUM defines m[Hg] as 133.3220 kPa, so 1 kPa = 7.50064 mm[Hg]; the
// conversion table uses the conventional 133.322387415 Pa (1 kPa =
// 7.50062 mm[Hg]). The two differ by 3 parts per million (12.0 kPa is
// 90.0077 or 90.0074), which rounding to a whole mm[Hg] absorbs.

// LOINC codes of the vital-signs profile (http://hl7.org/fhir/R4/observation-vitalsigns.html)
// that the chart-precision cases send.
const (
	loincRespiratoryRate = "9279-1"  // Respiratory rate
	loincSpO2            = "59408-5" // Oxygen saturation in Arterial blood by Pulse oximetry
	loincSystolicBP      = "8480-6"  // Systolic blood pressure
	loincTemperature     = "8310-5"  // Body temperature
)

func TestNEWS2ConvertedValueAsCharted(t *testing.T) {
	p := newProcessor(t)
	tests := []struct {
		name      string
		code      string
		value     float64
		unit      string
		vital     vital
		wantValue float64 // as the chart records it
		wantScore int     // RCP NEWS2 Chart 1
	}{
		// 100.4 °F = 38.0 °C exactly; ConvertUnit makes it
		// 38.00000000000001, which the band table alone puts in the gap
		// above 38.0. Chart 1: 36.1–38.0 scores 0.
		{"100.4 [degF] is 38.0 Cel", loincTemperature, 100.4, "[degF]", vitalTemperature, 38.0, 0},
		// 95.2 °F = 35.111… °C, charted 35.1: 35.1–36.0 scores 1.
		{"95.2 [degF] is 35.1 Cel", loincTemperature, 95.2, "[degF]", vitalTemperature, 35.1, 1},
		// 102.2 °F = 39.0 °C: 38.1–39.0 scores 1.
		{"102.2 [degF] is 39.0 Cel", loincTemperature, 102.2, "[degF]", vitalTemperature, 39.0, 1},
		// 309.25 K = 36.1 °C, converted as 36.10000000000002: 36.1–38.0
		// scores 0.
		{"309.25 K is 36.1 Cel", loincTemperature, 309.25, "K", vitalTemperature, 36.1, 0},
		// 12.0 kPa = 90.0075 mm[Hg]: charted 90, and ≤90 scores 3 (the
		// band table alone put it in the gap above 90, scoring 2).
		{"12.0 kPa is 90 mm[Hg]", loincSystolicBP, 12.0, "kPa", vitalSystolicBP, 90, 3},
		// 14.7 kPa = 110.26 mm[Hg]: charted 110, 101–110 scores 1.
		{"14.7 kPa is 110 mm[Hg]", loincSystolicBP, 14.7, "kPa", vitalSystolicBP, 110, 1},
		// 0.15 /s = 9 /min: 9–11 scores 1.
		{"0.15 /s is 9 /min", loincRespiratoryRate, 0.15, "/s", vitalRespiratoryRate, 9, 1},
		// 0.955 = 95.5 %, charted 96: ≥96 scores 0 on scale 1.
		{"0.955 (1) is 96 %", loincSpO2, 0.955, "1", vitalSpO2, 96, 0},
		// In the chart's own unit nothing is rounded: 38.04 °C lies between
		// 36.1–38.0 (0) and 38.1–39.0 (1) and takes the more severe, 1.
		{"38.04 Cel as sent is in a gap", loincTemperature, 38.04, "Cel", vitalTemperature, 38.04, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.handle(obsRecord(vitalObservation(t, "c1", tt.code, tt.value, tt.unit, 0)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := readState(out.State)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Vitals) != 1 || st.Vitals[0].Vital != tt.vital || st.Vitals[0].Value != tt.wantValue {
				t.Fatalf("kept %+v, want %v = %v", st.Vitals, tt.vital, tt.wantValue)
			}
			if got := scoreVital(tt.vital, st.Vitals[0].Value, 1, false); got != tt.wantScore {
				t.Errorf("score %d, want %d", got, tt.wantScore)
			}
		})
	}
}

// TestNEWS2UnitRoundTrip is a property: a value as the chart records it
// (whole units; temperature to 0.1 °C), sent in any other unit the package
// accepts for its parameter, is kept as that value and scores as it does.
// The units come from the conversion table, so one added there is covered.
func TestNEWS2UnitRoundTrip(t *testing.T) {
	// Plausible and implausible readings alike, in steps of the chart's
	// precision (tenths for temperature).
	ranges := map[vital][2]int{
		vitalRespiratoryRate: {0, 90},
		vitalSpO2:            {40, 100},
		vitalSystolicBP:      {30, 320},
		vitalPulse:           {0, 300},
		vitalTemperature:     {250, 460},
	}
	p := newProcessor(t)
	tested := map[vital]bool{}
	for _, code := range slices.Sorted(maps.Keys(loincCodes)) {
		lc := loincCodes[code]
		if lc.concept.vital == numVitals {
			continue
		}
		nv := struct {
			vital vital
			unit  string
		}{lc.concept.vital, lc.concept.vitalUnit}
		for _, other := range rules.Units() {
			if _, ok := rules.ConvertUnit(1, nv.unit, other, code); other == nv.unit || !ok {
				continue
			}
			tested[nv.vital] = true
			t.Run(code+"/"+other, func(t *testing.T) {
				r := ranges[nv.vital]
				rapid.Check(t, func(rt *rapid.T) {
					charted := float64(rapid.IntRange(r[0], r[1]).Draw(rt, "charted"))
					if nv.vital == vitalTemperature {
						charted /= 10
					}
					sent, ok := rules.ConvertUnit(charted, nv.unit, other, code)
					if !ok {
						rt.Fatalf("%s does not convert to %s", nv.unit, other)
					}
					out, err := p.handle(obsRecord(vitalObservation(t, "rt", code, sent, other, 0)), nil, nil)
					if err != nil {
						rt.Fatal(err)
					}
					st, err := readState(out.State)
					if err != nil || len(st.Vitals) != 1 {
						rt.Fatalf("state %+v, %v", st.Vitals, err)
					}
					if kept := st.Vitals[0].Value; kept != charted {
						rt.Errorf("%v %s sent as %v %s kept as %v", charted, nv.unit, sent, other, kept)
					}
					for _, scale := range []int{1, 2} {
						for _, o2 := range []bool{false, true} {
							want := scoreVital(nv.vital, charted, scale, o2)
							if got := scoreVital(nv.vital, st.Vitals[0].Value, scale, o2); got != want {
								rt.Errorf("%v %s via %s scores %d (scale %d, oxygen %t), want %d", charted, nv.unit, other, got, scale, o2, want)
							}
						}
					}
				})
			})
		}
	}
	// Every parameter the brief names has more than one unit today; fail
	// loudly if the table loses one, rather than test nothing.
	for _, v := range []vital{vitalRespiratoryRate, vitalSpO2, vitalSystolicBP, vitalPulse, vitalTemperature} {
		if !tested[v] {
			t.Errorf("%v: no second unit to round-trip through", v)
		}
	}
}

func TestChartValue(t *testing.T) {
	tests := []struct {
		v     vital
		value float64
		want  float64
	}{
		// RCP NEWS2 Chart 1 records temperature to 0.1 °C and every other
		// parameter in whole units.
		{vitalTemperature, 38.00000000000001, 38.0},
		{vitalTemperature, 36.10000000000002, 36.1},
		{vitalTemperature, 35.111111111111114, 35.1},
		{vitalTemperature, 39.05000001, 39.1},
		{vitalSystolicBP, 90.007401924, 90},
		{vitalSystolicBP, 100.50826548180001, 101},
		{vitalSpO2, 95.49, 95},
		{vitalRespiratoryRate, 8.6, 9},
		{vitalPulse, 130.4, 130},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v=%v", tt.v, tt.value), func(t *testing.T) {
			if got := chartValue(tt.v, tt.value); got != tt.want {
				t.Errorf("chartValue(%v, %v) = %v, want %v", tt.v, tt.value, got, tt.want)
			}
		})
	}
}

// TestNEWS2Response: RCP NEWS2 (2017), Chart 2 and its clinical response
// table: low = aggregate 1–4, low–medium = a single parameter scoring 3,
// medium = aggregate 5–6, high = aggregate 7 or more.
func TestNEWS2Response(t *testing.T) {
	cfg := rules.DefaultNEWS2()
	tests := []struct {
		name             string
		total, maxSingle int
		want             responseLevel
	}{
		{"nothing scores", 0, 0, responseNone},
		{"aggregate 1", 1, 1, responseLow},
		{"aggregate 4 of ones and twos", 4, 2, responseLow},
		{"a single 3", 3, 3, responseLowMedium},
		{"aggregate 4 with a 3", 4, 3, responseLowMedium},
		{"aggregate 5", 5, 2, responseMedium},
		{"aggregate 6 with a 3", 6, 3, responseMedium},
		{"aggregate 7", 7, 2, responseHigh},
		{"aggregate 20", 20, 3, responseHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := news2Response(&cfg, tt.total, tt.maxSingle); got != tt.want {
				t.Errorf("response(%d, %d) = %d, want %d", tt.total, tt.maxSingle, got, tt.want)
			}
		})
	}
}
