package alerts

import (
	"math"
	"strconv"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// NEWS2 scoring follows Chart 1 ("The NEWS scoring system") of the Royal
// College of Physicians, National Early Warning Score (NEWS) 2:
// Standardising the assessment of acute-illness severity in the NHS, updated
// report of a working party, London: RCP, 2017.
//
// The chart's bands are ranges at the precision a chart records (whole
// units; temperature to 0.1 °C: respiratory rate 9–11, temperature
// 35.1–36.0), with gaps between them that a decimal can fall into. Two
// rules keep a value from scoring lower than the chart would score it:
//
//   - A value converted from another unit is rounded to the chart's
//     precision first ([chartValue]): the conversion's extra digits are
//     not a measurement, and 100.4 °F, which ConvertUnit makes
//     38.00000000000001 °C, is a charted 38.0 °C and scores 0, not 1.
//   - A value still in a gap, as sent in the band's unit, takes the more
//     severe of its two neighbouring bands. Joining the band above (the
//     reading this package used before) is the more severe side only
//     where scores rise upwards: below the normal band the chart scores
//     lower values higher, and 8.5 breaths per minute would have scored 1
//     (9–11) instead of 3 (≤8). Under-scoring a sick patient delays a
//     response; over-scoring by one band at a gap's edge costs a review.

// vital is one NEWS2 parameter.
type vital uint8

const (
	vitalRespiratoryRate    vital = iota // breaths per minute
	vitalSpO2                            // %
	vitalSupplementalOxygen              // 1 on oxygen, 0 on air
	vitalSystolicBP                      // mm[Hg]
	vitalPulse                           // beats per minute
	vitalConsciousness                   // 0 alert; 1 new confusion, voice, pain or unresponsive (CVPU)
	vitalTemperature                     // degrees Celsius
	numVitals                            // the number of vitals
)

// vitalNames are the vitals' names in alert records, indexed by Vital.
// Read-only.
var vitalNames = [numVitals]string{
	vitalRespiratoryRate:    "respiratoryRate",
	vitalSpO2:               "spo2",
	vitalSupplementalOxygen: "supplementalOxygen",
	vitalSystolicBP:         "systolicBP",
	vitalPulse:              "pulse",
	vitalConsciousness:      "consciousness",
	vitalTemperature:        "temperature",
}

// String is the vital's name in alert records: "respiratoryRate", "spo2",
// "supplementalOxygen", "systolicBP", "pulse", "consciousness", "temperature".
// A value outside the vitals is "Vital(n)", so that a bad index is visible
// in a record rather than an empty string.
func (v vital) String() string {
	if v < numVitals {
		return vitalNames[v]
	}
	return "Vital(" + strconv.Itoa(int(v)) + ")"
}

// band is one row of a chart parameter: values from from to to, both
// inclusive, score score. A table's rows ascend, its first row starts at
// -Inf and its last ends at +Inf, so every value that is not NaN is in a
// row or in a gap between two.
type band struct {
	from, to float64
	score    int
}

// The chart's tables, the row ranges as Chart 1 prints them. Read-only.
var (
	bandInf              = math.Inf(1)
	respiratoryRateBands = [...]band{{-bandInf, 8, 3}, {9, 11, 1}, {12, 20, 0}, {21, 24, 2}, {25, bandInf, 3}}
	spo2Scale1Bands      = [...]band{{-bandInf, 91, 3}, {92, 93, 2}, {94, 95, 1}, {96, bandInf, 0}}
	// Scale 2 is for patients with a prescribed target of 88–92% (hypercapnic
	// respiratory failure): above 92% is only a concern while oxygen is
	// pushing it there, so the air table stops scoring at 88%.
	spo2Scale2AirBands    = [...]band{{-bandInf, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, bandInf, 0}}
	spo2Scale2OxygenBands = [...]band{{-bandInf, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, 92, 0}, {93, 94, 1}, {95, 96, 2}, {97, bandInf, 3}}
	systolicBPBands       = [...]band{{-bandInf, 90, 3}, {91, 100, 2}, {101, 110, 1}, {111, 219, 0}, {220, bandInf, 3}}
	pulseBands            = [...]band{{-bandInf, 40, 3}, {41, 50, 1}, {51, 90, 0}, {91, 110, 1}, {111, 130, 2}, {131, bandInf, 3}}
	temperatureBands      = [...]band{{-bandInf, 35.0, 3}, {35.1, 36.0, 1}, {36.1, 38.0, 0}, {38.1, 39.0, 1}, {39.1, bandInf, 2}}
)

// The chart scores of the two yes/no parameters.
const (
	supplementalOxygenScore = 2
	consciousnessCVPUScore  = 3
)

func bandScore(bands []band, value float64) int {
	for i, b := range bands {
		if value < b.from {
			// Above the previous row (or it would have matched) and below
			// this one: a gap. i > 0, as the first row starts at -Inf.
			return max(bands[i-1].score, b.score)
		}
		if value <= b.to {
			return b.score
		}
	}
	// Unreachable for the tables above: the last row ends at +Inf and NaN
	// is turned away before any table is consulted.
	return 0
}

// chartValue is a value converted into v's unit as the chart would record
// it: temperature to 0.1 °C, every other parameter to a whole unit. Only a
// converted value is rounded: one sent in the chart's unit is scored as
// sent, its decimals in a gap taking the more severe neighbour, where
// rounding could carry it into the less severe one.
func chartValue(v vital, value float64) float64 {
	if v == vitalTemperature {
		return math.Round(value*10) / 10
	}
	return math.Round(value)
}

// scoreVital is the NEWS2 sub-score (0..3) of one parameter's value.
// scale is the SpO2 scale, 1 or 2 (anything else is scale 1); onOxygen
// matters only to SpO2 on scale 2.
//
// A NaN value, or a Vital outside the vitals, scores 0: NaN is not a
// measurement, and scoring it as one would place it in whichever band the
// comparisons happen to fall through to.
func scoreVital(v vital, value float64, scale int, onOxygen bool) int {
	if math.IsNaN(value) {
		return 0
	}
	switch v {
	case vitalRespiratoryRate:
		return bandScore(respiratoryRateBands[:], value)
	case vitalSpO2:
		switch {
		case scale != 2:
			return bandScore(spo2Scale1Bands[:], value)
		case onOxygen:
			return bandScore(spo2Scale2OxygenBands[:], value)
		default:
			return bandScore(spo2Scale2AirBands[:], value)
		}
	case vitalSupplementalOxygen:
		if value != 0 {
			return supplementalOxygenScore
		}
		return 0
	case vitalSystolicBP:
		return bandScore(systolicBPBands[:], value)
	case vitalPulse:
		return bandScore(pulseBands[:], value)
	case vitalConsciousness:
		if value != 0 {
			return consciousnessCVPUScore
		}
		return 0
	case vitalTemperature:
		return bandScore(temperatureBands[:], value)
	}
	return 0
}

// news2Score is a NEWS2 computation over the vitals present.
type news2Score struct {
	Total   int            // aggregate of the present vitals' scores
	Scores  [numVitals]int // per vital; 0 when absent
	Present [numVitals]bool
	// MaxSingle is the highest single sub-score.
	MaxSingle int
}

// scoreNEWS2 scores the vitals marked present. Absent vitals score 0 and
// stay marked absent: a missing parameter can only raise the true score,
// so the total is a lower bound. The SpO2 scale-2 oxygen rule uses the
// supplemental-oxygen vital when present (absent counts as air).
//
// A vital marked present with a NaN value is treated as absent and comes
// back marked absent, for the reason scoreVital gives: reporting it present
// would claim a score that no measurement supports.
func scoreNEWS2(values [numVitals]float64, present [numVitals]bool, scale int) news2Score {
	var n news2Score
	for v := range numVitals {
		n.Present[v] = present[v] && !math.IsNaN(values[v])
	}
	onOxygen := n.Present[vitalSupplementalOxygen] && values[vitalSupplementalOxygen] != 0
	for v := range numVitals {
		if !n.Present[v] {
			continue
		}
		s := scoreVital(v, values[v], scale, onOxygen)
		n.Scores[v] = s
		n.Total += s
		n.MaxSingle = max(n.MaxSingle, s)
	}
	return n
}

// responseLevel is the RCP's clinical response to a NEWS2 (RCP NEWS2,
// Chart 2 "NEWS thresholds and triggers" and the clinical response table
// beside it), ordered: a higher level asks for a more urgent response.
// Severity labels are coarser (a single red parameter and an aggregate of
// 5 are both high), so a move up a level is read from this, not from them.
type responseLevel uint8

const (
	responseNone      responseLevel = iota // aggregate 0
	responseLow                            // aggregate 1–4
	responseLowMedium                      // a single parameter scoring 3
	responseMedium                         // aggregate 5–6
	responseHigh                           // aggregate 7 or more
)

// news2Response is the response level of a NEWS2 aggregate total whose
// highest sub-score is maxSingle, at r's thresholds (the RCP's by default).
func news2Response(r *rules.NEWS2Rule, total, maxSingle int) responseLevel {
	switch {
	case total >= r.Emergency:
		return responseHigh
	case total >= r.Urgent:
		return responseMedium
	case maxSingle >= r.SingleParameter:
		return responseLowMedium
	case total > 0:
		return responseLow
	}
	return responseNone
}
