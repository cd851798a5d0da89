package datasync

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Debezium writes a temporal column as a number whose unit only its schema
// names: io.debezium.time.Date is days since the epoch, MicroTimestamp
// microseconds, and so on. With the JSON converter's schemas on, each such
// column is converted here, by its schema name, to the ISO 8601 text the
// canonical fields hold, before the row is mapped. Without schemas a number
// in a canonical date or time field is an error (see bareTemporal): days,
// milliseconds, microseconds and nanoseconds cannot be told apart, and a
// guess would silently move a date or make a change win for ever.

// Schema names of Debezium's and Kafka Connect's temporal types.
const (
	dbzDate           = "io.debezium.time.Date"
	dbzTime           = "io.debezium.time.Time"
	dbzMicroTime      = "io.debezium.time.MicroTime"
	dbzNanoTime       = "io.debezium.time.NanoTime"
	dbzTimestamp      = "io.debezium.time.Timestamp"
	dbzMicroTimestamp = "io.debezium.time.MicroTimestamp"
	dbzNanoTimestamp  = "io.debezium.time.NanoTimestamp"
	dbzZonedTimestamp = "io.debezium.time.ZonedTimestamp"
	dbzZonedTime      = "io.debezium.time.ZonedTime"
	dbzYear           = "io.debezium.time.Year"
	dbzIsoDate        = "io.debezium.time.IsoDate"
	dbzIsoTime        = "io.debezium.time.IsoTime"
	dbzIsoTimestamp   = "io.debezium.time.IsoTimestamp"
	connectDate       = "org.apache.kafka.connect.data.Date"
	connectTime       = "org.apache.kafka.connect.data.Time"
	connectTimestamp  = "org.apache.kafka.connect.data.Timestamp"
)

// rowSchema is the schema of an envelope's image ("before" or "after"):
// the struct field of that name in the envelope's schema; nil when there is
// none.
func rowSchema(schema any, image string) any {
	s, _ := schema.(map[string]any)
	fields, _ := s["fields"].([]any)
	for _, fv := range fields {
		if f, ok := fv.(map[string]any); ok && f["field"] == image {
			return f
		}
	}
	return nil
}

// convertTemporal replaces, in row, the value of each column whose schema
// (in the struct schema s) names a temporal type by its ISO 8601 text. A
// value of the wrong type for its schema is an error naming the column.
func convertTemporal(e Entity, row map[string]any, s any) error {
	st, _ := s.(map[string]any)
	fields, _ := st["fields"].([]any)
	for _, fv := range fields {
		f, ok := fv.(map[string]any)
		if !ok {
			continue
		}
		col, _ := f["field"].(string)
		name, _ := f["name"].(string)
		v, present := row[col]
		if !present || v == nil || !strings.HasPrefix(name, "io.debezium.time.") && !strings.HasPrefix(name, "org.apache.kafka.connect.data.") {
			continue
		}
		text, err := temporalText(name, v)
		if err != nil {
			return unmappablef("%s: column %q (%s): %s", e, col, name, err)
		}
		if text != "" {
			row[col] = text
		}
	}
	return nil
}

// temporalText is the ISO 8601 text of value v of temporal type name; ""
// for a name that is not a temporal type (a Decimal, say): left as it is.
// Debezium's Timestamp, MicroTimestamp and NanoTimestamp carry no time
// zone (a column without one, converted as if UTC): they are written in
// UTC, with a Z.
func temporalText(name string, v any) (string, error) {
	switch name {
	case dbzZonedTimestamp, dbzIsoTimestamp:
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("is %s, want an ISO 8601 string", jsonKind(v))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return "", fmt.Errorf("is not an ISO 8601 time with an offset")
		}
		return t.Format(time.RFC3339Nano), nil
	case dbzZonedTime, dbzIsoDate, dbzIsoTime:
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("is %s, want an ISO 8601 string", jsonKind(v))
		}
		return s, nil
	case dbzDate, connectDate, dbzYear, dbzTime, connectTime, dbzMicroTime, dbzNanoTime,
		dbzTimestamp, connectTimestamp, dbzMicroTimestamp, dbzNanoTimestamp:
	default:
		return "", nil
	}
	num, ok := v.(json.Number)
	if !ok {
		return "", fmt.Errorf("is %s, want an integer", jsonKind(v))
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		return "", fmt.Errorf("is not an integer")
	}
	switch name {
	case dbzDate, connectDate:
		const maxDays = 3_000_000 // beyond year 10,000 either way
		if n < -maxDays || n > maxDays {
			return "", fmt.Errorf("is out of the range of days since the epoch")
		}
		return time.Unix(n*86400, 0).UTC().Format(time.DateOnly), nil
	case dbzYear:
		if n < 1 || n > 9999 {
			return "", fmt.Errorf("is not a year of four digits")
		}
		return fmt.Sprintf("%04d", n), nil
	case dbzTime, connectTime:
		return timeOfDay(n, int64(time.Millisecond))
	case dbzMicroTime:
		return timeOfDay(n, int64(time.Microsecond))
	case dbzNanoTime:
		return timeOfDay(n, 1)
	case dbzTimestamp, connectTimestamp:
		return time.UnixMilli(n).UTC().Format(time.RFC3339Nano), nil
	case dbzMicroTimestamp:
		return time.UnixMicro(n).UTC().Format(time.RFC3339Nano), nil
	}
	return time.Unix(0, n).UTC().Format(time.RFC3339Nano), nil // NanoTimestamp
}

// timeOfDay is n units (in ns) past midnight as HH:MM:SS with the
// fraction the unit carries, trailing zeros trimmed.
func timeOfDay(n, unit int64) (string, error) {
	if n < 0 || n > 24*int64(time.Hour)/unit {
		return "", fmt.Errorf("is out of the range of a time of day")
	}
	d := time.Duration(n * unit)
	s := fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	if frac := d % time.Second; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", int64(frac)), "0")
	}
	return s, nil
}

// temporalFields are the canonical fields of an entity that hold a date or
// a date and time.
func temporalFields(e Entity) []string {
	switch e {
	case Patient:
		return []string{"dateOfBirth"}
	case Encounter:
		return []string{"start", "end"}
	case Observation:
		return []string{"effectiveDateTime"}
	}
	return nil
}

// probeMark starts the text that stands for a number in a probe row.
const probeMark = "\x00number:"

// bareTemporal reports a canonical date or time field mapped from a number
// of row r: fields are r's mapped fields, typed says whether the converter
// carried schemas. A field whose text is not all digits did not come from a
// number and costs nothing more; one that is (a number, or a year as text)
// is told apart by mapping r again with every number replaced by a mark
// naming its column.
func (m *mapping) bareTemporal(r map[string]any, fields Fields, id string, typed bool) error {
	var suspects []string
	for _, f := range temporalFields(m.entity) {
		var s string
		if json.Unmarshal(fields[f], &s) == nil && isInteger(s) {
			suspects = append(suspects, f)
		}
	}
	if len(suspects) == 0 {
		return nil
	}
	probe := &rowReader{entity: m.entity, r: markNumbers(r, "").(map[string]any)}
	pf, err := FieldsOf(m.record(probe, id))
	if err != nil || probe.err != nil {
		return nil // the probe reads what the mapping read: unreachable
	}
	for _, f := range suspects {
		var s string
		if json.Unmarshal(pf[f], &s) != nil || !strings.HasPrefix(s, probeMark) {
			continue
		}
		col := strings.TrimPrefix(s, probeMark)
		if typed {
			return unmappablef("%s: column %q for %s is a number whose schema names no temporal type: its unit is unknown", m.entity, col, f)
		}
		return unmappablef("%s: column %q for %s is a number without a schema: days, milliseconds, microseconds and nanoseconds since the epoch cannot be told apart (enable the JSON converter's schemas or send ISO 8601 text)", m.entity, col, f)
	}
	return nil
}

func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// markNumbers is a copy of v with every number replaced by probeMark and
// its path.
func markNumbers(v any, path string) any {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch v := v.(type) {
	case json.Number:
		return probeMark + path
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = markNumbers(x, join(k))
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = markNumbers(x, fmt.Sprintf("%s[%d]", path, i))
		}
		return out
	}
	return v
}
