package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics, code systems and codes of the clinical alerts workload (DESIGN.md
// §3, and the seed document's alert rules).
const (
	TopicPatient     = "fhir.Patient"
	TopicObservation = "fhir.Observation"

	SystemLOINC  = "http://loinc.org"
	SystemMRN    = "http://hospital.org/mrn"
	SystemSNOMED = "http://snomed.info/sct"
	SystemUCUM   = "http://unitsofmeasure.org"
	// SystemLocal is a hospital-local code system. The workload uses it
	// with LOINC's heart-rate code to prove that rules match the system as
	// well as the code ([KindWrongSystem]).
	SystemLocal = "http://hospital.org/local-codes"

	LOINCHeartRate       = "8867-4"
	LOINCSystolicBP      = "8480-6"
	LOINCGlucose         = "2339-0"
	LOINCBodyTemperature = "8310-5" // watched by no rule
	LOINCRespiratoryRate = "9279-1" // watched by no rule

	// HeaderCorrelationID is the header that, when present, carries the
	// correlation id (it wins over metadata.correlationId).
	HeaderCorrelationID = "correlation-id"
)

// Shape of the workload. Each share is a probability per record.
const (
	observationIDPrefix   = "obs-"
	patientIDPrefix       = "pat-"
	defaultPatients       = 100
	correlationHeaderProb = 0.2  // records carrying a correlation-id header
	extraCodingProb       = 0.3  // observations with a SNOMED coding before the LOINC one
	heartRateIntegerProb  = 0.25 // heart rates sent as valueInteger
	zeroValueProb         = 0.04 // HR/SBP/glucose values that are exactly 0, where 0 is on the branch's side
	rfc3339TimestampProb  = 0.25 // envelope timestamps in RFC 3339 (else ms since epoch)
	portalIdentifierProb  = 0.3  // patients with a non-MRN identifier before the MRN
	noPractitionerProb    = 0.1  // patients without a general practitioner
	oversizedNoteBytes    = 310 << 10
)

// Rule ids of the seed's three default rules, as [ObservationTruth.Rules]
// and [ExpectedAlertIDs] use them. Thresholds (all severity "high"): heart
// rate > 120 /min, systolic blood pressure > 180 mm[Hg], glucose < 70 mg/dL.
const (
	RuleHeartRateHigh  = "heart-rate-high"
	RuleSystolicBPHigh = "systolic-bp-high"
	RuleGlucoseLow     = "glucose-low"
)

// Observation kinds, [ObservationTruth.Kind].
const (
	KindHeartRate       = "heart-rate"
	KindSystolicBP      = "systolic-bp"
	KindGlucose         = "glucose"
	KindBodyTemperature = "body-temperature"
	KindRespiratoryRate = "respiratory-rate"
	// KindWrongSystem is a heart-rate-like observation whose only coding
	// is LOINC's code 8867-4 under [SystemLocal], with an alerting value:
	// it must trip nothing, because a rule matches system and code.
	KindWrongSystem = "wrong-system"
)

// Poison kinds, [ObservationTruth.Poison]. Each must reach the pipeline's
// error topic with key, value and headers byte-identical, and trip nothing.
const (
	// PoisonNotJSON is a valid observation (or envelope) cut in half.
	PoisonNotJSON = "not-json"
	// PoisonWrongResource is well-formed JSON with resourceType "Patient"
	// (the subject's Patient resource, misrouted to fhir.Observation).
	PoisonWrongResource = "wrong-resource-type"
	// PoisonNoCode is an Observation with a value but no code.
	PoisonNoCode = "no-code"
	// PoisonNoValue is a heart-rate Observation with no value[x] at all.
	PoisonNoValue = "no-value"
	// PoisonHugeNumber is a heart rate whose valueQuantity.value is the
	// literal 1e400, valid JSON syntax but beyond float64 (a lenient
	// decoder turns it into +Inf, which is "> 120").
	PoisonHugeNumber = "huge-number"
	// PoisonNaNString is a heart rate whose valueQuantity.value is the
	// JSON string "NaN".
	PoisonNaNString = "nan-string"
	// PoisonOversized is an otherwise valid, alerting heart rate carrying a
	// note of 310 KiB, so the record value exceeds 300 KiB.
	PoisonOversized = "oversized"
)

var poisonKinds = []string{
	PoisonNotJSON, PoisonWrongResource, PoisonNoCode, PoisonNoValue,
	PoisonHugeNumber, PoisonNaNString, PoisonOversized,
}

// PoisonKinds returns every poison kind the workload generates, in a fixed
// order.
func PoisonKinds() []string { return append([]string(nil), poisonKinds...) }

// AlertsWorkload configures the clinical alerts workload generator,
// [NewAlerts]. The zero value is valid: seed 0, 100 patients, no alerts, no
// poison, all bare, all keyed by patient id.
type AlertsWorkload struct {
	// Seed selects the workload. Equal configurations give byte-identical
	// records.
	Seed int64
	// Patients is the number of patients, ids pat-000000 .. (default 100).
	Patients int
	// AlertFraction is the share of non-poison observations that trip
	// exactly one rule; the others trip none. In [0, 1].
	AlertFraction float64
	// PoisonFraction is the share of observation records that are poison,
	// kinds chosen uniformly from [PoisonKinds]. In [0, 1].
	PoisonFraction float64
	// EnvelopeFraction is the share of records (patients and observations,
	// poison included) wrapped as {"metadata":{...},"payload":...} rather
	// than sent bare. In [0, 1].
	EnvelopeFraction float64
	// MisKeyedFraction is the share of observation records keyed by their
	// observation id instead of their patient id, so the pipeline must
	// re-key them. In [0, 1].
	MisKeyedFraction float64
	// BaseTime is observation 0's effectiveDateTime; observation i is
	// BaseTime + i seconds. Default 2025-01-01T00:00:00Z.
	BaseTime time.Time
}

func (w *AlertsWorkload) validate() error {
	if w.Patients < 0 {
		return fmt.Errorf("sim: alerts workload: Patients %d is negative", w.Patients)
	}
	if w.Patients == 0 {
		w.Patients = defaultPatients
	}
	if w.Patients > 1_000_000 {
		return fmt.Errorf("sim: alerts workload: Patients %d exceeds 1000000 (ids have 6 digits)", w.Patients)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"AlertFraction", w.AlertFraction},
		{"PoisonFraction", w.PoisonFraction},
		{"EnvelopeFraction", w.EnvelopeFraction},
		{"MisKeyedFraction", w.MisKeyedFraction},
	} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return fmt.Errorf("sim: alerts workload: %s %v is outside [0, 1]", f.name, f.v)
		}
	}
	if w.BaseTime.IsZero() {
		w.BaseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	w.BaseTime = w.BaseTime.UTC()
	return nil
}

// ObservationTruth is what the pipeline must do with one generated
// observation record.
type ObservationTruth struct {
	// Index is the record's position in the workload (observation i).
	Index int64
	// ObservationID is "obs-<seed>-<i>", the Observation's id (for poison,
	// the id the record would have had; not every poison kind carries it).
	ObservationID string
	// PatientID is the subject's id, "pat-NNNNNN".
	PatientID string
	// Kind is one of the Kind* constants ("" for poison).
	Kind string
	// Rules lists the rule ids (Rule* constants) the observation must
	// trip; empty for most observations and for all poison.
	Rules []string
	// Poison is "" or one of the Poison* kinds.
	Poison string
	// Value and Unit are the observation's value and unit when it has a
	// numeric one (non-poison only; Unit is "" for valueInteger).
	Value float64
	Unit  string
	// Enveloped says the value is wrapped in {"metadata","payload"}.
	Enveloped bool
	// MisKeyed says the record is keyed by ObservationID, not PatientID.
	MisKeyed bool
	// CorrelationID is the correlation id the pipeline must carry over:
	// the correlation-id header if present, else metadata.correlationId
	// if enveloped, else "" (the pipeline derives one from the record's
	// topic, partition and offset).
	CorrelationID string
}

// ObservationRecord is one generated fhir.Observation record and its truth.
//
// The record's Timestamp is left zero, so the producer stamps it with the
// time of producing: an old timestamp (BaseTime) would let kfake's retention,
// applied whenever it compacts, delete the records. Event time is in the
// value (effectiveDateTime, metadata.timestamp). kgo sets Partition, Offset
// and Timestamp on produce, so produce each record once.
type ObservationRecord struct {
	Record *kgo.Record
	Truth  ObservationTruth
}

// PatientTruth is what enrichment must find for a patient.
type PatientTruth struct {
	PatientID string
	// Name is the official name as the seed formats it: given names
	// joined by spaces, a space, the family name.
	Name string
	// MRN is the identifier value of system http://hospital.org/mrn.
	MRN string
	// GeneralPractitioner is the reference ("Practitioner/prac-NNN") and
	// GeneralPractitionerDisplay its display ("Dr. ..."); both "" for
	// patients without one.
	GeneralPractitioner        string
	GeneralPractitionerDisplay string
	Enveloped                  bool
}

// PatientRecord is one generated fhir.Patient record, keyed by patient id,
// and its truth. Timestamp is left zero, as for [ObservationRecord].
type PatientRecord struct {
	Record *kgo.Record
	Truth  PatientTruth
}

// Alerts generates the clinical alerts workload. Observation(i) and
// Patient(i) are pure functions of the configuration and i, safe for
// concurrent use; Next hands out consecutive indexes, also concurrently.
type Alerts struct {
	cfg  AlertsWorkload
	next atomic.Int64
}

// NewAlerts validates cfg, fills its defaults, and returns a generator whose
// Next starts at observation 0.
func NewAlerts(cfg AlertsWorkload) (*Alerts, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Alerts{cfg: cfg}, nil
}

// Config returns the configuration with defaults filled in.
func (g *Alerts) Config() AlertsWorkload { return g.cfg }

// PatientID returns the id of patient i, "pat-" and six digits.
func PatientID(i int) string { return fmt.Sprintf("%s%06d", patientIDPrefix, i) }

// ObservationID returns the id of observation i of the workload with seed
// seed, "obs-<seed>-<i>".
func ObservationID(seed, i int64) string {
	return observationIDPrefix + strconv.FormatInt(seed, 10) + "-" + strconv.FormatInt(i, 10)
}

// Next returns the next observation record: 0, 1, 2, ... Safe for
// concurrent use (each caller gets a distinct index; which one is racy).
func (g *Alerts) Next() ObservationRecord {
	return g.Observation(g.next.Add(1) - 1)
}

// NextRecord returns Next().Record; g.NextRecord fits [Feed].
func (g *Alerts) NextRecord() *kgo.Record { return g.Next().Record }

// NextN returns the next n observation records and their truths, in index
// order.
func (g *Alerts) NextN(n int) ([]*kgo.Record, []ObservationTruth) {
	recs := make([]*kgo.Record, 0, n)
	truths := make([]ObservationTruth, 0, n)
	start := g.next.Add(int64(n)) - int64(n)
	for i := start; i < start+int64(n); i++ {
		o := g.Observation(i)
		recs = append(recs, o.Record)
		truths = append(truths, o.Truth)
	}
	return recs, truths
}

// Patients returns every patient record, in id order.
func (g *Alerts) Patients() []PatientRecord {
	ps := make([]PatientRecord, g.cfg.Patients)
	for i := range ps {
		ps[i] = g.Patient(i)
	}
	return ps
}

// PatientRecords returns the records of Patients().
func (g *Alerts) PatientRecords() []*kgo.Record {
	ps := g.Patients()
	recs := make([]*kgo.Record, len(ps))
	for i, p := range ps {
		recs[i] = p.Record
	}
	return recs
}

// ExpectedAlertIDs returns observationID + "-" + ruleID for every rule every
// truth trips, in the order given (truth order, then rule order).
func ExpectedAlertIDs(truths []ObservationTruth) []string {
	var ids []string
	for _, t := range truths {
		for _, r := range t.Rules {
			ids = append(ids, t.ObservationID+"-"+r)
		}
	}
	return ids
}

// Random streams: each record kind draws from its own PCG stream so that
// adding a kind never shifts another's values.
const (
	streamObservation uint64 = 1
	streamPatient     uint64 = 2
)

// rngFor returns the source of record i of a stream: PCG seeded with the
// workload seed and a mix of stream and index.
func (g *Alerts) rngFor(stream uint64, i int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(g.cfg.Seed), splitmix64(stream<<56^uint64(i))))
}

// splitmix64 is a bijective 64-bit mixer (Steele, Lea, Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// between returns an integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// tenths returns a one-decimal value in [lo, hi] (both in tenths).
func tenths(r *rand.Rand, lo, hi int) float64 { return float64(between(r, lo, hi)) / 10 }

// ---------------------------------------------------------------------------
// Observations

// obsKind describes an observation kind: its coding and its value ranges.
type obsKind struct {
	kind         string
	rule         string // "" if no rule watches it
	system, code string
	display      string
	snomed       string // SNOMED CT code for the optional extra coding
	unit         string
	// alert and normal draw a value clearly across / clearly inside the
	// rule's threshold (normal only for unwatched kinds).
	alert, normal func(*rand.Rand) float64
	// canBeZero: exactly 0 is worth sending (it is a value, not
	// "missing"); zeroTrips: 0 is across the threshold.
	canBeZero, zeroTrips bool
}

var (
	kindHeartRate = obsKind{
		kind: KindHeartRate, rule: RuleHeartRateHigh,
		system: SystemLOINC, code: LOINCHeartRate, display: "Heart rate", snomed: "364075005", unit: "/min",
		alert:     func(r *rand.Rand) float64 { return float64(between(r, 130, 185)) }, // > 120
		normal:    func(r *rand.Rand) float64 { return float64(between(r, 50, 110)) },
		canBeZero: true, // 0 /min is not > 120: no alert
	}
	kindSystolicBP = obsKind{
		kind: KindSystolicBP, rule: RuleSystolicBPHigh,
		system: SystemLOINC, code: LOINCSystolicBP, display: "Systolic blood pressure", snomed: "271649006", unit: "mm[Hg]",
		alert:     func(r *rand.Rand) float64 { return float64(between(r, 190, 240)) }, // > 180
		normal:    func(r *rand.Rand) float64 { return float64(between(r, 95, 170)) },
		canBeZero: true, // 0 is not > 180: no alert
	}
	kindGlucose = obsKind{
		kind: KindGlucose, rule: RuleGlucoseLow,
		system: SystemLOINC, code: LOINCGlucose, display: "Glucose [Mass/volume] in Blood", snomed: "33747003", unit: "mg/dL",
		alert:     func(r *rand.Rand) float64 { return tenths(r, 350, 620) }, // < 70
		normal:    func(r *rand.Rand) float64 { return tenths(r, 800, 1800) },
		canBeZero: true, zeroTrips: true, // 0 < 70: alerts
	}
	kindBodyTemperature = obsKind{
		kind:   KindBodyTemperature,
		system: SystemLOINC, code: LOINCBodyTemperature, display: "Body temperature", snomed: "386725007", unit: "Cel",
		normal: func(r *rand.Rand) float64 { return tenths(r, 360, 384) },
	}
	kindRespiratoryRate = obsKind{
		kind:   KindRespiratoryRate,
		system: SystemLOINC, code: LOINCRespiratoryRate, display: "Respiratory rate", snomed: "86290005", unit: "/min",
		normal: func(r *rand.Rand) float64 { return float64(between(r, 12, 22)) },
	}
	kindWrongSystem = obsKind{
		kind:   KindWrongSystem,
		system: SystemLocal, code: LOINCHeartRate, display: "Heart rate (local code)", unit: "/min",
		// An alerting heart rate under the wrong system: must not alert.
		normal: func(r *rand.Rand) float64 { return float64(between(r, 130, 185)) },
	}

	alertingKinds = []*obsKind{&kindHeartRate, &kindSystolicBP, &kindGlucose}
	// normalKinds is a weighted list: kinds of non-alerting observations.
	normalKinds = []struct {
		k      *obsKind
		weight int
	}{
		{&kindHeartRate, 25}, {&kindSystolicBP, 25}, {&kindGlucose, 25},
		{&kindBodyTemperature, 10}, {&kindRespiratoryRate, 10}, {&kindWrongSystem, 5},
	}
	normalKindsTotal = func() int {
		t := 0
		for _, k := range normalKinds {
			t += k.weight
		}
		return t
	}()
)

func pickNormalKind(r *rand.Rand) *obsKind {
	n := r.IntN(normalKindsTotal)
	for _, k := range normalKinds {
		if n < k.weight {
			return k.k
		}
		n -= k.weight
	}
	panic("unreachable")
}

// FHIR R4 JSON shapes, only the fields the workload uses. Field order is the
// encoding order, so it is part of the determinism contract.
type (
	coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	codeableConcept struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text,omitempty"`
	}
	reference struct {
		Reference string `json:"reference"`
		Display   string `json:"display,omitempty"`
	}
	quantity struct {
		// Value is raw so poison can carry 1e400 or "NaN".
		Value  json.RawMessage `json:"value"`
		Unit   string          `json:"unit"`
		System string          `json:"system"`
		Code   string          `json:"code"`
	}
	annotation struct {
		Text string `json:"text"`
	}
	observationJSON struct {
		ResourceType      string           `json:"resourceType"`
		ID                string           `json:"id"`
		Status            string           `json:"status"`
		Code              *codeableConcept `json:"code,omitempty"`
		Subject           reference        `json:"subject"`
		EffectiveDateTime string           `json:"effectiveDateTime"`
		ValueQuantity     *quantity        `json:"valueQuantity,omitempty"`
		ValueInteger      *int64           `json:"valueInteger,omitempty"`
		Note              []annotation     `json:"note,omitempty"`
	}
	metadataJSON struct {
		EventID       string `json:"eventId"`
		EventType     string `json:"eventType"`
		EventSource   string `json:"eventSource"`
		CorrelationID string `json:"correlationId"`
		Timestamp     any    `json:"timestamp"` // int64 ms or RFC 3339 string
	}
	envelopeJSON struct {
		Metadata metadataJSON    `json:"metadata"`
		Payload  json.RawMessage `json:"payload"`
	}
)

const eventSource = "sim.fhir-platform"

// Observation returns observation record i (i >= 0). Pure: the same
// configuration and i always give the same bytes.
func (g *Alerts) Observation(i int64) ObservationRecord {
	r := g.rngFor(streamObservation, i)
	seed := g.cfg.Seed

	// Every draw happens in this fixed order whatever the branches, so a
	// change of one fraction moves as few other values as possible.
	patient := r.IntN(g.cfg.Patients)
	poison := r.Float64() < g.cfg.PoisonFraction
	enveloped := r.Float64() < g.cfg.EnvelopeFraction
	misKeyed := r.Float64() < g.cfg.MisKeyedFraction
	corrHeader := r.Float64() < correlationHeaderProb
	rfcTimestamp := r.Float64() < rfc3339TimestampProb
	extraCoding := r.Float64() < extraCodingProb
	zero := r.Float64() < zeroValueProb
	alerting := r.Float64() < g.cfg.AlertFraction
	poisonKind := poisonKinds[r.IntN(len(poisonKinds))]

	t := ObservationTruth{
		Index:         i,
		ObservationID: ObservationID(seed, i),
		PatientID:     PatientID(patient),
		Enveloped:     enveloped,
		MisKeyed:      misKeyed,
	}
	effective := g.cfg.BaseTime.Add(time.Duration(i) * time.Second)
	obs := observationJSON{
		ResourceType:      "Observation",
		ID:                t.ObservationID,
		Status:            "final",
		Subject:           reference{Reference: "Patient/" + t.PatientID},
		EffectiveDateTime: effective.Format(time.RFC3339),
	}

	var payload []byte
	if poison {
		t.Poison = poisonKind
		payload = g.poisonPayload(r, &obs, poisonKind, patient)
	} else {
		var k *obsKind
		if alerting {
			k = alertingKinds[r.IntN(len(alertingKinds))]
		} else {
			k = pickNormalKind(r)
		}
		var v float64
		switch {
		case zero && k.canBeZero && k.zeroTrips == alerting:
			// 0 trips glucose-low and no "high" rule: send it only
			// where it is on the side the branch asked for.
			v = 0
		case alerting:
			v = k.alert(r)
		default:
			v = k.normal(r)
		}
		t.Kind, t.Value = k.kind, v
		if alerting {
			t.Rules = []string{k.rule}
		}
		obs.Code = codeFor(k, extraCoding)
		if k == &kindHeartRate && r.Float64() < heartRateIntegerProb {
			iv := int64(v)
			obs.ValueInteger = &iv
		} else {
			t.Unit = k.unit
			obs.ValueQuantity = quantityOf(formatValue(v), k.unit)
		}
		payload = mustMarshal(obs)
	}

	var hdrs []kgo.RecordHeader
	if corrHeader {
		t.CorrelationID = "hdr-corr-" + strconv.FormatInt(seed, 10) + "-" + strconv.FormatInt(i, 10)
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderCorrelationID, Value: []byte(t.CorrelationID)})
	}
	value := payload
	if enveloped {
		meta := metadataJSON{
			EventID:       "evt-obs-" + strconv.FormatInt(seed, 10) + "-" + strconv.FormatInt(i, 10),
			EventType:     "ObservationRecorded",
			EventSource:   eventSource,
			CorrelationID: "corr-" + strconv.FormatInt(seed, 10) + "-" + strconv.FormatInt(i, 10),
			Timestamp:     envelopeTimestamp(effective, rfcTimestamp),
		}
		if t.CorrelationID == "" {
			t.CorrelationID = meta.CorrelationID
		}
		if poison && poisonKind == PoisonNotJSON {
			// Cut the envelope rather than the payload: a valid
			// payload inside a broken envelope is still not JSON.
			payload = mustMarshal(obs)
		}
		value = mustMarshal(envelopeJSON{Metadata: meta, Payload: payload})
	}
	if poison && poisonKind == PoisonNotJSON {
		value = value[:len(value)/2]
	}

	key := t.PatientID
	if misKeyed {
		key = t.ObservationID
	}
	return ObservationRecord{
		Record: &kgo.Record{Topic: TopicObservation, Key: []byte(key), Value: value, Headers: hdrs},
		Truth:  t,
	}
}

// poisonPayload returns the bare payload of a poison record. For
// PoisonNotJSON it returns the whole observation: the caller cuts the final
// value (bare or enveloped) in half.
func (g *Alerts) poisonPayload(r *rand.Rand, obs *observationJSON, kind string, patient int) []byte {
	hr := kindHeartRate.alert(r) // alerting, so a lenient pipeline shows up
	switch kind {
	case PoisonWrongResource:
		return g.patientPayload(g.rngFor(streamPatient, int64(patient)), patient).payload
	case PoisonNoCode:
		obs.ValueQuantity = quantityOf(formatValue(hr), kindHeartRate.unit)
	case PoisonNoValue:
		obs.Code = codeFor(&kindHeartRate, false)
	case PoisonHugeNumber:
		obs.Code = codeFor(&kindHeartRate, false)
		obs.ValueQuantity = quantityOf("1e400", kindHeartRate.unit)
	case PoisonNaNString:
		obs.Code = codeFor(&kindHeartRate, false)
		obs.ValueQuantity = quantityOf(`"NaN"`, kindHeartRate.unit)
	case PoisonOversized:
		obs.Code = codeFor(&kindHeartRate, false)
		obs.ValueQuantity = quantityOf(formatValue(hr), kindHeartRate.unit)
		obs.Note = []annotation{{Text: oversizedNote}}
	case PoisonNotJSON:
		obs.Code = codeFor(&kindHeartRate, false)
		obs.ValueQuantity = quantityOf(formatValue(hr), kindHeartRate.unit)
	default:
		panic("sim: unknown poison kind " + kind)
	}
	return mustMarshal(obs)
}

var oversizedNote = func() string {
	const filler = "Synthetic filler note for an oversized test record. "
	return strings.Repeat(filler, oversizedNoteBytes/len(filler)+1)
}()

func codeFor(k *obsKind, extra bool) *codeableConcept {
	cc := &codeableConcept{Text: k.display}
	if extra && k.snomed != "" {
		cc.Coding = append(cc.Coding, coding{System: SystemSNOMED, Code: k.snomed, Display: k.display})
	}
	cc.Coding = append(cc.Coding, coding{System: k.system, Code: k.code, Display: k.display})
	return cc
}

func quantityOf(raw, unit string) *quantity {
	return &quantity{Value: json.RawMessage(raw), Unit: unit, System: SystemUCUM, Code: unit}
}

// formatValue writes v in the shortest form that reads back as v.
func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func envelopeTimestamp(t time.Time, rfc bool) any {
	if rfc {
		return t.Format(time.RFC3339)
	}
	return t.UnixMilli()
}

// mustMarshal encodes v, which is always one of this file's types: an error
// is a programming error.
// stdJSON is encoding/json's output (sorted map keys, HTML escaping) at
// sonic's speed: a load generator's own encoding must not be what limits
// the rate it offers. Unlike sonic.ConfigStd it copies json.RawMessage as
// is, which is encoding/json's output too for the compact payloads sim
// embeds, without a second pass over them.
var stdJSON = sonic.Config{EscapeHTML: true, SortMapKeys: true, ValidateString: true}.Froze()

func mustMarshal(v any) []byte {
	b, err := stdJSON.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sim: encode %T: %v", v, err))
	}
	return b
}
