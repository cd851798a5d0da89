package ops

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// The error headers the runner appends to a failed record's own headers
// (pipeline/errorrecord.go), in this order; a truncated error record has
// more after source-offset.
const (
	headerErrorType       = "error-type"
	headerErrorMessage    = "error-message"
	headerSourceTopic     = "source-topic"
	headerSourcePartition = "source-partition"
	headerSourceOffset    = "source-offset"
)

// ErrorRecord is one record of an error topic, read apart: where it is,
// why its original failed, where the original came from, and the
// original itself when it can be recovered whole.
type ErrorRecord struct {
	// Topic, Partition and Offset are the error record's coordinates.
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the error record's, which is its original's: the
	// runner keeps the failed record's timestamp.
	Timestamp time.Time
	// Type is the error-type header (decode, invalid, oversized,
	// processing, panic, conflict, oversized-truncated).
	Type string
	// OriginalType is, for a truncated error record, the class the
	// original failed with (original-error-type).
	OriginalType string
	// Message is the error-message header. Error messages never quote
	// record content (pipeline.RecordError), but a panic's may: print it
	// only when a record is shown.
	Message string
	// SourceTopic, SourcePartition and SourceOffset say where the
	// original was read.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	// KeyBytes and ValueBytes are the sizes of the original's key and
	// value (for a truncated record, the value's from original-value-bytes).
	KeyBytes, ValueBytes int
	// Headers are every header of the error record, the original's first.
	Headers []kgo.RecordHeader
	// Original is the record as it was on its source topic (topic,
	// partition, key, value, headers, timestamp; offset -1), or nil when
	// it cannot be recovered byte for byte: Unreplayable says why. A
	// truncated error record's original is the record at its source
	// coordinates, while that topic still holds it and its SHA-256 sums
	// match.
	Original     *kgo.Record
	Unreplayable string
}

// Coordinates names the error record: topic/partition/offset.
func (e *ErrorRecord) Coordinates() string {
	return e.Topic + "/" + strconv.Itoa(int(e.Partition)) + "/" + strconv.FormatInt(e.Offset, 10)
}

// originalValueFunc recovers an original value from an error record's
// value: nil when the error topic's value is the original verbatim.
type originalValueFunc func(errorValue []byte) ([]byte, error)

// originalValueOf returns how the originals of errorTopic's records are
// recovered, from the specs that write to it. A spec with an ErrorValue and
// no OriginalValue makes them unrecoverable: ok is false.
func originalValueOf(specs []pipeline.Spec, errorTopic string) (f originalValueFunc, ok bool) {
	ok = true
	for i := range specs {
		s := &specs[i]
		if s.ErrorTopic != errorTopic || s.ErrorValue == nil {
			continue
		}
		if s.OriginalValue == nil {
			return nil, false
		}
		f = s.OriginalValue
	}
	return f, ok
}

// parseErrorRecord reads r, a record of an error topic, apart. original
// recovers the original value (nil: the value is the original);
// unrecoverable says the error topic wraps values that cannot be
// recovered. A record that is not an error record of carepipe's is
// returned with Type "" and Unreplayable saying so.
func parseErrorRecord(r *kgo.Record, original originalValueFunc, unrecoverable bool) *ErrorRecord {
	e := &ErrorRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Headers: r.Headers, KeyBytes: len(r.Key), SourcePartition: -1, SourceOffset: -1,
	}
	// The error headers begin at the last error-type followed by an
	// error-message: the original's own headers come before them, and
	// an original could carry an error-type of its own.
	at := -1
	for i := len(r.Headers) - 2; i >= 0; i-- {
		if r.Headers[i].Key == headerErrorType && r.Headers[i+1].Key == headerErrorMessage {
			at = i
			break
		}
	}
	if at < 0 {
		e.Unreplayable = "no error headers: not an error record of carepipe"
		return e
	}
	meta := map[string]string{}
	for _, h := range r.Headers[at:] {
		if _, dup := meta[h.Key]; !dup {
			meta[h.Key] = string(h.Value)
		}
	}
	e.Type = meta[headerErrorType]
	e.Message = meta[headerErrorMessage]
	e.OriginalType = meta[pipeline.HeaderOriginalErrorType]
	e.SourceTopic = meta[headerSourceTopic]
	p, perr := strconv.ParseInt(meta[headerSourcePartition], 10, 32)
	o, oerr := strconv.ParseInt(meta[headerSourceOffset], 10, 64)
	if e.SourceTopic == "" || perr != nil || oerr != nil || p < 0 || o < 0 {
		e.Unreplayable = "error headers without a source topic, partition and offset"
		return e
	}
	e.SourcePartition, e.SourceOffset = int32(p), o
	if e.Type == string(pipeline.TypeTruncated) {
		e.ValueBytes, _ = strconv.Atoi(meta[pipeline.HeaderOriginalValueSize])
		// Its original may still be on its source topic: see
		// recoverFromSource.
		e.Unreplayable = "truncated: the error record holds only the head of the original"
		return e
	}
	if len(r.Headers)-at != 5 {
		e.Unreplayable = "error headers other than the five of a whole error record"
		return e
	}
	value := r.Value
	switch {
	case unrecoverable:
		e.Unreplayable = "the pipeline wraps its originals in a value it cannot unwrap (its spec has ErrorValue, no OriginalValue)"
		return e
	case original != nil:
		v, err := original(r.Value)
		if err != nil {
			// err is not quoted: a decoder's error may quote the value.
			e.Unreplayable = "the original value cannot be unwrapped from the error value"
			return e
		}
		value = v
	}
	e.ValueBytes = len(value)
	e.Original = &kgo.Record{
		Topic:     e.SourceTopic,
		Partition: e.SourcePartition,
		Key:       r.Key,
		Value:     value,
		Headers:   r.Headers[:at:at],
		Timestamp: r.Timestamp,
		Offset:    -1,
	}
	return e
}
