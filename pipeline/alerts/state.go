package alerts

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
)

// The patient-alerts value is binary: it is read and rewritten for most
// observations (every NEWS2 reading), and a JSON encoding of it cost more
// than the rest of the observation's processing. Layout, version 3:
//
//	byte     version (3)
//	16 bytes ids filter: an [idFilter] of every observation id the value names
//	uvarint  seq
//	uvarint  length of the open section, then the section:
//	  16 bytes ids filter of the section's observation ids
//	  uvarint  count, then per open alert:
//	    string alertId, ruleId, rule, observationId, severity
//	    varint version; byte flags (1: provisional); 8 bytes value (float64 bits, little endian)
//	    string unit, fingerprint; varint at; varint suppressed
//	    uvarint count, then that many strings: suppressed observation ids
//	    uvarint count, then that many readings: the alert's basis
//	uvarint  count, then per NEWS2 reading:
//	  reading
//
// where a reading is: byte vital; 8 bytes value; varint at; string
// observationId. A string is a uvarint length and its bytes. The open
// section's length lets an observation that only updates a reading carry
// it over unread, filter and all. Version 2, still read, is version 3
// without the bases (its open alerts have none: see [openAlert.Basis]);
// version 1, still read, is version 2 without either filter. An older
// open section is never carried over unread into a version-3 value: it is
// decoded and written afresh.
//
// The filters answer the question most observations ask of the state,
// "does it name me?" (an amendment retracts what its original raised), in
// a few nanoseconds instead of a search through the value: profiled end
// to end, that search was 5% of the alerts pipeline's CPU.
const (
	stateVersion   = 3
	stateVersionV2 = 2
	stateVersionV1 = 1
)

// idFilter is a 128-bit Bloom filter of observation ids, three bits per
// id. A patient's state names a few dozen ids at most, so a clear answer
// ("not named") is right more than eight times in ten even then; a false
// "maybe" costs a search, never a wrong outcome.
type idFilter [2]uint64

// anyID is the filter of a value that has none (version 1): every id may
// be named.
var anyID = idFilter{^uint64(0), ^uint64(0)}

// idBits are id's three bit positions, from its 64-bit FNV-1a hash: a
// hash fixed by the format, since filters are written to the changelog
// and read by other processes.
func idBits(id string) (a, b, c uint) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return uint(h & 127), uint(h >> 7 & 127), uint(h >> 14 & 127)
}

func (f *idFilter) add(id string) {
	a, b, c := idBits(id)
	f[a>>6] |= 1 << (a & 63)
	f[b>>6] |= 1 << (b & 63)
	f[c>>6] |= 1 << (c & 63)
}

// mayName reports whether id may be one of the filter's ids.
func (f idFilter) mayName(id string) bool {
	a, b, c := idBits(id)
	return f[a>>6]&(1<<(a&63)) != 0 && f[b>>6]&(1<<(b&63)) != 0 && f[c>>6]&(1<<(c&63)) != 0
}

func appendFilter(b []byte, f idFilter) []byte {
	b = binary.LittleEndian.AppendUint64(b, f[0])
	return binary.LittleEndian.AppendUint64(b, f[1])
}

func readFilter(b []byte) idFilter {
	return idFilter{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])}
}

// openFilter is the filter of open alerts: their observations, the
// repeats they counted and the observations their NEWS2 scores read (a
// correction of one of those re-scores them).
func openFilter(open []openAlert) idFilter {
	var f idFilter
	for i := range open {
		f.add(open[i].ObservationID)
		for _, id := range open[i].SuppressedIDs {
			f.add(id)
		}
		for j := range open[i].Basis {
			f.add(open[i].Basis[j].ObservationID)
		}
	}
	return f
}

// stateMayName reports whether the patient-alerts value state may name
// observation id, from its filter where it has one.
func stateMayName(state []byte, id string) bool {
	if id == "" {
		return false
	}
	if len(state) > 16 && (state[0] == stateVersion || state[0] == stateVersionV2) {
		if !readFilter(state[1:17]).mayName(id) {
			return false
		}
		state = state[17:]
	}
	return mentions(state, id)
}

// errState: a patient-alerts value that appendState did not write.
var errState = errors.New("patient state is not readable")

func appendState(b []byte, s *patientState) []byte {
	if !s.openLoaded && s.openRaw != nil && s.openVersion != stateVersion {
		// An older section lacks the bases: written afresh. (The
		// applier loads it first, so that an unreadable one counts as
		// a reset; this keeps every other caller's value whole.)
		s.loadOpen()
	}
	open := s.openFilterOf()
	all := open
	for i := range s.Vitals {
		all.add(s.Vitals[i].ObservationID)
	}
	b = append(b, stateVersion)
	b = appendFilter(b, all)
	b = binary.AppendUvarint(b, uint64(s.Seq))
	if !s.openLoaded && s.openRaw != nil {
		b = binary.AppendUvarint(b, uint64(16+len(s.openRaw)))
		b = appendFilter(b, open)
		b = append(b, s.openRaw...)
	} else {
		// The section's length comes first: reserve the most a length
		// can take, write the section, then move it up behind its
		// actual length.
		at := len(b)
		b = append(b, make([]byte, binary.MaxVarintLen64)...)
		start := len(b)
		b = appendFilter(b, open)
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
		b = appendReading(b, &s.Vitals[i])
	}
	return b
}

func appendReading(b []byte, v *storedVital) []byte {
	b = append(b, byte(v.Vital))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Value))
	b = binary.AppendVarint(b, v.At)
	return appendStr(b, v.ObservationID)
}

// reading reads what appendReading wrote; ok is false for a vital out of
// range.
func (r *stateReader) reading() (v storedVital, ok bool) {
	v = storedVital{Vital: vital(r.byte()), Value: r.float(), At: r.varint(), ObservationID: r.str()}
	return v, v.Vital < numVitals
}

// openFilterOf is the filter of s's open alerts: as read when they are
// carried over unread, else worked out from them.
func (s *patientState) openFilterOf() idFilter {
	if !s.openLoaded && s.openRaw != nil {
		return s.openIDs
	}
	return openFilter(s.Open)
}

func appendOpen(b []byte, open []openAlert) []byte {
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
		b = binary.AppendUvarint(b, uint64(len(o.Basis)))
		for j := range o.Basis {
			b = appendReading(b, &o.Basis[j])
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
// leaving the open alerts undecoded (see [patientState.loadOpen]). Its
// strings alias b.
func decodeState(b []byte, st *patientState) error {
	r := stateReader{b: b}
	version := r.byte()
	if version != stateVersion && version != stateVersionV2 && version != stateVersionV1 {
		return errState
	}
	st.openVersion = version
	if version != stateVersionV1 {
		r.bytes(16) // the whole value's filter, for stateMayName
	}
	seq := r.uvarint()
	if seq > math.MaxInt64 {
		return errState
	}
	st.Seq = int64(seq)
	st.openRaw, st.openIDs = r.bytes(r.uvarint()), anyID
	if version != stateVersionV1 {
		if len(st.openRaw) < 16 {
			return errState
		}
		st.openIDs, st.openRaw = readFilter(st.openRaw), st.openRaw[16:]
	}
	st.Vitals = st.Vitals[:0]
	for range r.count() {
		v, ok := r.reading()
		if !ok {
			return errState
		}
		st.Vitals = append(st.Vitals, v)
	}
	if r.bad || len(r.b) != 0 {
		return errState
	}
	return nil
}

// decodeOpen reads an open section that appendOpen wrote into st, in the
// layout of st.openVersion.
func decodeOpen(b []byte, st *patientState) error {
	r := stateReader{b: b}
	st.Open = st.Open[:0]
	for range r.count() {
		o := openAlert{
			AlertID: r.str(), RuleID: r.str(), Rule: r.str(), ObservationID: r.str(), Severity: rules.Severity(r.str()),
			Version: r.varint(), Provisional: r.byte()&1 != 0, Value: r.float(), Unit: r.str(), Fingerprint: r.str(),
			At: r.varint(), Suppressed: r.varint(),
		}
		if n := r.count(); n > 0 {
			o.SuppressedIDs = make([]string, n)
			for i := range o.SuppressedIDs {
				o.SuppressedIDs[i] = r.str()
			}
		}
		if st.openVersion == stateVersion {
			if n := r.count(); n > 0 {
				start := len(st.bases)
				for range n {
					v, ok := r.reading()
					if !ok {
						return errState
					}
					st.bases = append(st.bases, v)
				}
				// Full: rebase makes a new slice, nothing appends.
				o.Basis = st.bases[start:len(st.bases):len(st.bases)]
			}
		}
		st.Open = append(st.Open, o)
	}
	if r.bad || len(r.b) != 0 {
		return errState
	}
	return nil
}
