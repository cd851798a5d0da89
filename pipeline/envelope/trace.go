package envelope

import (
	"unicode"
	"unicode/utf8"
)

// Header keys of W3C Trace Context (Trace Context, W3C Recommendation,
// https://www.w3.org/TR/trace-context/, "Traceparent Header" and
// "Tracestate Header"). carepipe does not trace: it passes both through,
// from each input to the records derived from it, as the Recommendation's
// "Alternative Processing" lets messaging middleware do, and drops what is
// invalid instead of passing it on.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Bounds of the headers carried from an input to its outputs.
const (
	// MaxCorrelationIDBytes bounds a correlation id taken from an input.
	// Ids are UUIDs (36 bytes), hex digests (32) or short business keys;
	// 256 leaves room for any of those with a prefix.
	MaxCorrelationIDBytes = 256
	// MaxTracestateBytes bounds a tracestate. The Recommendation asks
	// that at least 512 characters be propagated ("tracestate Limits"),
	// and its list of at most 32 members is meant to fit in that.
	MaxTracestateBytes = 512
	// maxTraceparentBytes bounds a traceparent of a version after 00,
	// whose fields after the first four carepipe cannot know: version 00
	// is exactly 55 characters.
	maxTraceparentBytes = 256
	traceparentV00Bytes = 55
)

// ValidText reports whether b is at most maxBytes long and text: UTF-8
// without control characters (C0, DEL and C1), so that it can be written
// to a log line or a terminal as it is. The empty value is text.
func ValidText[T string | []byte](b T, maxBytes int) bool {
	if len(b) > maxBytes {
		return false
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(string(b[i:min(i+utf8.UTFMax, len(b))]))
		if r == utf8.RuneError && n == 1 || unicode.IsControl(r) {
			return false
		}
		i += n
	}
	return true
}

// ValidCorrelationID reports whether v may be carried as a correlation
// id: non-empty text of at most [MaxCorrelationIDBytes].
func ValidCorrelationID[T string | []byte](v T) bool {
	return len(v) > 0 && ValidText(v, MaxCorrelationIDBytes)
}

// ValidTraceparent reports whether v is a traceparent that may be passed
// on (Trace Context, "traceparent Header Field Values" and "Versioning of
// traceparent"): version "-" trace-id "-" parent-id "-" trace-flags, in
// lowercase hex, of 2, 32, 16 and 2 digits; the version not ff; neither id
// all zeros. Version 00 is exactly that; a later version may go on after
// a further "-", which is not read. Surrounding spaces, which HTTP would
// strip, make it invalid: a Kafka header has no optional whitespace.
func ValidTraceparent(v []byte) bool {
	n := len(v)
	if n < traceparentV00Bytes || n > maxTraceparentBytes {
		return false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	var traceID, parentID byte // OR of the ids' digits less '0': 0 if all zeros
	for i := 0; i < traceparentV00Bytes; i++ {
		c := v[i]
		switch {
		case i == 2 || i == 35 || i == 52:
			continue
		case charClass[c]&classHex == 0:
			return false
		case i > 2 && i < 35:
			traceID |= c - '0'
		case i > 35 && i < 52:
			parentID |= c - '0'
		}
	}
	if traceID == 0 || parentID == 0 {
		return false
	}
	switch {
	case v[0] == 'f' && v[1] == 'f':
		return false
	case v[0] == '0' && v[1] == '0':
		return n == traceparentV00Bytes
	case n > traceparentV00Bytes:
		// A later version: what follows the first four fields must
		// start a further one, and be text.
		return v[55] == '-' && ValidText(v[traceparentV00Bytes:], maxTraceparentBytes)
	}
	return true
}

// ValidTracestate reports whether v may be passed on as a tracestate: at
// most [MaxTracestateBytes], and a list of at most 32 list-members, each
// empty or key=value, as "tracestate Header Field Values" defines them
// (optional spaces and tabs around a member, which that grammar allows).
// The empty value is valid.
func ValidTracestate(v []byte) bool {
	if len(v) > MaxTracestateBytes {
		return false
	}
	members := 0
	for start := 0; start <= len(v); {
		end := start
		for end < len(v) && v[end] != ',' {
			end++
		}
		m := trimOWS(v[start:end])
		if len(m) > 0 {
			members++
			if members > 32 || !validListMember(m) {
				return false
			}
		}
		start = end + 1
	}
	return true
}

// validListMember reports whether m is key "=" value: key = (lcalpha /
// DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"); value =
// 0*255(chr) nblk-chr, chr printable ASCII but "," and "=".
func validListMember(m []byte) bool {
	if len(m) == 0 || charClass[m[0]]&classKeyStart == 0 {
		return false
	}
	eq := 1
	for eq < len(m) && charClass[m[eq]]&classKey != 0 {
		eq++
	}
	if eq > 256 || eq == len(m) || m[eq] != '=' {
		return false
	}
	value := m[eq+1:]
	if len(value) == 0 || len(value) > 256 || value[len(value)-1] == ' ' {
		return false
	}
	for _, c := range value {
		if charClass[c]&classValue == 0 {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Character classes of the traceparent and tracestate grammars.
const (
	classHex      = 1 << iota // HEXDIGLC
	classKeyStart             // lcalpha / DIGIT
	classKey                  // keychar
	classValue                // chr: %x20-2B / %x2D-3C / %x3E-7E
)

var charClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= classHex | classKeyStart | classKey
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= classKeyStart | classKey
		if c <= 'f' {
			t[c] |= classHex
		}
	}
	for _, c := range "_-*/@" {
		t[c] |= classKey
	}
	for c := 0x20; c <= 0x7e; c++ {
		if c != ',' && c != '=' {
			t[c] |= classValue
		}
	}
	return t
}()
