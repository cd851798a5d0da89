package alerts

import (
	"math"
	"strconv"
)

// NEWS2 scoring follows Chart 1 ("The NEWS scoring system") of the Royal
// College of Physicians, National Early Warning Score (NEWS) 2:
// Standardising the assessment of acute-illness severity in the NHS, updated
// report of a working party, London: RCP, 2017.
//
// The chart's bands are integer ranges (respiratory rate 9–11, temperature
// 35.1–36.0) with gaps between them that a measured decimal can fall into.
// Each band here is kept by its upper bound only, so a value in a gap joins
// the band above it: 36.05 °C scores as 36.1 does, and 8.5 breaths per
// minute as 9 does. That is the reading that never scores a value lower than
// both of its chart neighbours would allow.

// Vital is one NEWS2 parameter.
type Vital uint8

const (
	VitalRespiratoryRate    Vital = iota // breaths per minute
	VitalSpO2                            // %
	VitalSupplementalOxygen              // 1 on oxygen, 0 on air
	VitalSystolicBP                      // mm[Hg]
	VitalPulse                           // beats per minute
	VitalConsciousness                   // 0 alert; 1 new confusion, voice, pain or unresponsive (CVPU)
	VitalTemperature                     // degrees Celsius
	NumVitals                            // the number of vitals
)

// vitalNames are the vitals' names in alert records, indexed by Vital.
// Read-only.
var vitalNames = [NumVitals]string{
	VitalRespiratoryRate:    "respiratoryRate",
	VitalSpO2:               "spo2",
	VitalSupplementalOxygen: "supplementalOxygen",
	VitalSystolicBP:         "systolicBP",
	VitalPulse:              "pulse",
	VitalConsciousness:      "consciousness",
	VitalTemperature:        "temperature",
}

// String is the vital's name in alert records: "respiratoryRate", "spo2",
// "supplementalOxygen", "systolicBP", "pulse", "consciousness", "temperature".
// A value outside the vitals is "Vital(n)", so that a bad index is visible
// in a record rather than an empty string.
func (v Vital) String() string {
	if v < NumVitals {
		return vitalNames[v]
	}
	return "Vital(" + strconv.Itoa(int(v)) + ")"
}

// band is one row of a chart parameter: values up to and including upTo
// score score. A table's rows ascend and its last row is open-ended (+Inf),
// so every value that is not NaN has a row.
type band struct {
	upTo  float64
	score int
}

// The chart's tables. Read-only.
var (
	respiratoryRateBands = [...]band{{8, 3}, {11, 1}, {20, 0}, {24, 2}, {math.Inf(1), 3}}
	spo2Scale1Bands      = [...]band{{91, 3}, {93, 2}, {95, 1}, {math.Inf(1), 0}}
	// Scale 2 is for patients with a prescribed target of 88–92% (hypercapnic
	// respiratory failure): above 92% is only a concern while oxygen is
	// pushing it there, so the air table stops scoring at 88%.
	spo2Scale2AirBands    = [...]band{{83, 3}, {85, 2}, {87, 1}, {math.Inf(1), 0}}
	spo2Scale2OxygenBands = [...]band{{83, 3}, {85, 2}, {87, 1}, {92, 0}, {94, 1}, {96, 2}, {math.Inf(1), 3}}
	systolicBPBands       = [...]band{{90, 3}, {100, 2}, {110, 1}, {219, 0}, {math.Inf(1), 3}}
	pulseBands            = [...]band{{40, 3}, {50, 1}, {90, 0}, {110, 1}, {130, 2}, {math.Inf(1), 3}}
	temperatureBands      = [...]band{{35.0, 3}, {36.0, 1}, {38.0, 0}, {39.0, 1}, {math.Inf(1), 2}}
)

// The chart scores of the two yes/no parameters.
const (
	supplementalOxygenScore = 2
	consciousnessCVPUScore  = 3
)

func bandScore(bands []band, value float64) int {
	for _, b := range bands {
		if value <= b.upTo {
			return b.score
		}
	}
	// Unreachable for the tables above: the last row is +Inf and NaN is
	// turned away before any table is consulted.
	return 0
}

// ScoreVital is the NEWS2 sub-score (0..3) of one parameter's value.
// scale is the SpO2 scale, 1 or 2 (anything else is scale 1); onOxygen
// matters only to SpO2 on scale 2.
//
// A NaN value, or a Vital outside the vitals, scores 0: NaN is not a
// measurement, and scoring it as one would place it in whichever band the
// comparisons happen to fall through to.
func ScoreVital(v Vital, value float64, scale int, onOxygen bool) int {
	if math.IsNaN(value) {
		return 0
	}
	switch v {
	case VitalRespiratoryRate:
		return bandScore(respiratoryRateBands[:], value)
	case VitalSpO2:
		switch {
		case scale != 2:
			return bandScore(spo2Scale1Bands[:], value)
		case onOxygen:
			return bandScore(spo2Scale2OxygenBands[:], value)
		default:
			return bandScore(spo2Scale2AirBands[:], value)
		}
	case VitalSupplementalOxygen:
		if value != 0 {
			return supplementalOxygenScore
		}
		return 0
	case VitalSystolicBP:
		return bandScore(systolicBPBands[:], value)
	case VitalPulse:
		return bandScore(pulseBands[:], value)
	case VitalConsciousness:
		if value != 0 {
			return consciousnessCVPUScore
		}
		return 0
	case VitalTemperature:
		return bandScore(temperatureBands[:], value)
	}
	return 0
}

// NEWS2 is a NEWS2 computation over the vitals present.
type NEWS2 struct {
	Total   int            // aggregate of the present vitals' scores
	Scores  [NumVitals]int // per vital; 0 when absent
	Present [NumVitals]bool
	// MaxSingle is the highest single sub-score.
	MaxSingle int
}

// ScoreNEWS2 scores the vitals marked present. Absent vitals score 0 and
// stay marked absent: a missing parameter can only raise the true score,
// so the total is a lower bound. The SpO2 scale-2 oxygen rule uses the
// supplemental-oxygen vital when present (absent counts as air).
//
// A vital marked present with a NaN value is treated as absent and comes
// back marked absent, for the reason ScoreVital gives: reporting it present
// would claim a score that no measurement supports.
func ScoreNEWS2(values [NumVitals]float64, present [NumVitals]bool, scale int) NEWS2 {
	var n NEWS2
	for v := range NumVitals {
		n.Present[v] = present[v] && !math.IsNaN(values[v])
	}
	onOxygen := n.Present[VitalSupplementalOxygen] && values[VitalSupplementalOxygen] != 0
	for v := range NumVitals {
		if !n.Present[v] {
			continue
		}
		s := ScoreVital(v, values[v], scale, onOxygen)
		n.Scores[v] = s
		n.Total += s
		n.MaxSingle = max(n.MaxSingle, s)
	}
	return n
}
