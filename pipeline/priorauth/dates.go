package priorauth

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// period is a date field as read: the span of time it names. A date and
// time names an instant (start equals end); a date alone names its day (a
// month or a year, FHIR's partial dates, name theirs), from the first
// instant of the day in the payer's time zone to the first instant of the
// next day, exclusive.
type period struct {
	start, end time.Time
	// dateOnly: the value had no time of day.
	dateOnly bool
}

// dateForms are the forms read: FHIR date (YYYY, YYYY-MM, YYYY-MM-DD),
// dateTime and instant (a time with minutes, optional seconds and a
// fraction of up to nine digits, and an offset Z, ±hh:mm, ±hhmm or ±hh
// up to 14 hours; no leap second);
// and the basic form YYYYMMDD, which is X12's D8 date format (CCYYMMDD).
// A time without an offset is read in the payer's time zone.
var (
	extendedForm = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?)?)?$`)
	basicDate    = regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})$`)
)

// parsePeriod reads s, a date field, in zone (the payer's time zone, for
// a date alone and a time without an offset). The error names what is
// wrong, never the value.
func parsePeriod(s string, zone *time.Location) (period, error) {
	m := extendedForm.FindStringSubmatch(s)
	if m == nil {
		b := basicDate.FindStringSubmatch(s)
		if b == nil {
			return period{}, fmt.Errorf("is not a FHIR date, dateTime or instant (2025-09-01, 2025-09-01T14:30:00-05:00) nor an X12 D8 date (20250901)")
		}
		m = []string{b[0], b[1], b[2], b[3], "", "", "", "", ""}
	}
	num := func(v string, def int) int {
		if v == "" {
			return def
		}
		n, _ := strconv.Atoi(v) // the pattern admits digits alone
		return n
	}
	y, mo, d := num(m[1], 1), num(m[2], 1), num(m[3], 1)
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, time.Month(mo)) {
		return period{}, fmt.Errorf("is not a calendar date")
	}
	if m[4] == "" {
		start := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, zone)
		var end time.Time
		switch {
		case m[2] == "":
			end = time.Date(y+1, 1, 1, 0, 0, 0, 0, zone)
		case m[3] == "":
			end = time.Date(y, time.Month(mo)+1, 1, 0, 0, 0, 0, zone)
		default:
			end = time.Date(y, time.Month(mo), d+1, 0, 0, 0, 0, zone)
		}
		return period{start: start, end: end, dateOnly: true}, nil
	}
	h, mi, sec := num(m[4], 0), num(m[5], 0), num(m[6], 0)
	if h > 23 || mi > 59 || sec > 59 {
		return period{}, fmt.Errorf("has a time of day out of range")
	}
	ns := 0
	if f := m[7]; f != "" {
		ns = num(f, 0)
		for i := len(f); i < 9; i++ {
			ns *= 10
		}
	}
	loc := zone
	switch off := m[8]; {
	case off == "Z" || off == "z":
		loc = time.UTC
	case off != "":
		oh, om := num(off[1:3], 0), 0
		if len(off) > 3 {
			om = num(off[len(off)-2:], 0)
		}
		// FHIR's bounds: -14:00 to +14:00, as real zones go.
		if om > 59 || oh*60+om > 14*60 {
			return period{}, fmt.Errorf("has an offset out of range")
		}
		secs := oh*3600 + om*60
		if off[0] == '-' {
			secs = -secs
		}
		loc = time.FixedZone("", secs)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc)
	return period{start: t, end: t}, nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// eventTime is when an event dated p happened, given the record's own
// time (its envelope timestamp, else its Kafka timestamp). A date and
// time is itself. A date alone says the day and not the hour: the record's
// time when it falls within that day, else the nearest instant of the
// day. So a submission reported on its day keeps its hour, and its
// decision deadline runs from then, not from midnight (which would bring
// a false breach up to a day early), and a report delivered days late
// still dates the event on its own day.
func (p period) eventTime(recordTime time.Time) time.Time {
	switch {
	case !p.dateOnly:
		return p.start
	case recordTime.IsZero() || recordTime.Before(p.start):
		return p.start
	case !recordTime.Before(p.end):
		return p.end.Add(-time.Nanosecond)
	}
	return recordTime
}
