package alerts

// AlertsTotal is the number of alerts emitted so far, all severities, as
// counted in this process (a summary figure; the committed count is what
// clinical.alerts holds).
func (p *Processor) AlertsTotal() uint64 {
	var n uint64
	for _, c := range p.m.alerts {
		n += c.Get()
	}
	return n
}

// skipReason says why a valid Observation gave nothing to the rules or to
// NEWS2: a panel that only points at its members, or a value of a FHIR type
// no rule reads. Such records are counted per reason
// (carepipe_alerts_skipped_total) rather than sent to the error topic,
// which keeps its meaning: a record that could not be processed. The
// reasons are a fixed set, so the label stays bounded.
type skipReason uint8

const (
	skipNone skipReason = iota
	// skipHasMember: a panel that carries only hasMember, such as the FHIR
	// R4 vital-signs panel example (observation-example-vitals-panel); the
	// vital-signs profile's vs-2 admits it without a value.
	skipHasMember
	// Values of the other FHIR R4 Observation value[x] types.
	skipString
	skipBoolean
	skipCodeableConcept
	skipRange
	skipRatio
	skipSampledData
	skipTime
	skipDateTime
	skipPeriod
	// skipNoValue: no value, dataAbsentReason, component or hasMember.
	// FHIR R4 admits it (obs-6 requires no value: a genetics test
	// described by its extensions); the vital-signs profile does not
	// (vs-2), so for a code a rule or NEWS2 reads it is an error instead.
	skipNoValue
	numSkipReasons
)

// skipReasons are the reasons' label values, by reason.
var skipReasons = [numSkipReasons]string{
	skipHasMember:       "has-member-only",
	skipString:          "value-string",
	skipBoolean:         "value-boolean",
	skipCodeableConcept: "value-codeable-concept",
	skipRange:           "value-range",
	skipRatio:           "value-ratio",
	skipSampledData:     "value-sampled-data",
	skipTime:            "value-time",
	skipDateTime:        "value-date-time",
	skipPeriod:          "value-period",
	skipNoValue:         "no-value",
}

// otherValues maps the value[x] members carepipe does not read to their
// reason (valueQuantity, valueInteger and valueCodeableConcept are read).
var otherValues = map[string]skipReason{
	"valueString":      skipString,
	"valueBoolean":     skipBoolean,
	"valueRange":       skipRange,
	"valueRatio":       skipRatio,
	"valueSampledData": skipSampledData,
	"valueTime":        skipTime,
	"valueDateTime":    skipDateTime,
	"valuePeriod":      skipPeriod,
}
