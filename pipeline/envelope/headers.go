package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header keys every output carries.
const (
	HeaderCorrelationID = "correlation-id"
	HeaderEventSource   = "event-source"
	HeaderEventType     = "event-type"
)

// CorrelationID is the correlation id of input record r whose metadata is
// meta: the first valid correlation-id header, else meta.CorrelationID if
// valid, else [DerivedCorrelationID] of r's coordinates. Valid is
// [ValidCorrelationID]: an id too long, or not text, counts as absent, so
// that what an input brings is never carried to the outputs unchecked.
func CorrelationID(r *kgo.Record, meta Metadata) string {
	if v, ok := HeaderCorrelation(r); ok {
		return v
	}
	if ValidCorrelationID(meta.CorrelationID) {
		return meta.CorrelationID
	}
	return DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
}

// HeaderValue returns the first value of header key on r, "" when r has
// none.
func HeaderValue(r *kgo.Record, key string) string {
	for i := range r.Headers {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// HeaderCorrelation returns the first valid correlation-id header of r
// ([ValidCorrelationID]); empty, oversized and non-text ones are passed
// over.
func HeaderCorrelation(r *kgo.Record) (string, bool) {
	for i := range r.Headers {
		h := &r.Headers[i]
		if h.Key == HeaderCorrelationID && ValidCorrelationID(h.Value) {
			return string(h.Value), true
		}
	}
	return "", false
}

// DerivedCorrelationID is the correlation id of a record that brought none:
// the first 16 bytes, in hex, of sha256("topic/partition/offset"). A replay
// of the same record derives the same id.
func DerivedCorrelationID(topic string, partition int32, offset int64) string {
	buf := make([]byte, 0, len(topic)+32)
	buf = append(buf, topic...)
	buf = append(buf, '/')
	buf = strconv.AppendInt(buf, int64(partition), 10)
	buf = append(buf, '/')
	buf = strconv.AppendInt(buf, offset, 10)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16])
}

// OutputHeaders are the headers every output record carries. The three
// values share one allocation; do not append to them.
func OutputHeaders(correlationID, eventSource, eventType string) []kgo.RecordHeader {
	buf := make([]byte, 0, len(correlationID)+len(eventSource)+len(eventType))
	buf = append(buf, correlationID...)
	buf = append(buf, eventSource...)
	buf = append(buf, eventType...)
	a, b := len(correlationID), len(correlationID)+len(eventSource)
	return []kgo.RecordHeader{
		{Key: HeaderCorrelationID, Value: buf[:a:a]},
		{Key: HeaderEventSource, Value: buf[a:b:b]},
		{Key: HeaderEventType, Value: buf[b:]},
	}
}
