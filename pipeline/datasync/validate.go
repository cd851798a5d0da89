package datasync

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// validateChange returns the problems of change ch, each naming the field and the
// rule it breaks, never quoting a value: messages can be logged and sent to
// data.sync.errors. Empty: valid.
//
// Every change needs an id and a positive source timestamp (lastUpdated); a
// delete needs nothing more. Every field value must be JSON. Then, per
// entity type, the seed's rules plus FHIR's value sets and formats: a date
// is YYYY, YYYY-MM or YYYY-MM-DD and exists in the calendar, a dateTime is
// a date or an RFC 3339 instant. A patient's birth date may not be after the
// date (UTC) of the change's own source timestamp: the outcome depends only
// on the change, never on when it is processed. A required field is absent,
// null or the empty string; an optional one is checked when present.
func validateChange(ch *Change) []string {
	var probs []string
	if ch.ID == "" {
		probs = append(probs, "id is required")
	}
	if ch.SourceTime <= 0 {
		probs = append(probs, "lastUpdated must be a positive source timestamp")
	}
	if ch.Op == OpDelete {
		return probs
	}
	var notJSON []string
	for f, v := range ch.Fields {
		if !json.Valid(v) {
			notJSON = append(notJSON, f)
		}
	}
	slices.Sort(notJSON)
	for _, f := range notJSON {
		probs = append(probs, f+" is not valid JSON")
	}
	v := validator{fs: ch.Fields, probs: probs}
	switch ch.Entity {
	case Patient:
		if first, last := v.has("firstName"), v.has("lastName"); !first && !last {
			v.add("patient must have at least a first or last name")
		}
		if dob := v.text("dateOfBirth"); dob == nil {
			if v.missing("dateOfBirth") {
				v.add("patient must have a date of birth")
			}
		} else if d, ok := parseFHIRDate(dob); !ok {
			v.add("dateOfBirth must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists")
		} else if ch.SourceTime > 0 {
			st := time.UnixMilli(ch.SourceTime).UTC()
			if d.begin.After(time.Date(st.Year(), st.Month(), st.Day(), 0, 0, 0, 0, time.UTC)) {
				v.add("dateOfBirth must not be after the date of the change's lastUpdated (UTC)")
			}
		}
		v.oneOf("gender", administrativeGenders)
		if raw, ok := ch.Fields["identifiers"]; ok && string(raw) != "null" && json.Valid(raw) {
			var ids []Identifier
			if json.Unmarshal(raw, &ids) != nil {
				v.add("identifiers must be an array of {system, value}")
			}
		}
	case Encounter:
		if !v.has("patientId") {
			v.add("encounter must have a patient ID")
		}
		v.oneOf("status", encounterStatuses)
		start, startOK := v.dateTime("start")
		end, endOK := v.dateTime("end")
		if startOK && endOK && end.last.Before(start.begin) {
			v.add("end must not be before start")
		}
	case Observation:
		if !v.has("patientId") {
			v.add("observation must have a patient ID")
		}
		if !v.has("code") {
			v.add("observation must have a code")
		}
		v.oneOf("status", observationStatuses)
		v.dateTime("effectiveDateTime")
	case Prescription:
		if !v.has("patientId") {
			v.add("prescription must have a patient ID")
		}
		if id, name := v.has("medicationId"), v.has("medicationName"); !id && !name {
			v.add("prescription must have a medication ID or name")
		}
		v.oneOf("status", prescriptionStatuses)
	default:
		v.add("entity type is not one of patient, encounter, observation, prescription")
	}
	return v.probs
}

// FHIR value sets (R4).
var (
	administrativeGenders = []string{"male", "female", "other", "unknown"}
	encounterStatuses     = []string{"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown"}
	observationStatuses   = []string{"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
	prescriptionStatuses  = []string{"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
)

// validator collects the problems of one change's fields.
type validator struct {
	fs    Fields
	probs []string
	// typed are the fields reported already as not being strings.
	typed []string
}

func (v *validator) add(p string) { v.probs = append(v.probs, p) }

// missing says whether field f is absent, null or the empty string (a
// field that is there but not a string is not missing: text reports it).
func (v *validator) missing(f string) bool {
	raw, ok := v.fs[f]
	if !ok || string(raw) == "null" {
		return true
	}
	s, isText := jsonText(raw)
	return isText && len(s) == 0
}

// has says whether required field f is given: a non-empty string, or a
// value of the wrong type (reported by text, not as missing).
func (v *validator) has(f string) bool {
	return v.text(f) != nil || !v.missing(f)
}

// text returns field f as a non-empty string, or nil when it is absent,
// null, empty or not a string; a field that is JSON but not a string is
// reported once.
func (v *validator) text(f string) []byte {
	raw, ok := v.fs[f]
	if !ok || string(raw) == "null" {
		return nil
	}
	s, isText := jsonText(raw)
	if !isText {
		if json.Valid(raw) && !slices.Contains(v.typed, f) {
			v.typed = append(v.typed, f)
			v.add(f + " must be a string")
		}
		return nil
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

// oneOf checks that field f, when present, is one of the codes in set.
func (v *validator) oneOf(f string, set []string) {
	raw, ok := v.fs[f]
	if !ok || string(raw) == "null" {
		return
	}
	s := v.text(f)
	if s == nil {
		if _, isText := jsonText(raw); !isText {
			return // not a string: reported by text
		}
	}
	if !slices.Contains(set, string(s)) {
		msg := f + " must be one of "
		for i, c := range set {
			if i > 0 {
				msg += ", "
			}
			msg += c
		}
		v.add(msg)
	}
}

// dateTime checks that field f, when present, is a FHIR dateTime, and
// returns its period when it is.
func (v *validator) dateTime(f string) (fhirPeriod, bool) {
	raw, ok := v.fs[f]
	if !ok || string(raw) == "null" {
		return fhirPeriod{}, false
	}
	s := v.text(f)
	if s == nil {
		if _, isText := jsonText(raw); !isText {
			return fhirPeriod{}, false // not a string: reported by text
		}
	}
	p, ok := parseFHIRDateTime(s)
	if !ok {
		v.add(f + " must be a FHIR dateTime (a date, or an RFC 3339 date and time)")
	}
	return p, ok
}

// jsonText returns the string a JSON string value holds; isText is false
// when raw is not a JSON string. Strings without escapes are returned
// without copying.
func jsonText(raw []byte) (s []byte, isText bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	plain := true
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return in, true
	}
	var str string
	if json.Unmarshal(raw, &str) != nil {
		return nil, false
	}
	return []byte(str), true
}

// fhirPeriod is the time a FHIR date or dateTime stands for: from begin to
// last, both included. A date without a time zone is taken as UTC.
type fhirPeriod struct {
	begin, last time.Time
}

// parseFHIRDate parses a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, a year from
// 0001 and a day that exists.
func parseFHIRDate(s []byte) (fhirPeriod, bool) {
	if len(s) != 4 && len(s) != 7 && len(s) != 10 {
		return fhirPeriod{}, false
	}
	year, ok := digits(s[0:4])
	if !ok || year < 1 {
		return fhirPeriod{}, false
	}
	month, day := 1, 1
	if len(s) >= 7 {
		if s[4] != '-' {
			return fhirPeriod{}, false
		}
		if month, ok = digits(s[5:7]); !ok || month < 1 || month > 12 {
			return fhirPeriod{}, false
		}
	}
	if len(s) == 10 {
		if s[7] != '-' {
			return fhirPeriod{}, false
		}
		// Day 0 of the next month is the last day of this one.
		last := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
		if day, ok = digits(s[8:10]); !ok || day < 1 || day > last {
			return fhirPeriod{}, false
		}
	}
	begin := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	var next time.Time
	switch len(s) {
	case 4:
		next = begin.AddDate(1, 0, 0)
	case 7:
		next = begin.AddDate(0, 1, 0)
	default:
		next = begin.AddDate(0, 0, 1)
	}
	return fhirPeriod{begin: begin, last: next.Add(-time.Nanosecond)}, true
}

// parseFHIRDateTime parses a FHIR dateTime: a FHIR date or an RFC 3339 date
// and time (with its time zone).
func parseFHIRDateTime(s []byte) (fhirPeriod, bool) {
	if len(s) <= 10 {
		return parseFHIRDate(s)
	}
	if bytes.IndexByte(s, 'T') != 10 {
		return fhirPeriod{}, false
	}
	if _, ok := parseFHIRDate(s[:10]); !ok {
		return fhirPeriod{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return fhirPeriod{}, false
	}
	return fhirPeriod{begin: t, last: t}, true
}

// digits parses b as a decimal number of ASCII digits only.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
