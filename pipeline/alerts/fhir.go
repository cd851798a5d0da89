package alerts

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/jsontext"
)

// coding is one entry of a FHIR CodeableConcept's coding list.
type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// observation is what the pipeline reads of a FHIR R4 Observation. Its
// strings may share memory with the record value it was decoded from.
type observation struct {
	ID string
	// Status is one of FHIR's observation statuses (registered,
	// preliminary, final, amended, corrected, cancelled, entered-in-error,
	// unknown); never empty.
	Status string
	// PatientID is the id part of subject.reference ("Patient/<id>").
	PatientID string
	// measurement is the observation's own code and value[x]. Its Codings
	// have at least one entry with a code.
	measurement
	// Components are the component[] entries (a blood-pressure panel's
	// systolic and diastolic values), in record order.
	Components []measurement
	// EventTime is the first present of effectiveDateTime,
	// effectiveInstant, effectivePeriod.start and issued, in UTC; zero if
	// none is present. A time without an offset is taken in the site's
	// time zone (see [WithSiteTimeZone]).
	EventTime time.Time

	// skip is why the observation may carry nothing the rules read (see
	// [findings.skipped]): skipNone when it has a numeric value, a
	// dataAbsentReason or components.
	skip skipReason

	// codings backs the Codings slices: reused by the next decode into
	// the same Observation.
	codings []coding
}

// measurement is a coded value: an observation's own code and value[x], or
// one of its components'.
type measurement struct {
	// Codings is code.coding.
	Codings []coding
	// HasValue reports a numeric value: valueQuantity.value, else
	// valueInteger, else valueDecimal (the seed's non-standard field).
	// Value is then finite with |Value| <= [maxMagnitude]; zero is a value.
	HasValue bool
	Value    float64
	// Bare reports that the value is valueInteger or valueDecimal: a
	// number with no unit by its type, which only a code that fixes its
	// unit can give one (see conceptCode.implied). A valueQuantity without
	// a unit is not bare: it lost its unit.
	Bare bool
	// Unit is the value's UCUM unit: valueQuantity.code when its system is
	// UCUM or absent, else valueQuantity.unit when there is no code; ""
	// when the value carries no unit (valueInteger, or a bare quantity).
	// UnitSystem is valueQuantity.system.
	Unit       string
	UnitSystem string
	// UnitText is valueQuantity.unit as sent, for display.
	UnitText string
	// Coded is valueCodeableConcept.coding (an ACVPU answer, say) and
	// CodedText its text.
	Coded     []coding
	CodedText string
	// Absent reports a dataAbsentReason: there is no value, on purpose.
	Absent bool
}

// maxMagnitude bounds observation values: larger magnitudes are not
// measurements but corrupt records.
const maxMagnitude = 1e12

// wireMeasurement is a measurement's fields as they are in the record,
// before they are checked. Numbers are kept raw: a number that overflows
// float64, or a string where a number belongs, is an invalid observation,
// not an undecodable record.
type wireMeasurement struct {
	Codings      []coding
	Value        []byte // valueQuantity.value
	Unit         string // valueQuantity.unit
	UnitSystem   string // valueQuantity.system
	UnitCode     string // valueQuantity.code
	ValueInteger []byte
	ValueDecimal []byte
	Coded        []coding // valueCodeableConcept.coding
	CodedText    string   // valueCodeableConcept.text
	HasCoded     bool     // valueCodeableConcept present
	Absent       bool     // dataAbsentReason present
	// CodeText reports a code.text: a code with text and no coding is
	// valid FHIR (CodeableConcept.coding is 0..*), which no rule reads.
	CodeText bool
	// Other is the value[x] of a type carepipe does not read
	// (valueString, valueRange, ...) of the lowest skipReason, skipNone
	// if none.
	Other skipReason
	// seen has a bit per member name read (see [jsontext.Scanner.Once]).
	seen uint64
}

// wireObservation is an Observation's fields as they are in the record.
type wireObservation struct {
	ResourceType string
	ID           string
	Status       string
	Subject      string // subject.reference
	wireMeasurement
	Components        []wireMeasurement
	EffectiveDateTime string
	EffectiveInstant  string
	EffectivePeriod   string // effectivePeriod.start
	Issued            string
	HasMember         bool // a non-empty hasMember
	// seen has a bit per member name read of the Observation's own (the
	// measurement's are in wireMeasurement.seen).
	seen uint64
}

// Bits of the member names read, for duplicate detection: an object's
// names each have one, per object kind.
const (
	// Observation's own, the envelope's, and those of objects of one or
	// two names read (subject, effectivePeriod, code, coding).
	seenResourceType = 1 << iota
	seenID
	seenStatus
	seenSubject
	seenComponent
	seenEffectiveDateTime
	seenEffectiveInstant
	seenEffectivePeriod
	seenIssued
	seenHasMember
	seenMetadata
	seenPayload
	seenFirst  // reference, start, coding: the one name read
	seenSystem // a coding's system
	seenCode   // a coding's code
)

const (
	// A measurement's, and valueQuantity's and valueCodeableConcept's.
	seenMCode = 1 << iota
	seenValueQuantity
	seenValueInteger
	seenValueDecimal
	seenValueCodeableConcept
	seenDataAbsentReason
	seenQValue
	seenQUnit
	seenQSystem
	seenQCode
	seenText
	// seenOther is the bit of the first other value[x]; the reason r's
	// is seenOther << r.
	seenOther
)

// decodeObservation decodes an Observation, enveloped or bare, into obs and
// returns the envelope's metadata (zero for a bare record). obs's strings
// share memory with value.
//
// It reads value in one pass with a [jsontext.Scanner]: an envelope's
// metadata and payload, or a bare Observation's fields, whichever the
// record carries. An envelope is recognised by its payload's resourceType;
// a "payload" without one is read as a bare record, which then has no
// resourceType either, so both readings reject it alike.
//
// Errors are [pipeline.RecordError]s: [pipeline.TypeDecode] when value is not
// JSON, not shaped like an Observation, or has an object with two members
// of a name it reads ([jsontext.ErrDuplicate]), [pipeline.TypeInvalid] when it
// breaks the contract (not an Observation, no id, no status, no code, no
// patient subject, no value of any kind, a value that is not finite or
// exceeds [maxMagnitude], a value next to a dataAbsentReason, an unreadable
// envelope timestamp). Messages never quote the record.
//
// A time of day without a time zone offset is read in site, the site's
// time zone ([WithSiteTimeZone]); with site nil it is a TypeInvalid: FHIR
// requires an offset (http://hl7.org/fhir/R4/datatypes.html#dateTime), and
// only the site knows which zone its clocks keep.
func decodeObservation(value []byte, obs *observation, site *time.Location) (envelope.Metadata, error) {
	var (
		s            jsontext.Scanner
		bare, inside wireObservation
		raw          envelope.RawMetadata
		// Every coding of both readings goes into obs's own coding
		// buffer, reused: a caller that decodes into the same
		// Observation again allocates nothing for them.
		codings = obs.codings[:0]
	)
	s.Reset(value)
	var seen uint64
	for more := s.Object(); more; more = s.NextMember() {
		switch key := s.Key(); string(key) {
		case "metadata":
			s.Once(&seen, seenMetadata)
			scanMetadata(&s, &raw)
		case "payload":
			s.Once(&seen, seenPayload)
			for more := s.Object(); more; more = s.NextMember() {
				inside.member(&s, s.Key(), &codings)
			}
		default:
			bare.member(&s, key, &codings)
		}
	}
	s.End()
	obs.codings = codings
	if err := s.Err(); err != nil {
		return envelope.Metadata{}, pipeline.Rejectf(pipeline.TypeDecode, "observation: %w", err)
	}
	var meta envelope.Metadata
	w := &bare
	if inside.ResourceType != "" {
		w = &inside
		var err error
		if meta, err = raw.Metadata(); err != nil {
			return envelope.Metadata{}, classifyDecode("observation", err)
		}
	}
	if err := w.observation(obs, site); err != nil {
		return envelope.Metadata{}, err
	}
	return meta, nil
}

// scanMetadata reads an envelope's metadata object.
func scanMetadata(s *jsontext.Scanner, m *envelope.RawMetadata) {
	var seen uint64
	for more := s.Object(); more; more = s.NextMember() {
		switch string(s.Key()) {
		case "eventId":
			s.Once(&seen, 1)
			m.EventID = s.String()
		case "eventType":
			s.Once(&seen, 2)
			m.EventType = s.String()
		case "eventSource":
			s.Once(&seen, 4)
			m.EventSource = s.String()
		case "correlationId":
			s.Once(&seen, 8)
			m.CorrelationID = s.String()
		case "timestamp":
			s.Once(&seen, 16)
			m.Timestamp = s.Raw()
		default:
			s.Skip()
		}
	}
}

// member reads the Observation member named key, appending codings to
// buf. A name read twice in one object is a [jsontext.ErrDuplicate]:
// encoding/json would keep the last member, other readers the first.
// Names that are skipped are not checked: whichever member of them a
// reader takes, it is nothing this pipeline reads.
func (w *wireObservation) member(s *jsontext.Scanner, key []byte, buf *[]coding) {
	switch string(key) {
	case "resourceType":
		s.Once(&w.seen, seenResourceType)
		w.ResourceType = s.String()
	case "id":
		s.Once(&w.seen, seenID)
		w.ID = s.String()
	case "status":
		s.Once(&w.seen, seenStatus)
		w.Status = s.String()
	case "subject":
		s.Once(&w.seen, seenSubject)
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			if string(s.Key()) == "reference" {
				s.Once(&seen, seenFirst)
				w.Subject = s.String()
			} else {
				s.Skip()
			}
		}
	case "component":
		s.Once(&w.seen, seenComponent)
		w.Components = w.Components[:0]
		for more := s.Array(); more; more = s.NextElement() {
			var c wireMeasurement
			for more := s.Object(); more; more = s.NextMember() {
				if key := s.Key(); !c.member(s, key, buf) {
					s.Skip()
				}
			}
			w.Components = append(w.Components, c)
		}
	case "effectiveDateTime":
		s.Once(&w.seen, seenEffectiveDateTime)
		w.EffectiveDateTime = s.String()
	case "effectiveInstant":
		s.Once(&w.seen, seenEffectiveInstant)
		w.EffectiveInstant = s.String()
	case "effectivePeriod":
		s.Once(&w.seen, seenEffectivePeriod)
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			if string(s.Key()) == "start" {
				s.Once(&seen, seenFirst)
				w.EffectivePeriod = s.String()
			} else {
				s.Skip()
			}
		}
	case "issued":
		s.Once(&w.seen, seenIssued)
		w.Issued = s.String()
	case "hasMember":
		s.Once(&w.seen, seenHasMember)
		for more := s.Array(); more; more = s.NextElement() {
			w.HasMember = true
			s.Skip()
		}
	default:
		if !w.wireMeasurement.member(s, key, buf) {
			s.Skip()
		}
	}
}

// member reads the measurement member named key (code and value[x]) and
// reports whether key is one; the caller skips the others.
func (m *wireMeasurement) member(s *jsontext.Scanner, key []byte, buf *[]coding) bool {
	switch string(key) {
	case "code":
		s.Once(&m.seen, seenMCode)
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "coding":
				s.Once(&seen, seenFirst)
				m.Codings = scanCodings(s, buf)
			case "text":
				s.Once(&seen, seenText)
				m.CodeText = s.String() != ""
			default:
				s.Skip()
			}
		}
	case "valueQuantity":
		s.Once(&m.seen, seenValueQuantity)
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "value":
				s.Once(&seen, seenQValue)
				m.Value = s.Raw()
			case "unit":
				s.Once(&seen, seenQUnit)
				m.Unit = s.String()
			case "system":
				s.Once(&seen, seenQSystem)
				m.UnitSystem = s.String()
			case "code":
				s.Once(&seen, seenQCode)
				m.UnitCode = s.String()
			default:
				s.Skip()
			}
		}
	case "valueInteger":
		s.Once(&m.seen, seenValueInteger)
		m.ValueInteger = s.Raw()
	case "valueDecimal":
		s.Once(&m.seen, seenValueDecimal)
		m.ValueDecimal = s.Raw()
	case "valueCodeableConcept":
		s.Once(&m.seen, seenValueCodeableConcept)
		if s.Peek() == jsontext.Object {
			m.HasCoded = true
		}
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "coding":
				s.Once(&seen, seenMCode)
				m.Coded = scanCodings(s, buf)
			case "text":
				s.Once(&seen, seenText)
				m.CodedText = s.String()
			default:
				s.Skip()
			}
		}
	case "dataAbsentReason":
		s.Once(&m.seen, seenDataAbsentReason)
		m.Absent = s.Peek() != jsontext.Null
		s.Skip()
	default:
		// Only names that start "value" can be another value[x]: the map
		// is not consulted for the rest of the skipped members.
		if len(key) > 5 && string(key[:5]) == "value" {
			if r, ok := otherValues[string(key)]; ok {
				s.Once(&m.seen, seenOther<<r)
				// The lowest reason wins, so that the reason does not
				// depend on member order.
				if (m.Other == skipNone || r < m.Other) && s.Peek() != jsontext.Null {
					m.Other = r
				}
				s.Skip()
				return true
			}
		}
		return false
	}
	return true
}

// scanCodings reads a coding array into buf and returns its entries (a
// slice of buf). A null entry is a coding without system or code.
func scanCodings(s *jsontext.Scanner, buf *[]coding) []coding {
	from := len(*buf)
	for more := s.Array(); more; more = s.NextElement() {
		var c coding
		var seen uint64
		for more := s.Object(); more; more = s.NextMember() {
			switch string(s.Key()) {
			case "system":
				s.Once(&seen, seenSystem)
				c.System = s.String()
			case "code":
				s.Once(&seen, seenCode)
				c.Code = s.String()
			default:
				s.Skip()
			}
		}
		*buf = append(*buf, c)
	}
	return (*buf)[from:len(*buf):len(*buf)]
}

// observation checks w and fills obs from it, keeping obs's buffers.
// Times without an offset are in site (nil: an error).
func (w *wireObservation) observation(obs *observation, site *time.Location) error {
	switch {
	case w.ResourceType != "Observation":
		return pipeline.Rejectf(pipeline.TypeInvalid, "resourceType is not Observation")
	case w.ID == "":
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation has no id")
	case !isFHIRID(w.ID):
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation id is not a FHIR id")
	case w.Status == "":
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation has no status")
	case !hasCode(w.Codings) && !w.CodeText:
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation has no code")
	}
	pid, ok := patientID(w.Subject)
	if !ok {
		return pipeline.Rejectf(pipeline.TypeInvalid, "observation subject is not a Patient reference")
	}
	own, err := w.wireMeasurement.measurement()
	if err != nil {
		return err
	}
	var comps []measurement
	if len(w.Components) > 0 {
		comps = make([]measurement, len(w.Components))
		for i := range w.Components {
			if comps[i], err = w.Components[i].measurement(); err != nil {
				return err
			}
		}
	}
	skip := w.skipReason(&own, comps)
	at, err := eventTime(site, w)
	if err != nil {
		return err
	}
	*obs = observation{
		ID:          w.ID,
		Status:      w.Status,
		PatientID:   pid,
		measurement: own,
		Components:  comps,
		EventTime:   at,
		skip:        skip,
		codings:     obs.codings,
	}
	return nil
}

// skipReason is why an observation whose own measurement is own and whose
// components are comps may carry nothing the rules read: skipNone when it
// or a component has a number or a dataAbsentReason. Otherwise the value
// types say why, the observation's own first, then the components' (a
// panel of coded answers), then hasMember (a panel of references). Valid
// FHIR all (R4 Observation value[x]; obs-6 asks no value of a result; the
// vital-signs profile's vs-2 does, unless there is a component or
// hasMember), skipped rather than rejected. skipNoValue, nothing at all,
// is left to the rules to judge: see [ruleSet.evaluate].
func (w *wireObservation) skipReason(own *measurement, comps []measurement) skipReason {
	if own.HasValue || own.Absent {
		return skipNone
	}
	for i := range comps {
		if comps[i].HasValue || comps[i].Absent {
			return skipNone
		}
	}
	if r := w.valueType(); r != skipNone {
		return r
	}
	r := skipNone
	for i := range w.Components {
		if c := w.Components[i].valueType(); c != skipNone && (r == skipNone || c < r) {
			r = c
		}
	}
	switch {
	case r != skipNone:
		return r
	case w.HasMember:
		return skipHasMember
	}
	return skipNoValue
}

// valueType is the skip reason of m's value[x] when it is of a type no
// rule reads as a number, skipNone when it has none of those.
func (m *wireMeasurement) valueType() skipReason {
	switch {
	case m.HasCoded:
		return skipCodeableConcept
	case m.Other != skipNone:
		return m.Other
	}
	return skipNone
}

// measurement checks m's value and unit.
func (m *wireMeasurement) measurement() (measurement, error) {
	out := measurement{Codings: m.Codings, UnitSystem: m.UnitSystem, UnitText: m.Unit, Coded: m.Coded, CodedText: m.CodedText}
	v, ok, bare, err := m.value()
	if err != nil {
		return measurement{}, err
	}
	out.Bare = bare
	if ok && m.Absent {
		return measurement{}, pipeline.Rejectf(pipeline.TypeInvalid, "observation has both a value and a dataAbsentReason")
	}
	out.HasValue, out.Value, out.Absent = ok, v, m.Absent && !ok
	switch {
	case m.UnitCode != "" && (m.UnitSystem == "" || rules.CanonicalSystem(m.UnitSystem) == rules.UCUM):
		out.Unit = m.UnitCode
	case m.UnitCode == "" && m.Unit != "":
		// A unit without a code is taken as the UCUM code it may be; one
		// that is not fails conversion, visibly, rather than being guessed.
		out.Unit = m.Unit
	case m.UnitCode != "":
		// A code from another system: kept with its system, so that it
		// never passes for the UCUM unit of the same spelling.
		out.Unit = m.UnitSystem + "|" + m.UnitCode
	}
	return out, nil
}

// classifyDecode turns an envelope decoding error into a record error. An
// unreadable metadata timestamp is a broken contract, anything else an
// undecodable record. envelope errors never quote the value.
func classifyDecode(what string, err error) error {
	if errors.Is(err, envelope.ErrTimestamp) {
		return pipeline.Reject(pipeline.TypeInvalid, err)
	}
	return pipeline.Rejectf(pipeline.TypeDecode, "%s: %w", what, err)
}

func hasCode(cs []coding) bool {
	for i := range cs {
		if cs[i].Code != "" {
			return true
		}
	}
	return false
}

// value is the first present of valueQuantity.value, valueInteger and
// valueDecimal; ok is false when none is present, bare when it is not the
// quantity's. A present value that is not a usable number is an error, not
// a reason to look at the next field.
func (m *wireMeasurement) value() (v float64, ok, bare bool, err error) {
	for i, raw := range [...][]byte{m.Value, m.ValueInteger, m.ValueDecimal} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		v, err := parseNumber(raw)
		return v, err == nil, err == nil && i > 0, err
	}
	return 0, false, false, nil
}

// parseNumber parses a raw JSON value that must be a finite number within
// maxMagnitude.
func parseNumber(raw []byte) (float64, error) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, pipeline.Rejectf(pipeline.TypeInvalid, "observation value is not a number")
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, pipeline.Rejectf(pipeline.TypeInvalid, "observation value is not a finite number")
	}
	if math.Abs(v) > maxMagnitude {
		return 0, pipeline.Rejectf(pipeline.TypeInvalid, "observation value magnitude exceeds %g", maxMagnitude)
	}
	return v, nil
}

// patientID is the id in a reference to a Patient: "Patient/<id>", possibly
// absolute ("https://fhir.example/r4/Patient/<id>") or versioned
// (".../_history/<v>").
func patientID(ref string) (string, bool) {
	const prefix = "Patient/"
	i := strings.Index(ref, prefix)
	if i < 0 || (i > 0 && ref[i-1] != '/') {
		return "", false
	}
	id := ref[i+len(prefix):]
	if j := strings.IndexByte(id, '/'); j >= 0 {
		if !strings.HasPrefix(id[j:], "/_history/") {
			return "", false
		}
		id = id[:j]
	}
	return id, isFHIRID(id)
}

// isFHIRID reports whether s is a FHIR resource id: 1 to 64 of [A-Za-z0-9-.].
func isFHIRID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// eventTime is the first present of w's effectiveDateTime,
// effectiveInstant, effectivePeriod.start and issued, in UTC: the zero time
// when none is present. A present time that is not readable is an error,
// not a reason to look at the next: falling through to the record's Kafka
// timestamp would move the reading in time without anyone knowing, and
// suppression windows and NEWS2's latest readings run on event time.
//
// A full time with an offset is that instant. A date (day, month or year
// precision: FHIR allows those without a zone) is the start of that day,
// month or year in site, in UTC without a site. A time of day without an
// offset (invalid FHIR, but what many hospital interfaces send, from HL7
// v2 timestamps of local time) is taken in site; without a site it is an
// error. A local time that a daylight-saving change skips or repeats is
// resolved as [time.Date] does.
func eventTime(site *time.Location, w *wireObservation) (time.Time, error) {
	for _, f := range [...]struct {
		name, v string
	}{{"effectiveDateTime", w.EffectiveDateTime}, {"effectiveInstant", w.EffectiveInstant}, {"effectivePeriod.start", w.EffectivePeriod}, {"issued", w.Issued}} {
		if f.v == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, f.v); err == nil {
			return t.UTC(), nil
		}
		loc := site
		if loc == nil {
			loc = time.UTC
		}
		for _, layout := range [...]string{"2006-01-02", "2006-01", "2006"} {
			if t, err := time.ParseInLocation(layout, f.v, loc); err == nil {
				return t.UTC(), nil
			}
		}
		for _, layout := range [...]string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
			if _, err := time.Parse(layout, f.v); err != nil {
				continue
			}
			if site == nil {
				return time.Time{}, pipeline.Rejectf(pipeline.TypeInvalid, "observation %s has a time without a time zone offset and no site time zone is configured", f.name)
			}
			t, _ := time.ParseInLocation(layout, f.v, site)
			return t.UTC(), nil
		}
		return time.Time{}, pipeline.Rejectf(pipeline.TypeInvalid, "observation %s is not a FHIR dateTime or instant", f.name)
	}
	return time.Time{}, nil
}

// patientContext is what alerts are enriched with, from the fhir.Patient
// table. It shares no memory with the record it was decoded from.
type patientContext struct {
	ID string
	// Name is "given... family" of the official name, else of the first.
	Name string
	// MRN is the identifier value whose system is [MRNSystem].
	MRN string
	// GeneralPractitioners is generalPractitioner: references and displays.
	GeneralPractitioners []reference
	// CareTeam is what alerts carry as careTeam (compact JSON): the
	// resource's non-standard careTeam value as sent (the seed's shape),
	// else GeneralPractitioners as [{"reference":...,"display":...}]; nil
	// when neither is present.
	CareTeam json.RawMessage
}

// reference is a FHIR Reference's reference and display.
type reference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
}

// MRNSystem is the identifier system of medical record numbers.
const MRNSystem = "http://hospital.org/mrn"

type wirePatient struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Name         []struct {
		Use    string   `json:"use"`
		Text   string   `json:"text"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	GeneralPractitioner []reference            `json:"generalPractitioner"`
	CareTeam            sonic.NoCopyRawMessage `json:"careTeam"`
}

// decodePatient decodes a FHIR R4 Patient, enveloped or bare, into a
// *patientContext that shares no memory with key or value. The patient id
// is the resource id, else the record key. The fhir.Patient table holds a
// compact form of the same context instead (see [patientEntry]); this is
// the context whole, for callers that keep a few.
//
// Errors are [pipeline.RecordError]s: [pipeline.TypeDecode] when value is not
// JSON, not shaped like a Patient, or has a careTeam that is not JSON;
// [pipeline.TypeInvalid] when it is not a Patient, has no id and no key, or
// has an unreadable envelope timestamp. Messages never quote the record.
func decodePatient(key, value []byte) (any, error) {
	p, err := readPatient(key, value)
	if err != nil {
		return nil, err
	}
	// Everything kept is copied: the value belongs to a fetch buffer that
	// the holder must not pin. (A one-part name is the part itself, and
	// may be the record's memory.)
	pc := &patientContext{ID: strings.Clone(p.ID), Name: strings.Clone(p.Name), MRN: strings.Clone(p.MRN), CareTeam: p.CareTeam}
	for _, gp := range p.GeneralPractitioners {
		pc.GeneralPractitioners = append(pc.GeneralPractitioners, reference{
			Reference: strings.Clone(gp.Reference), Display: strings.Clone(gp.Display),
		})
	}
	if pc.CareTeam == nil && len(pc.GeneralPractitioners) > 0 {
		pc.CareTeam = gpCareTeam(pc.GeneralPractitioners)
	}
	return pc, nil
}

// readPatient reads a Patient's context, and rejects what decodePatient
// rejects, but for the careTeam derived from generalPractitioner, which
// is left to the caller (CareTeam is the record's own careTeam, compacted,
// else nil). Strings may share memory with key and value.
func readPatient(key, value []byte) (patientContext, error) {
	var w wirePatient
	if _, err := envelope.Decode(value, &w); err != nil {
		return patientContext{}, classifyDecode("patient", err)
	}
	if w.ResourceType != "Patient" {
		return patientContext{}, pipeline.Rejectf(pipeline.TypeInvalid, "resourceType is not Patient")
	}
	p := patientContext{ID: w.ID}
	if p.ID == "" {
		p.ID = string(key)
	}
	if p.ID == "" {
		return patientContext{}, pipeline.Rejectf(pipeline.TypeInvalid, "patient has no id")
	}
	if len(w.Name) > 0 {
		n := &w.Name[0]
		for i := range w.Name {
			if w.Name[i].Use == "official" {
				n = &w.Name[i]
				break
			}
		}
		parts := make([]string, 0, len(n.Given)+1)
		for _, g := range n.Given {
			if g = strings.TrimSpace(g); g != "" {
				parts = append(parts, g)
			}
		}
		if f := strings.TrimSpace(n.Family); f != "" {
			parts = append(parts, f)
		}
		p.Name = strings.Join(parts, " ")
		if p.Name == "" {
			p.Name = strings.TrimSpace(n.Text)
		}
	}
	for _, id := range w.Identifier {
		if id.System == MRNSystem && id.Value != "" {
			p.MRN = id.Value
			break
		}
	}
	for _, gp := range w.GeneralPractitioner {
		if gp.Reference == "" && gp.Display == "" {
			continue
		}
		p.GeneralPractitioners = append(p.GeneralPractitioners, gp)
	}
	if len(w.CareTeam) > 0 && string(w.CareTeam) != "null" {
		var buf bytes.Buffer
		if err := json.Compact(&buf, w.CareTeam); err != nil {
			return patientContext{}, pipeline.Rejectf(pipeline.TypeDecode, "patient: careTeam is not valid JSON")
		}
		p.CareTeam = buf.Bytes()
	}
	return p, nil
}

// gpCareTeam is the careTeam of a patient whose record has none: its
// general practitioners, as [{"reference":...,"display":...}], which is
// what encoding/json writes for them (HTML escaping off). Written by hand:
// it runs for every alert of such a patient, and sonic's encoder cost as
// much as the rest of the patient's lookup.
func gpCareTeam(gps []reference) json.RawMessage {
	n := 2
	for _, gp := range gps {
		n += 32 + len(gp.Reference) + len(gp.Display)
	}
	b := append(make([]byte, 0, n), '[')
	for i, gp := range gps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if gp.Reference != "" {
			b = append(b, `"reference":`...)
			b = jsontext.AppendString(b, gp.Reference)
		}
		if gp.Display != "" {
			if gp.Reference != "" {
				b = append(b, ',')
			}
			b = append(b, `"display":`...)
			b = jsontext.AppendString(b, gp.Display)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// patientEntry is what the fhir.Patient table holds per patient: the
// context decodePatient makes of the record, packed into one immutable
// string. The table holds every patient of the hospital and is read for
// the few observations that alert, so it is kept small at the cost of a
// decode per lookup ([patientEntry.context]). A *patientContext took
// eight allocations per patient (the struct, five strings, the reference
// slice, the careTeam): 392 B of heap per patient with the table's own
// overhead, against 192 B for an entry (BenchmarkPatientTable1M in
// package pipeline; the target is 300).
//
// Layout: a flags byte, then strings, each a uvarint length and its bytes
// (as in the patient-alerts state): the id when it is not the record key
// (entryOwnID), the name, the MRN; a uvarint count of general
// practitioners, each a reference and a display; and the record's own
// careTeam, compacted, when it has one (entryOwnCareTeam). Without one,
// the careTeam is the general practitioners encoded again on decoding,
// which is the encoding decodePatient made of them: not held twice.
type patientEntry string

const (
	entryOwnID = 1 << iota
	entryOwnCareTeam
)

// decodePatientEntry is the Decode function of the fhir.Patient table: it
// rejects what decodePatient rejects, with the same errors, and holds a
// [patientEntry], which shares no memory with key or value.
func decodePatientEntry(key, value []byte) (any, error) {
	p, err := readPatient(key, value)
	if err != nil {
		return nil, err
	}
	return packPatient(key, &p), nil
}

// packPatient packs p, decoded from a record keyed key.
func packPatient(key []byte, p *patientContext) patientEntry {
	// Built on the stack when it fits, then copied once into a string of
	// its exact size.
	var scratch [256]byte
	b := append(scratch[:0], 0)
	if p.ID != string(key) {
		b[0] |= entryOwnID
		b = appendStr(b, p.ID)
	}
	b = appendStr(b, p.Name)
	b = appendStr(b, p.MRN)
	b = binary.AppendUvarint(b, uint64(len(p.GeneralPractitioners)))
	for _, gp := range p.GeneralPractitioners {
		b = appendStr(b, gp.Reference)
		b = appendStr(b, gp.Display)
	}
	if p.CareTeam != nil {
		b[0] |= entryOwnCareTeam
		b = appendStr(b, string(p.CareTeam))
	}
	return patientEntry(b)
}

// context unpacks e, held under key, into the context decodePatient makes
// of the same record. Its strings share memory with e (immutable) and key
// is copied: it is a lookup's argument, which may be a record's memory.
// It fails only for an entry packPatient did not write.
func (e patientEntry) context(key string) (*patientContext, error) {
	// Read only: the reader never writes through its slice.
	r := stateReader{b: unsafe.Slice(unsafe.StringData(string(e)), len(e))}
	flags := r.byte()
	p := &patientContext{}
	if flags&entryOwnID != 0 {
		p.ID = r.str()
	} else {
		p.ID = strings.Clone(key)
	}
	p.Name, p.MRN = r.str(), r.str()
	if n := r.count(); n > 0 {
		p.GeneralPractitioners = make([]reference, n)
		for i := range p.GeneralPractitioners {
			p.GeneralPractitioners[i] = reference{Reference: r.str(), Display: r.str()}
		}
	}
	if flags&entryOwnCareTeam != 0 {
		// A copy: the context's careTeam is a []byte, e is not.
		p.CareTeam = bytes.Clone(r.bytes(r.uvarint()))
	}
	if r.bad || len(r.b) != 0 || flags&^(entryOwnID|entryOwnCareTeam) != 0 {
		return nil, errPatientEntry
	}
	if p.CareTeam == nil && len(p.GeneralPractitioners) > 0 {
		p.CareTeam = gpCareTeam(p.GeneralPractitioners)
	}
	return p, nil
}

// errPatientEntry: a fhir.Patient table value that packPatient did not
// write.
var errPatientEntry = errors.New("patient table entry is not readable")
