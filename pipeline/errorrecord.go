package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An error record always fits its topic: a record that cannot be produced
// aborts its transaction, and the same batch comes back, for ever (issue 19).
//
// The error record of rec is rec whole (key, value, its headers) plus the
// error headers: error-type, error-message, source-topic, source-partition
// and source-offset. When that is larger than the error topic takes (an
// input topic allows larger records than the error topic, or the error
// message is long), the runner writes a truncated error record instead, in
// the same transaction, and the partition moves on:
//
//   - error-type is [TypeTruncated], and original-error-type the class the
//     record failed with; error-message is the message, cut to
//     maxTruncatedMessage bytes; source-topic, source-partition and
//     source-offset as usual.
//   - original-value-bytes is the size of rec's value; original-record-bytes
//     that of its key, value and headers' keys and values together.
//   - original-value-sha256 and original-key-sha256 are the SHA-256 of rec's
//     value and key, in lower-case hex (the key's only when rec has one), so
//     that the original can be matched while its input topic still holds it.
//   - rec's key when it fits, else none; rec's headers that fit, in order,
//     and original-headers-dropped, how many did not (0 when all fit).
//   - the value is the head of rec's value, as many bytes as fit, and
//     value-head-bytes says how many. With [Spec.ErrorValue], the value is
//     ErrorValue of rec with that head as its value and the kept headers.
//
// The metric carepipe_error_records_truncated_total{pipeline} counts them.
const (
	// TypeTruncated is the error-type of a truncated error record. It is a
	// header value only: a processor rejects records with the other types.
	TypeTruncated ErrorType = "oversized-truncated"

	// The headers a truncated error record adds, described above.
	HeaderOriginalErrorType  = "original-error-type"
	HeaderOriginalValueSize  = "original-value-bytes"
	HeaderOriginalRecordSize = "original-record-bytes"
	HeaderOriginalValueHash  = "original-value-sha256"
	HeaderOriginalKeyHash    = "original-key-sha256"
	HeaderHeadersDropped     = "original-headers-dropped"
	HeaderValueHeadSize      = "value-head-bytes"
)

const (
	// batchOverhead is what franz-go counts for a record batch besides its
	// records: the 61-byte v2 batch header and the 4-byte length of the
	// records in the produce request (kgo's recordBatchOverhead). The
	// broker compares the batch without that length with
	// max.message.bytes, so a batch franz-go lets through has 4 bytes to
	// spare there.
	batchOverhead = 65

	// errorRecordMinBytes is the least an error topic must take: a
	// truncated error record's headers (coordinates of a topic name of up
	// to 249 bytes, a message of up to maxTruncatedMessage bytes, sizes
	// and hashes) fit in less than half of it. Run refuses to start below
	// it, and a limit learnt from refusals never goes under it.
	errorRecordMinBytes = 8 << 10

	// errorRecordMaxBytes caps the error topic's batches: franz-go refuses
	// a batch cap above its BrokerMaxWriteBytes (100 MiB by default).
	errorRecordMaxBytes = 64 << 20

	// maxTruncatedMessage is the most of the error message a truncated
	// error record carries.
	maxTruncatedMessage = 1 << 10

	// brokerDefaultMaxBytes is Kafka's default max.message.bytes, the
	// first guess at an error topic's limit after a refusal.
	brokerDefaultMaxBytes = 1_048_588
)

// batchBytes is the size franz-go counts for a batch that holds rec alone
// (kgo's recBatch.tryBuffer): the batch overhead and the record's
// length-prefixed encoding, with zero timestamp and offset deltas.
func batchBytes(rec *kgo.Record) int {
	l := 1 + 1 + 1 + // attributes, timestamp delta, offset delta
		kbin.VarintLen(int32(len(rec.Key))) + len(rec.Key) +
		kbin.VarintLen(int32(len(rec.Value))) + len(rec.Value) +
		kbin.VarintLen(int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		l += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) +
			kbin.VarintLen(int32(len(h.Value))) + len(h.Value)
	}
	return batchOverhead + kbin.VarintLen(int32(l)) + l
}

// errorLimit is the most bytes a batch of the error topic may hold, in
// [batchBytes]' count: its max.message.bytes (or carepipe's own, when it
// could not be read), lowered when the broker refused a record under it.
func (r *Runner) errorLimit() int {
	if l := r.errLimit.Load(); l > 0 {
		return int(l)
	}
	return errorTopicMaxBytes
}

// errorRecord returns the error record of rec, which failed with err of
// class typ, whole when it fits the error topic, else truncated.
func (t *task) errorRecord(rec *kgo.Record, typ ErrorType, msg string) (out *kgo.Record, truncated bool) {
	r := t.r
	limit := r.errorLimit()
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+5)
	hs = append(hs, rec.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: "error-type", Value: []byte(typ)},
		kgo.RecordHeader{Key: "error-message", Value: []byte(msg)},
		kgo.RecordHeader{Key: "source-topic", Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: "source-partition", Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: "source-offset", Value: strconv.AppendInt(nil, rec.Offset, 10)},
	)
	now := r.clock.Now()
	value := rec.Value
	if r.spec.ErrorValue != nil {
		value = r.spec.ErrorValue(rec, typ, msg, now)
	}
	out = &kgo.Record{
		Topic:     r.spec.ErrorTopic,
		Key:       rec.Key,
		Value:     value,
		Headers:   hs,
		Timestamp: rec.Timestamp,
	}
	if batchBytes(out) <= limit {
		return out, false
	}
	return truncatedErrorRecord(rec, r.spec.ErrorTopic, typ, msg, limit, now, r.spec.ErrorValue), true
}

// truncatedErrorRecord builds the truncated error record of rec (see
// [TypeTruncated]) for an error topic whose batches hold at most limit
// bytes. What fits is decided in order: the error headers, rec's key,
// rec's headers one by one, then as much of rec's value as fits, found by
// bisection, since a record's size grows with its value (by ErrorValue's
// output, when set, which is not strictly monotonic: the head found then
// fits, though a longer one might too). The record is larger than limit
// only when the error headers alone are, which an error topic of at least
// errorRecordMinBytes rules out.
func truncatedErrorRecord(rec *kgo.Record, topic string, typ ErrorType, msg string, limit int, now time.Time,
	errorValue func(*kgo.Record, ErrorType, string, time.Time) []byte,
) *kgo.Record {
	if len(msg) > maxTruncatedMessage {
		msg = msg[:maxTruncatedMessage]
	}
	total := len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		total += len(h.Key) + len(h.Value)
	}
	valueSum := sha256.Sum256(rec.Value)
	fixed := []kgo.RecordHeader{
		{Key: "error-type", Value: []byte(TypeTruncated)},
		{Key: "error-message", Value: []byte(msg)},
		{Key: "source-topic", Value: []byte(rec.Topic)},
		{Key: "source-partition", Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		{Key: "source-offset", Value: strconv.AppendInt(nil, rec.Offset, 10)},
		{Key: HeaderOriginalErrorType, Value: []byte(typ)},
		{Key: HeaderOriginalValueSize, Value: strconv.AppendInt(nil, int64(len(rec.Value)), 10)},
		{Key: HeaderOriginalRecordSize, Value: strconv.AppendInt(nil, int64(total), 10)},
		{Key: HeaderOriginalValueHash, Value: hex.AppendEncode(nil, valueSum[:])},
	}
	if rec.Key != nil {
		keySum := sha256.Sum256(rec.Key)
		fixed = append(fixed, kgo.RecordHeader{Key: HeaderOriginalKeyHash, Value: hex.AppendEncode(nil, keySum[:])})
	}

	out := &kgo.Record{Topic: topic, Key: rec.Key, Timestamp: rec.Timestamp}
	var kept []kgo.RecordHeader
	// build sets out to the record with the value's first n bytes, the
	// headers kept so far and extra, and reports whether it fits.
	build := func(n int, extra []kgo.RecordHeader) bool {
		hs := make([]kgo.RecordHeader, 0, len(kept)+len(extra)+len(fixed)+2)
		hs = append(hs, kept...)
		hs = append(hs, extra...)
		hs = append(hs, fixed...)
		hs = append(hs,
			kgo.RecordHeader{Key: HeaderHeadersDropped, Value: strconv.AppendInt(nil, int64(len(rec.Headers)-len(kept)-len(extra)), 10)},
			kgo.RecordHeader{Key: HeaderValueHeadSize, Value: strconv.AppendInt(nil, int64(n), 10)},
		)
		out.Headers = hs
		out.Value = rec.Value[:n]
		if errorValue != nil {
			head := *rec
			head.Value = rec.Value[:n]
			head.Headers = hs[:len(kept)+len(extra)]
			out.Value = errorValue(&head, TypeTruncated, msg, now)
		}
		return batchBytes(out) <= limit
	}
	if !build(0, nil) {
		out.Key = nil
	}
	// Until a header is decided it counts as dropped, so that the count
	// sized is never less than the final one, nor are its digits.
	for _, h := range rec.Headers {
		if build(0, []kgo.RecordHeader{h}) {
			kept = append(kept, h)
		}
	}
	// The largest n in [0, len(rec.Value)] whose record fits; n = 0 is
	// taken even if it does not (see above).
	n := sort.Search(min(len(rec.Value), limit), func(n int) bool { return !build(n+1, nil) })
	build(n, nil)
	return out
}

// errorTopicRefused handles the broker's refusal of an error record as too
// large: the error topic's limit is lower than the runner took it to be
// (its config could not be read, or was lowered while running). The limit
// the session's producer was built with is lowered, to Kafka's default
// max.message.bytes first and then by halves, never under
// errorRecordMinBytes, and the session ends, so that the next one's
// producer caps its batches by it and the records are built again to fit.
// Only the first refusal of a session lowers it: the other records of the
// refused batch were built for the same limit.
func (s *session) errorTopicRefused(err error) {
	r := s.r
	from := s.errLimit
	next := from / 2
	if from > brokerDefaultMaxBytes {
		next = brokerDefaultMaxBytes
	}
	next = max(next, errorRecordMinBytes)
	if next >= from || !r.errLimit.CompareAndSwap(from, next) {
		return
	}
	r.log.Warn("error topic refused an error record as too large; its limit is lowered and the session rebuilt",
		"topic", r.spec.ErrorTopic, "from", from, "to", next)
	s.fail(fmt.Errorf("error topic %s refused a record of its limit (%d bytes), now taken as %d: %w", r.spec.ErrorTopic, from, next, err))
}

// isTooLarge reports a produce refused because its batch is too large.
func isTooLarge(err error) bool { return errors.Is(err, kerr.MessageTooLarge) }
