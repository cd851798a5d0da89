package alerts

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"
)

// The patient-alerts value is binary: it is read and rewritten for most
// observations (every NEWS2 reading), and a JSON encoding of it cost more
// than the rest of the observation's processing. Layout, version 1:
//
//	byte     version (1)
//	uvarint  seq
//	uvarint  length of the open section, then the section:
//	  uvarint  count, then per open alert:
//	    string alertId, ruleId, rule, observationId, severity
//	    varint version; byte flags (1: provisional); 8 bytes value (float64 bits, little endian)
//	    string unit, fingerprint; varint at; varint suppressed
//	    uvarint count, then that many strings: suppressed observation ids
//	uvarint  count, then per NEWS2 reading:
//	  byte vital; 8 bytes value; varint at; string observationId
//
// A string is a uvarint length and its bytes. The open section's length
// lets an observation that only updates a reading carry it over unread.
const stateVersion = 1

// errState: a patient-alerts value that appendState did not write.
var errState = errors.New("patient state is not readable")

func appendState(b []byte, s *PatientState) []byte {
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(s.Seq))
	if !s.openLoaded && s.openRaw != nil {
		b = binary.AppendUvarint(b, uint64(len(s.openRaw)))
		b = append(b, s.openRaw...)
	} else {
		// The section's length comes first: reserve the most a length
		// can take, write the section, then move it up behind its
		// actual length.
		at := len(b)
		b = append(b, make([]byte, binary.MaxVarintLen64)...)
		start := len(b)
		b = appendOpen(b, s.Open)
		n := len(b) - start
		var lenBuf [binary.MaxVarintLen64]byte
		ln := binary.PutUvarint(lenBuf[:], uint64(n))
		copy(b[at:], lenBuf[:ln])
		copy(b[at+ln:], b[start:])
		b = b[:at+ln+n]
	}
	b = binary.AppendUvarint(b, uint64(len(s.Vitals)))
	for i := range s.Vitals {
		v := &s.Vitals[i]
		b = append(b, byte(v.Vital))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Value))
		b = binary.AppendVarint(b, v.At)
		b = appendStr(b, v.ObservationID)
	}
	return b
}

func appendOpen(b []byte, open []OpenAlert) []byte {
	b = binary.AppendUvarint(b, uint64(len(open)))
	for i := range open {
		o := &open[i]
		b = appendStr(b, o.AlertID)
		b = appendStr(b, o.RuleID)
		b = appendStr(b, o.Rule)
		b = appendStr(b, o.ObservationID)
		b = appendStr(b, string(o.Severity))
		b = binary.AppendVarint(b, o.Version)
		var flags byte
		if o.Provisional {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.Value))
		b = appendStr(b, o.Unit)
		b = appendStr(b, o.Fingerprint)
		b = binary.AppendVarint(b, o.At)
		b = binary.AppendVarint(b, o.Suppressed)
		b = binary.AppendUvarint(b, uint64(len(o.SuppressedIDs)))
		for _, id := range o.SuppressedIDs {
			b = appendStr(b, id)
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// stateReader reads the binary state; the first malformed read sets bad
// and every later one returns zero values.
type stateReader struct {
	b   []byte
	bad bool
}

func (r *stateReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// str reads a string that aliases the state.
func (r *stateReader) str() string {
	b := r.bytes(r.uvarint())
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (r *stateReader) byte() byte {
	b := r.bytes(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (r *stateReader) float() float64 {
	b := r.bytes(8)
	if len(b) < 8 {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// count reads an element count, bounded by what the bytes left could
// hold, so that a corrupt count cannot ask for a huge allocation.
func (r *stateReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return 0
	}
	return int(n)
}

// decodeState reads a patient-alerts value that appendState wrote into st,
// leaving the open alerts undecoded (see [PatientState.loadOpen]). Its
// strings alias b.
func decodeState(b []byte, st *PatientState) error {
	r := stateReader{b: b}
	if r.byte() != stateVersion {
		return errState
	}
	seq := r.uvarint()
	if seq > math.MaxInt64 {
		return errState
	}
	st.Seq = int64(seq)
	st.openRaw = r.bytes(r.uvarint())
	st.Vitals = st.Vitals[:0]
	for range r.count() {
		v := StoredVital{Vital: Vital(r.byte()), Value: r.float(), At: r.varint(), ObservationID: r.str()}
		if v.Vital >= NumVitals {
			return errState
		}
		st.Vitals = append(st.Vitals, v)
	}
	if r.bad || len(r.b) != 0 {
		return errState
	}
	return nil
}

// decodeOpen reads an open section that appendOpen wrote into st.
func decodeOpen(b []byte, st *PatientState) error {
	r := stateReader{b: b}
	st.Open = st.Open[:0]
	for range r.count() {
		o := OpenAlert{
			AlertID: r.str(), RuleID: r.str(), Rule: r.str(), ObservationID: r.str(), Severity: Severity(r.str()),
			Version: r.varint(), Provisional: r.byte()&1 != 0, Value: r.float(), Unit: r.str(), Fingerprint: r.str(),
			At: r.varint(), Suppressed: r.varint(),
		}
		if n := r.count(); n > 0 {
			o.SuppressedIDs = make([]string, n)
			for i := range o.SuppressedIDs {
				o.SuppressedIDs[i] = r.str()
			}
		}
		st.Open = append(st.Open, o)
	}
	if r.bad || len(r.b) != 0 {
		return errState
	}
	return nil
}
