package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/bytedance/sonic"
)

// Metadata is the envelope's metadata object. Its strings may share memory
// with the value they were parsed from (see [Unmarshal]).
type Metadata struct {
	EventID       string
	EventType     string
	EventSource   string
	CorrelationID string
	// Timestamp is metadata.timestamp, from ms since the epoch or RFC 3339;
	// zero when absent.
	Timestamp time.Time
}

var (
	// ErrSyntax: the value is not JSON.
	ErrSyntax = errors.New("value is not valid JSON")
	// ErrShape: the value is JSON of the wrong shape (a payload that is not
	// an object, a metadata field of the wrong type).
	ErrShape = errors.New("value does not have the expected shape")
	// ErrTimestamp: metadata.timestamp is neither ms since the epoch nor an
	// RFC 3339 time.
	ErrTimestamp = errors.New("metadata timestamp is neither ms since epoch nor RFC 3339")
)

// Error is a value that could not be decoded. Err is one of [ErrSyntax],
// [ErrShape] or [ErrTimestamp]; Offset is the byte offset at which a syntax
// error was found (as encoding/json counts it), -1 when not known. Its
// message never quotes the value.
type Error struct {
	Err    error
	Offset int
}

func (e *Error) Error() string {
	if e.Offset >= 0 {
		return e.Err.Error() + " at byte offset " + strconv.Itoa(e.Offset)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// wire is the envelope as sonic decodes it: the payload is kept as a
// reference into the value, so nothing of it is decoded.
type wire struct {
	Metadata RawMetadata            `json:"metadata"`
	Payload  sonic.NoCopyRawMessage `json:"payload"`
}

// RawMetadata is the metadata object as decoded, its timestamp still raw.
// Pipelines that decode envelope and payload in one pass embed it in their
// own wire struct under the "metadata" key and call [RawMetadata.Metadata].
type RawMetadata struct {
	EventID       string                 `json:"eventId"`
	EventType     string                 `json:"eventType"`
	EventSource   string                 `json:"eventSource"`
	CorrelationID string                 `json:"correlationId"`
	Timestamp     sonic.NoCopyRawMessage `json:"timestamp"`
}

// Metadata converts m, parsing its timestamp. The only error is an *[Error]
// wrapping [ErrTimestamp].
func (m *RawMetadata) Metadata() (Metadata, error) {
	md := Metadata{
		EventID:       m.EventID,
		EventType:     m.EventType,
		EventSource:   m.EventSource,
		CorrelationID: m.CorrelationID,
	}
	if len(m.Timestamp) > 0 && !isNull(m.Timestamp) {
		t, err := parseTimestamp(m.Timestamp)
		if err != nil {
			return Metadata{}, err
		}
		md.Timestamp = t
	}
	return md, nil
}

// Parse splits value into its metadata and the payload's raw bytes. A value
// with a "payload" key (not null) is an envelope; any other JSON value is a
// bare payload, returned whole with zero Metadata. The payload is not
// decoded beyond finding its end; it aliases value.
//
// Errors are *[Error]: [ErrSyntax] when value is not JSON, [ErrShape] when it
// is not an object or a metadata field has the wrong type, [ErrTimestamp]
// for an unreadable timestamp.
func Parse(value []byte) (Metadata, []byte, error) {
	var w wire
	if err := Unmarshal(value, &w); err != nil {
		return Metadata{}, nil, err
	}
	if len(w.Payload) == 0 || isNull(w.Payload) {
		return Metadata{}, value, nil
	}
	m, err := w.Metadata.Metadata()
	if err != nil {
		return Metadata{}, nil, err
	}
	return m, w.Payload, nil
}

// Decode parses value as [Parse] does and decodes the payload into v with
// [Unmarshal]. Error offsets are into value.
func Decode(value []byte, v any) (Metadata, error) {
	m, payload, err := Parse(value)
	if err != nil {
		return Metadata{}, err
	}
	if err := Unmarshal(payload, v); err != nil {
		if e := (*Error)(nil); errors.As(err, &e) && e.Offset >= 0 {
			e.Offset += offsetIn(value, payload)
		}
		return Metadata{}, err
	}
	return m, nil
}

// api is sonic's default configuration, but matching keys case-sensitively
// as the contracts spell them (FHIR and the envelope are case-sensitive).
var api = sonic.Config{CaseSensitive: true}.Froze()

// Unmarshal decodes JSON data into v with sonic, unknown fields ignored and
// keys matched case-sensitively. Any failure comes back as an *[Error] that
// does not quote data: sonic's own errors do, so they are never returned.
//
// Strings and raw messages decoded into v share memory with data (sonic's
// []byte API copies the whole input first; this does not): data must not be
// modified while they are in use. Copy what is kept longer than the record.
func Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return &Error{Err: ErrSyntax, Offset: 0}
	}
	err := api.UnmarshalFromString(unsafe.String(unsafe.SliceData(data), len(data)), v)
	if err == nil {
		return nil
	}
	// Rare path: find out whether data is JSON at all, and where it
	// breaks, with the standard library, whose error carries an offset.
	var raw json.RawMessage
	var se *json.SyntaxError
	if jerr := json.Unmarshal(data, &raw); errors.As(jerr, &se) {
		return &Error{Err: ErrSyntax, Offset: int(se.Offset)}
	} else if jerr != nil {
		return &Error{Err: ErrSyntax, Offset: 0}
	}
	return &Error{Err: ErrShape, Offset: -1}
}

// offsetIn is the offset of sub within value, 0 if sub is not inside it.
func offsetIn(value, sub []byte) int {
	if len(value) == 0 || len(sub) == 0 {
		return 0
	}
	d := uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(value)))
	if d > uintptr(len(value)) {
		return 0
	}
	return int(d)
}

func isNull(b []byte) bool { return string(b) == "null" }

// Timestamps are bounded to years 0001..9999 so that they stay
// representable and RFC 3339 formattable.
const (
	minTimestampMs = -62135596800000
	maxTimestampMs = 253402300799999
)

// errBadTimestamp is built on failure only: built up front, it was an
// allocation on every enveloped record.
func errBadTimestamp() error { return &Error{Err: ErrTimestamp, Offset: -1} }

func parseTimestamp(raw []byte) (time.Time, error) {
	if raw[0] == '"' {
		var s string
		if n := len(raw); n >= 2 && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			// No escapes: the string is the bytes between the quotes
			// (raw is a validated JSON value), read in place.
			s = unsafe.String(&raw[1], n-2)
		} else if err := Unmarshal(raw, &s); err != nil {
			return time.Time{}, errBadTimestamp()
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, errBadTimestamp()
		}
		return t, nil
	}
	if ms, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		if ms < minTimestampMs || ms > maxTimestampMs {
			return time.Time{}, errBadTimestamp()
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !(f >= minTimestampMs && f <= maxTimestampMs) {
		return time.Time{}, errBadTimestamp()
	}
	ms := math.Floor(f)
	return time.UnixMilli(int64(ms)).Add(time.Duration((f - ms) * float64(time.Millisecond))).UTC(), nil
}
