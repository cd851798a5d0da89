package alerts

import (
	"fmt"
	"math"
	"testing"
)

// The expected scores below are copied from RCP NEWS2 (2017) Chart 1, not
// derived from the band tables: every band edge of every parameter on both
// sides, plus decimals that fall in the gaps between the chart's integer
// bands.
func TestScoreVital(t *testing.T) {
	const (
		air = false
		o2  = true
	)
	tests := []struct {
		v        Vital
		value    float64
		scale    int
		onOxygen bool
		want     int
	}{
		// Respiratory rate: ≤8 3, 9–11 1, 12–20 0, 21–24 2, ≥25 3.
		{VitalRespiratoryRate, 0, 1, air, 3},
		{VitalRespiratoryRate, 8, 1, air, 3},
		{VitalRespiratoryRate, 8.5, 1, air, 1},
		{VitalRespiratoryRate, 9, 1, air, 1},
		{VitalRespiratoryRate, 11, 1, air, 1},
		{VitalRespiratoryRate, 11.5, 1, air, 0},
		{VitalRespiratoryRate, 12, 1, air, 0},
		{VitalRespiratoryRate, 20, 1, air, 0},
		{VitalRespiratoryRate, 20.5, 1, air, 2},
		{VitalRespiratoryRate, 21, 1, air, 2},
		{VitalRespiratoryRate, 24, 1, air, 2},
		{VitalRespiratoryRate, 24.5, 1, air, 3},
		{VitalRespiratoryRate, 25, 1, air, 3},
		{VitalRespiratoryRate, 60, 1, air, 3},

		// SpO2 scale 1: ≤91 3, 92–93 2, 94–95 1, ≥96 0. Oxygen does not
		// change scale 1.
		{VitalSpO2, 50, 1, air, 3},
		{VitalSpO2, 91, 1, air, 3},
		{VitalSpO2, 91.5, 1, air, 2},
		{VitalSpO2, 92, 1, air, 2},
		{VitalSpO2, 93, 1, air, 2},
		{VitalSpO2, 94, 1, air, 1},
		{VitalSpO2, 95, 1, air, 1},
		{VitalSpO2, 95.5, 1, air, 0},
		{VitalSpO2, 96, 1, air, 0},
		{VitalSpO2, 100, 1, air, 0},
		{VitalSpO2, 97, 1, o2, 0},
		{VitalSpO2, 91, 1, o2, 3},
		// A scale other than 2 is scale 1.
		{VitalSpO2, 93, 0, air, 2},
		{VitalSpO2, 97, 3, o2, 0},
		{VitalSpO2, 95, -1, air, 1},

		// SpO2 scale 2: ≤83 3, 84–85 2, 86–87 1, 88–92 0, ≥93 on air 0;
		// on oxygen 93–94 1, 95–96 2, ≥97 3.
		{VitalSpO2, 70, 2, air, 3},
		{VitalSpO2, 83, 2, air, 3},
		{VitalSpO2, 83.5, 2, air, 2},
		{VitalSpO2, 84, 2, air, 2},
		{VitalSpO2, 85, 2, air, 2},
		{VitalSpO2, 86, 2, air, 1},
		{VitalSpO2, 87, 2, air, 1},
		{VitalSpO2, 87.5, 2, air, 0},
		{VitalSpO2, 88, 2, air, 0},
		{VitalSpO2, 92, 2, air, 0},
		{VitalSpO2, 92.5, 2, air, 0},
		{VitalSpO2, 93, 2, air, 0},
		{VitalSpO2, 94, 2, air, 0},
		{VitalSpO2, 95, 2, air, 0},
		{VitalSpO2, 96, 2, air, 0},
		{VitalSpO2, 97, 2, air, 0},
		{VitalSpO2, 100, 2, air, 0},
		{VitalSpO2, 83, 2, o2, 3},
		{VitalSpO2, 84, 2, o2, 2},
		{VitalSpO2, 85, 2, o2, 2},
		{VitalSpO2, 86, 2, o2, 1},
		{VitalSpO2, 87, 2, o2, 1},
		{VitalSpO2, 88, 2, o2, 0},
		{VitalSpO2, 92, 2, o2, 0},
		{VitalSpO2, 92.5, 2, o2, 1},
		{VitalSpO2, 93, 2, o2, 1},
		{VitalSpO2, 94, 2, o2, 1},
		{VitalSpO2, 94.5, 2, o2, 2},
		{VitalSpO2, 95, 2, o2, 2},
		{VitalSpO2, 96, 2, o2, 2},
		{VitalSpO2, 96.5, 2, o2, 3},
		{VitalSpO2, 97, 2, o2, 3},
		{VitalSpO2, 100, 2, o2, 3},

		// Supplemental oxygen: oxygen 2, air 0.
		{VitalSupplementalOxygen, 0, 1, air, 0},
		{VitalSupplementalOxygen, 1, 1, air, 2},
		{VitalSupplementalOxygen, 1, 2, air, 2},

		// Systolic BP: ≤90 3, 91–100 2, 101–110 1, 111–219 0, ≥220 3.
		{VitalSystolicBP, 60, 1, air, 3},
		{VitalSystolicBP, 90, 1, air, 3},
		{VitalSystolicBP, 90.5, 1, air, 2},
		{VitalSystolicBP, 91, 1, air, 2},
		{VitalSystolicBP, 100, 1, air, 2},
		{VitalSystolicBP, 101, 1, air, 1},
		{VitalSystolicBP, 110, 1, air, 1},
		{VitalSystolicBP, 110.5, 1, air, 0},
		{VitalSystolicBP, 111, 1, air, 0},
		{VitalSystolicBP, 219, 1, air, 0},
		{VitalSystolicBP, 219.5, 1, air, 3},
		{VitalSystolicBP, 220, 1, air, 3},

		// Pulse: ≤40 3, 41–50 1, 51–90 0, 91–110 1, 111–130 2, ≥131 3.
		{VitalPulse, 30, 1, air, 3},
		{VitalPulse, 40, 1, air, 3},
		{VitalPulse, 40.5, 1, air, 1},
		{VitalPulse, 41, 1, air, 1},
		{VitalPulse, 50, 1, air, 1},
		{VitalPulse, 51, 1, air, 0},
		{VitalPulse, 90, 1, air, 0},
		{VitalPulse, 90.5, 1, air, 1},
		{VitalPulse, 91, 1, air, 1},
		{VitalPulse, 110, 1, air, 1},
		{VitalPulse, 111, 1, air, 2},
		{VitalPulse, 130, 1, air, 2},
		{VitalPulse, 130.5, 1, air, 3},
		{VitalPulse, 131, 1, air, 3},

		// Consciousness: alert 0, new confusion/voice/pain/unresponsive 3.
		{VitalConsciousness, 0, 1, air, 0},
		{VitalConsciousness, 1, 1, air, 3},

		// Temperature: ≤35.0 3, 35.1–36.0 1, 36.1–38.0 0, 38.1–39.0 1,
		// ≥39.1 2.
		{VitalTemperature, 33, 1, air, 3},
		{VitalTemperature, 35.0, 1, air, 3},
		{VitalTemperature, 35.05, 1, air, 1},
		{VitalTemperature, 35.1, 1, air, 1},
		{VitalTemperature, 36.0, 1, air, 1},
		{VitalTemperature, 36.05, 1, air, 0},
		{VitalTemperature, 36.1, 1, air, 0},
		{VitalTemperature, 38.0, 1, air, 0},
		{VitalTemperature, 38.05, 1, air, 1},
		{VitalTemperature, 38.1, 1, air, 1},
		{VitalTemperature, 39.0, 1, air, 1},
		{VitalTemperature, 39.05, 1, air, 2},
		{VitalTemperature, 39.1, 1, air, 2},
		{VitalTemperature, 42, 1, air, 2},

		// Not measurements, or not vitals.
		{VitalRespiratoryRate, math.NaN(), 1, air, 0},
		{VitalSpO2, math.NaN(), 2, o2, 0},
		{VitalSupplementalOxygen, math.NaN(), 1, air, 0},
		{VitalConsciousness, math.NaN(), 1, air, 0},
		{VitalTemperature, math.NaN(), 1, air, 0},
		{VitalPulse, math.Inf(1), 1, air, 3},
		{VitalPulse, math.Inf(-1), 1, air, 3},
		{NumVitals, 1000, 1, air, 0},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v=%g/scale%d/oxygen=%t", tt.v, tt.value, tt.scale, tt.onOxygen)
		t.Run(name, func(t *testing.T) {
			if got := ScoreVital(tt.v, tt.value, tt.scale, tt.onOxygen); got != tt.want {
				t.Errorf("ScoreVital(%v, %v, %d, %t) = %d, want %d", tt.v, tt.value, tt.scale, tt.onOxygen, got, tt.want)
			}
		})
	}
}

func TestScoreNEWS2(t *testing.T) {
	all := [NumVitals]bool{true, true, true, true, true, true, true}
	tests := []struct {
		name    string
		values  [NumVitals]float64
		present [NumVitals]bool
		scale   int
		want    NEWS2
	}{
		{
			// Tachypnoeic, tachycardic and febrile on air: a NEWS2 of 7,
			// the RCP's threshold for an emergency response.
			name: "realistic patient totals 7",
			values: [NumVitals]float64{
				VitalRespiratoryRate:    22,
				VitalSpO2:               94,
				VitalSupplementalOxygen: 0,
				VitalSystolicBP:         105,
				VitalPulse:              115,
				VitalConsciousness:      0,
				VitalTemperature:        38.5,
			},
			present: all,
			scale:   1,
			want: NEWS2{
				Total:     7,
				Scores:    [NumVitals]int{2, 1, 0, 1, 2, 0, 1},
				Present:   all,
				MaxSingle: 2,
			},
		},
		{
			name: "all normal totals 0",
			values: [NumVitals]float64{
				VitalRespiratoryRate: 16, VitalSpO2: 98, VitalSystolicBP: 120,
				VitalPulse: 70, VitalTemperature: 37,
			},
			present: all,
			scale:   1,
			want:    NEWS2{Present: all},
		},
		{
			// Values that would score 3 each are ignored when absent.
			name: "absent vitals score 0 and stay absent",
			values: [NumVitals]float64{
				VitalRespiratoryRate:    30,
				VitalSpO2:               80,
				VitalSupplementalOxygen: 1,
				VitalSystolicBP:         80,
				VitalPulse:              95,
				VitalConsciousness:      1,
				VitalTemperature:        34,
			},
			present: [NumVitals]bool{VitalPulse: true},
			scale:   1,
			want: NEWS2{
				Total:     1,
				Scores:    [NumVitals]int{VitalPulse: 1},
				Present:   [NumVitals]bool{VitalPulse: true},
				MaxSingle: 1,
			},
		},
		{
			name:    "nothing present",
			values:  [NumVitals]float64{VitalRespiratoryRate: 40, VitalConsciousness: 1},
			present: [NumVitals]bool{},
			scale:   1,
			want:    NEWS2{},
		},
		{
			// One red score (3) among otherwise low scores: MaxSingle is
			// what the chart's "score of 3 in any single parameter" trigger
			// reads, and it is 3 although the total is only 4.
			name: "max single is the highest sub-score",
			values: [NumVitals]float64{
				VitalRespiratoryRate: 18, VitalSpO2: 97, VitalSystolicBP: 125,
				VitalPulse: 45, VitalConsciousness: 1, VitalTemperature: 37,
			},
			present: all,
			scale:   1,
			want: NEWS2{
				Total:     4,
				Scores:    [NumVitals]int{VitalPulse: 1, VitalConsciousness: 3},
				Present:   all,
				MaxSingle: 3,
			},
		},
		{
			name: "scale 2 on oxygen scores high saturation",
			values: [NumVitals]float64{
				VitalRespiratoryRate: 16, VitalSpO2: 97, VitalSupplementalOxygen: 1,
				VitalSystolicBP: 120, VitalPulse: 70, VitalTemperature: 37,
			},
			present: all,
			scale:   2,
			want: NEWS2{
				Total:     5,
				Scores:    [NumVitals]int{VitalSpO2: 3, VitalSupplementalOxygen: 2},
				Present:   all,
				MaxSingle: 3,
			},
		},
		{
			name: "scale 2 on air does not score high saturation",
			values: [NumVitals]float64{
				VitalRespiratoryRate: 16, VitalSpO2: 97, VitalSupplementalOxygen: 0,
				VitalSystolicBP: 120, VitalPulse: 70, VitalTemperature: 37,
			},
			present: all,
			scale:   2,
			want:    NEWS2{Present: all},
		},
		{
			// Without the oxygen vital there is no evidence of oxygen, so
			// SpO2 is scored as on air even though the value says 1.
			name: "scale 2 with oxygen absent counts as air",
			values: [NumVitals]float64{
				VitalSpO2: 95, VitalSupplementalOxygen: 1,
			},
			present: [NumVitals]bool{VitalSpO2: true},
			scale:   2,
			want: NEWS2{
				Present: [NumVitals]bool{VitalSpO2: true},
			},
		},
		{
			name: "scale 1 ignores oxygen for SpO2",
			values: [NumVitals]float64{
				VitalSpO2: 97, VitalSupplementalOxygen: 1,
			},
			present: [NumVitals]bool{VitalSpO2: true, VitalSupplementalOxygen: true},
			scale:   1,
			want: NEWS2{
				Total:     2,
				Scores:    [NumVitals]int{VitalSupplementalOxygen: 2},
				Present:   [NumVitals]bool{VitalSpO2: true, VitalSupplementalOxygen: true},
				MaxSingle: 2,
			},
		},
		{
			name: "NaN marked present is absent",
			values: [NumVitals]float64{
				VitalPulse: math.NaN(), VitalTemperature: 39.5,
			},
			present: [NumVitals]bool{VitalPulse: true, VitalTemperature: true},
			scale:   1,
			want: NEWS2{
				Total:     2,
				Scores:    [NumVitals]int{VitalTemperature: 2},
				Present:   [NumVitals]bool{VitalTemperature: true},
				MaxSingle: 2,
			},
		},
		{
			// A NaN oxygen vital is no evidence of oxygen either.
			name: "NaN oxygen counts as air on scale 2",
			values: [NumVitals]float64{
				VitalSpO2: 97, VitalSupplementalOxygen: math.NaN(),
			},
			present: [NumVitals]bool{VitalSpO2: true, VitalSupplementalOxygen: true},
			scale:   2,
			want: NEWS2{
				Present: [NumVitals]bool{VitalSpO2: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScoreNEWS2(tt.values, tt.present, tt.scale); got != tt.want {
				t.Errorf("ScoreNEWS2(%v, %v, %d) =\n%+v, want\n%+v", tt.values, tt.present, tt.scale, got, tt.want)
			}
		})
	}
}

func TestVitalString(t *testing.T) {
	tests := []struct {
		v    Vital
		want string
	}{
		{VitalRespiratoryRate, "respiratoryRate"},
		{VitalSpO2, "spo2"},
		{VitalSupplementalOxygen, "supplementalOxygen"},
		{VitalSystolicBP, "systolicBP"},
		{VitalPulse, "pulse"},
		{VitalConsciousness, "consciousness"},
		{VitalTemperature, "temperature"},
		{NumVitals, "Vital(7)"},
		{255, "Vital(255)"},
	}
	if len(tests)-2 != int(NumVitals) {
		t.Fatalf("%d named vitals tested, want %d", len(tests)-2, NumVitals)
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.v.String(); got != tt.want {
				t.Errorf("Vital(%d).String() = %q, want %q", uint8(tt.v), got, tt.want)
			}
		})
	}
}
