package pipeline

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/envelope"
)

// Carried headers. Each input's trace context (W3C traceparent and
// tracestate) and the headers named by [WithCarriedHeaders] go to every
// record emitted while it is processed, unless the emitted record sets
// the header itself: the runtime copies them at [Context.Emit], so that no
// processor has to. A repartitioned record carries all its input's
// headers anyway, and an error record is its input whole. Records a
// punctuation emits have no input and carry nothing.
//
// Only what is valid is carried; the rest is dropped, and counted by
// carepipe_invalid_headers_total{pipeline,header}, header being
// traceparent, tracestate or other (a header of WithCarriedHeaders):
//
//   - traceparent: one header, valid as [envelope.ValidTraceparent] says.
//     Two traceparent headers are invalid, as in HTTP.
//   - tracestate: only with a valid traceparent (the Recommendation's
//     processing model discards it otherwise); several headers are one
//     list joined by commas; valid as [envelope.ValidTracestate] says.
//   - others: the first header of each key, when it is text of at most
//     maxCarriedHeaderBytes.
//
// The counter's header correlation-id counts inputs whose correlation-id
// header is not valid ([envelope.ValidCorrelationID]): processors, which
// write the outputs' correlation ids, take it as absent and use the
// metadata's or a derived one instead ([envelope.CorrelationID]).
//
// Header keys are matched exactly, in lowercase as the Recommendation
// asks them to be sent. A record that comes back from a repartition topic
// is not counted again: its input was.
const (
	// maxCarriedHeaderBytes bounds a header of WithCarriedHeaders: 8 KiB,
	// the least a W3C Baggage header must be allowed.
	maxCarriedHeaderBytes = 8 << 10
	// maxCarriedHeaderKeys bounds WithCarriedHeaders.
	maxCarriedHeaderKeys = 16
)

// invalidHeaders is a set of header classes an input brought invalid.
type invalidHeaders uint8

const (
	invalidCorrelationID invalidHeaders = 1 << iota
	invalidTraceparent
	invalidTracestate
	invalidOther
	invalidClasses = 4
)

// invalidHeaderLabels are the values of the header label, by bit.
var invalidHeaderLabels = [invalidClasses]string{"correlation-id", "traceparent", "tracestate", "other"}

// WithCarriedHeaders names headers, besides the trace context, that are
// carried from each input to the records derived from it (see the package
// documentation, "Headers follow what is derived"). traceparent and tracestate are
// always carried; the headers every output sets (correlation-id,
// event-source, event-type) cannot be named. At most 16 keys, each
// printable ASCII without spaces.
func WithCarriedHeaders(keys ...string) Option {
	return func(c *cfg) {
		for _, k := range keys {
			if k != envelope.HeaderTraceparent && k != envelope.HeaderTracestate && !slices.Contains(c.carried, k) {
				c.carried = append(c.carried, k)
			}
		}
	}
}

// CheckCarriedHeaders reports every key [WithCarriedHeaders] would refuse.
func CheckCarriedHeaders(keys ...string) error {
	var errs []error
	n := 0
	for _, k := range keys {
		switch k {
		case envelope.HeaderTraceparent, envelope.HeaderTracestate:
			continue // always carried
		case envelope.HeaderCorrelationID, envelope.HeaderEventSource, envelope.HeaderEventType:
			errs = append(errs, fmt.Errorf("carried header %q: every output sets its own", k))
			continue
		}
		n++
		if k == "" {
			errs = append(errs, errors.New("carried header: empty key"))
			continue
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] > '~' {
				errs = append(errs, fmt.Errorf("carried header %q: a key is printable ASCII without spaces", k))
				break
			}
		}
	}
	if n > maxCarriedHeaderKeys {
		errs = append(errs, fmt.Errorf("%d carried headers: at most %d", n, maxCarriedHeaderKeys))
	}
	return errors.Join(errs...)
}

// begin makes rec the record being processed (nil for a punctuation),
// works out what its outputs carry, and returns the classes of headers it
// brought invalid.
func (t *task) begin(rec *kgo.Record) invalidHeaders {
	t.current = rec
	if len(t.carry) > 0 {
		clear(t.carry)
		t.carry = t.carry[:0]
	}
	if rec == nil || len(rec.Headers) == 0 {
		return 0
	}
	return t.scanHeaders(rec)
}

// beginInput is begin for a record the runtime consumed: it also counts
// the invalid headers of an input, not those of a repartitioned copy.
func (t *task) beginInput(rec *kgo.Record) {
	bad := t.begin(rec)
	if bad == 0 {
		return
	}
	for _, topic := range t.r.repartitions {
		if topic == rec.Topic {
			return
		}
	}
	for i := range invalidClasses {
		if bad&(1<<i) != 0 {
			t.r.m.invalidHeaders[i].Inc()
		}
	}
}

func (t *task) scanHeaders(rec *kgo.Record) invalidHeaders {
	var (
		bad         invalidHeaders
		parent      = -1 // index of the traceparent header
		parents     int
		states      []int // indexes of the tracestate headers
		seenCarried uint32
	)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		switch h.Key {
		case envelope.HeaderCorrelationID:
			if len(h.Value) > 0 && !envelope.ValidCorrelationID(h.Value) {
				bad |= invalidCorrelationID
			}
		case envelope.HeaderTraceparent:
			parents++
			parent = i
		case envelope.HeaderTracestate:
			states = append(states, i)
		default:
			k := slices.Index(t.r.cfg.carried, h.Key)
			if k < 0 || seenCarried&(1<<k) != 0 {
				continue
			}
			seenCarried |= 1 << k
			if envelope.ValidText(h.Value, maxCarriedHeaderBytes) {
				t.carry = append(t.carry, *h)
			} else {
				bad |= invalidOther
			}
		}
	}
	if parents == 0 {
		if len(states) > 0 {
			bad |= invalidTracestate
		}
		return bad
	}
	if parents > 1 || !envelope.ValidTraceparent(rec.Headers[parent].Value) {
		bad |= invalidTraceparent
		if len(states) > 0 {
			bad |= invalidTracestate
		}
		return bad
	}
	t.carry = append(t.carry, rec.Headers[parent])
	if len(states) == 0 {
		return bad
	}
	state := rec.Headers[states[0]]
	if len(states) > 1 {
		// Several fields of one list, in order (RFC 9110, "Field Order").
		var v []byte
		for j, i := range states {
			if j > 0 {
				v = append(v, ',')
			}
			v = append(v, rec.Headers[i].Value...)
		}
		state.Value = v
	}
	if envelope.ValidTracestate(state.Value) {
		t.carry = append(t.carry, state)
	} else {
		bad |= invalidTracestate
	}
	return bad
}

// carryTo adds to r the carried headers of the record being processed
// that r does not set. r's headers are copied, not appended to: their
// array may be shared.
func (t *task) carryTo(r *kgo.Record) {
	missing := 0
	for i := range t.carry {
		if !hasHeader(r.Headers, t.carry[i].Key) {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	hs := make([]kgo.RecordHeader, len(r.Headers), len(r.Headers)+missing)
	copy(hs, r.Headers)
	for i := range t.carry {
		if !hasHeader(r.Headers, t.carry[i].Key) {
			hs = append(hs, t.carry[i])
		}
	}
	r.Headers = hs
}

func hasHeader(hs []kgo.RecordHeader, key string) bool {
	for i := range hs {
		if hs[i].Key == key {
			return true
		}
	}
	return false
}
