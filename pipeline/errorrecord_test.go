package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"
)

// randomBytes are n deterministic bytes that do not compress.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 19))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// newErrorTask is the harness's task, for a pipeline whose error topic takes
// batches of at most limit bytes.
func newErrorTask(t *testing.T, spec Spec, limit int) *task {
	t.Helper()
	h := newHarness(t, spec)
	h.r.errLimit.Store(int64(limit))
	return h.t
}

func errorHeaders(r *kgo.Record) map[string]string {
	m := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// errorfer is what checkTruncated reports to: a *testing.T or a *rapid.T.
type errorfer interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkTruncated checks out, the truncated error record of in for a limit
// of limit bytes: it fits, its head is in's value's prefix and as long as
// fits, and its headers carry in's coordinates, sizes and hashes.
func checkTruncated(t errorfer, in, out *kgo.Record, typ ErrorType, limit int) {
	t.Helper()
	if n := batchBytes(out); n > limit {
		t.Errorf("truncated error record of %d bytes exceeds the limit of %d", n, limit)
	}
	h := errorHeaders(out)
	total := len(in.Key) + len(in.Value)
	for _, hd := range in.Headers {
		total += len(hd.Key) + len(hd.Value)
	}
	sum := sha256.Sum256(in.Value)
	want := map[string]string{
		"error-type":             string(TypeTruncated),
		"source-topic":           in.Topic,
		"source-partition":       strconv.Itoa(int(in.Partition)),
		"source-offset":          strconv.FormatInt(in.Offset, 10),
		HeaderOriginalErrorType:  string(typ),
		HeaderOriginalValueSize:  strconv.Itoa(len(in.Value)),
		HeaderOriginalRecordSize: strconv.Itoa(total),
		HeaderOriginalValueHash:  hex.EncodeToString(sum[:]),
		HeaderValueHeadSize:      strconv.Itoa(len(out.Value)),
	}
	if in.Key != nil {
		keySum := sha256.Sum256(in.Key)
		want[HeaderOriginalKeyHash] = hex.EncodeToString(keySum[:])
	} else if _, ok := h[HeaderOriginalKeyHash]; ok {
		t.Errorf("a record without key has header %s", HeaderOriginalKeyHash)
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %.80q, want %.80q", k, h[k], v)
		}
	}
	if len(h["error-message"]) > maxTruncatedMessage {
		t.Errorf("error-message of %d bytes, want at most %d", len(h["error-message"]), maxTruncatedMessage)
	}
	if !bytes.HasPrefix(in.Value, out.Value) {
		t.Errorf("value of %d bytes is not a prefix of the original's", len(out.Value))
	}
	if out.Key != nil && !bytes.Equal(out.Key, in.Key) {
		t.Errorf("key %q is not the original's", out.Key)
	}
	kept := 0 // the original's headers come first
	for _, hd := range out.Headers {
		if hd.Key == "error-type" {
			break
		}
		kept++
	}
	if got, want := h[HeaderHeadersDropped], strconv.Itoa(len(in.Headers)-kept); got != want {
		t.Errorf("header %s = %q, want %q (%d kept)", HeaderHeadersDropped, got, want, kept)
	}
	// As much as fits: one byte more of the head would not.
	if n := len(out.Value); n < len(in.Value) {
		more := *out
		more.Value = in.Value[:n+1]
		more.Headers = append([]kgo.RecordHeader(nil), out.Headers...)
		for i := range more.Headers {
			if more.Headers[i].Key == HeaderValueHeadSize {
				more.Headers[i].Value = strconv.AppendInt(nil, int64(n+1), 10)
			}
		}
		if batchBytes(&more) <= limit {
			t.Errorf("a head of %d bytes would fit too (%d bytes of %d)", n+1, batchBytes(&more), limit)
		}
	}
}

// An error record is the record whole up to the limit exactly, and
// truncated from one byte over.
func TestErrorRecordWholeUpToTheLimitTruncatedPast(t *testing.T) {
	in := &kgo.Record{Topic: hTopic, Partition: 3, Offset: 42, Key: []byte("patient-1"), Value: randomBytes(1, 50_000),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("c-1")}}}
	msg := "oversized: observation of 50000 bytes exceeds the limit of 1000"
	whole, truncated := newErrorTask(t, harnessSpec(), errorRecordMaxBytes).errorRecord(in, TypeOversized, msg)
	if truncated {
		t.Fatal("truncated under the largest limit")
	}
	size := batchBytes(whole)
	t.Run("exactly fits", func(t *testing.T) {
		out, truncated := newErrorTask(t, harnessSpec(), size).errorRecord(in, TypeOversized, msg)
		if truncated || !bytes.Equal(out.Value, in.Value) || !bytes.Equal(out.Key, in.Key) {
			t.Errorf("error record truncated (%v) at a limit of its own size", truncated)
		}
		if h := errorHeaders(out); h["error-type"] != string(TypeOversized) || h["error-message"] != msg || h["correlation-id"] != "c-1" {
			t.Errorf("headers %v", h)
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		out, truncated := newErrorTask(t, harnessSpec(), size-1).errorRecord(in, TypeOversized, msg)
		if !truncated {
			t.Fatal("error record not truncated at a limit one byte under its size")
		}
		checkTruncated(t, in, out, TypeOversized, size-1)
		if len(out.Value) < len(in.Value)-400 {
			t.Errorf("head of %d bytes: the truncated record's own headers should cost under 400 bytes", len(out.Value))
		}
	})
}

func TestTruncatedErrorRecord(t *testing.T) {
	longTopic := strings.Repeat("t", 249) // Kafka's longest topic name
	many := make([]kgo.RecordHeader, 50)
	for i := range many {
		many[i] = kgo.RecordHeader{Key: "h" + strconv.Itoa(i), Value: randomBytes(uint64(i), 300)}
	}
	for _, tc := range []struct {
		name   string
		in     *kgo.Record
		msg    string
		limit  int
		check  func(t *testing.T, out *kgo.Record)
		keyOut bool // the key is kept
	}{
		{
			name:   "5 MB value, 4 MiB error topic",
			in:     &kgo.Record{Topic: hTopic, Partition: 1, Offset: 7, Key: []byte("p-9"), Value: randomBytes(2, 5_000_000)},
			msg:    "oversized: too big",
			limit:  errorTopicMaxBytes,
			keyOut: true,
		},
		{
			name: "headers kept in order while they fit, the others dropped and counted",
			in: &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: randomBytes(3, 20_000), Headers: []kgo.RecordHeader{
				{Key: "a", Value: []byte("1")}, {Key: "huge", Value: randomBytes(4, 9000)}, {Key: "b", Value: []byte("2")},
			}},
			msg:    "invalid: no",
			limit:  errorRecordMinBytes,
			keyOut: true,
			check: func(t *testing.T, out *kgo.Record) {
				h := errorHeaders(out)
				if h["a"] != "1" || h["b"] != "2" || h["huge"] != "" || h[HeaderHeadersDropped] != "1" {
					t.Errorf("kept a=%q b=%q huge of %d bytes, dropped %q; want a and b kept, huge dropped", h["a"], h["b"], len(h["huge"]), h[HeaderHeadersDropped])
				}
			},
		},
		{
			name:  "a key that does not fit is dropped, its hash kept",
			in:    &kgo.Record{Topic: hTopic, Key: randomBytes(5, 10_000), Value: randomBytes(6, 100)},
			msg:   "decode: bad",
			limit: errorRecordMinBytes,
		},
		{
			name:   "no key: no key hash",
			in:     &kgo.Record{Topic: hTopic, Value: randomBytes(7, 100_000)},
			msg:    "decode: bad",
			limit:  64 << 10,
			keyOut: true,
		},
		{
			name:   "the smallest error topic, the longest topic name, a long message, many headers",
			in:     &kgo.Record{Topic: longTopic, Partition: 1 << 30, Offset: 1 << 62, Key: []byte("k"), Value: randomBytes(8, 30_000), Headers: many},
			msg:    strings.Repeat("m", 10_000),
			limit:  errorRecordMinBytes,
			keyOut: true,
			check: func(t *testing.T, out *kgo.Record) {
				if h := errorHeaders(out); h["error-message"] != strings.Repeat("m", maxTruncatedMessage) {
					t.Errorf("error-message of %d bytes, want its first %d", len(h["error-message"]), maxTruncatedMessage)
				}
			},
		},
		{
			name: "a small value whole, behind headers that do not fit",
			in: &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: []byte("{}"), Headers: []kgo.RecordHeader{
				{Key: "huge", Value: randomBytes(9, 20_000)},
			}},
			msg:    "invalid: no",
			limit:  errorRecordMinBytes,
			keyOut: true,
			check: func(t *testing.T, out *kgo.Record) {
				if string(out.Value) != "{}" {
					t.Errorf("value %q, want the original whole", out.Value)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, truncated := newErrorTask(t, harnessSpec(), tc.limit).errorRecord(tc.in, TypeInvalid, tc.msg)
			if !truncated {
				t.Fatal("not truncated")
			}
			if out.Topic != "in.errors" {
				t.Errorf("topic %s, want in.errors", out.Topic)
			}
			checkTruncated(t, tc.in, out, TypeInvalid, tc.limit)
			if (out.Key != nil) != tc.keyOut && tc.in.Key != nil {
				t.Errorf("key kept: %v, want %v", out.Key != nil, tc.keyOut)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// With a Spec's ErrorValue, the truncated record's value is ErrorValue of
// the record with its head as value: here the head in base64, which grows
// it by a third.
func TestTruncatedErrorRecordThroughErrorValue(t *testing.T) {
	spec := harnessSpec()
	spec.ErrorValue = func(r *kgo.Record, typ ErrorType, msg string, _ time.Time) []byte {
		return []byte(string(typ) + "|" + base64.StdEncoding.EncodeToString(r.Value))
	}
	const limit = 64 << 10
	in := &kgo.Record{Topic: hTopic, Offset: 5, Key: []byte("k"), Value: randomBytes(10, 60_000)}
	out, truncated := newErrorTask(t, spec, limit).errorRecord(in, TypeDecode, "decode: bad")
	if !truncated {
		t.Fatal("not truncated, though its value grows past the limit")
	}
	if n := batchBytes(out); n > limit {
		t.Fatalf("%d bytes, over the limit of %d", n, limit)
	}
	typ, enc, _ := strings.Cut(string(out.Value), "|")
	head, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || typ != string(TypeTruncated) {
		t.Fatalf("value %.40q: type %q, %v", out.Value, typ, err)
	}
	if !bytes.HasPrefix(in.Value, head) || strconv.Itoa(len(head)) != errorHeaders(out)[HeaderValueHeadSize] {
		t.Errorf("head of %d bytes (header %s), not the original's prefix", len(head), errorHeaders(out)[HeaderValueHeadSize])
	}
	if len(head) < limit*3/4-1000 {
		t.Errorf("head of %d bytes, want about three quarters of %d", len(head), limit)
	}
}

// Any record, any limit from the minimum: the truncated error record fits,
// carries the head that fits, and the original's coordinates and hash.
func TestTruncatedErrorRecordProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.IntRange(errorRecordMinBytes, 64<<10).Draw(rt, "limit")
		var key []byte
		if rapid.Bool().Draw(rt, "has key") {
			key = randomBytes(1, rapid.IntRange(0, 20_000).Draw(rt, "key"))
		}
		var hs []kgo.RecordHeader
		for i := range rapid.IntRange(0, 10).Draw(rt, "headers") {
			hs = append(hs, kgo.RecordHeader{Key: "h" + strconv.Itoa(i), Value: randomBytes(uint64(i), rapid.IntRange(0, 5000).Draw(rt, "header"))})
		}
		in := &kgo.Record{
			Topic:     strings.Repeat("t", rapid.IntRange(1, 249).Draw(rt, "topic")),
			Partition: rapid.Int32Min(0).Draw(rt, "partition"),
			Offset:    rapid.Int64Min(0).Draw(rt, "offset"),
			Key:       key,
			Value:     randomBytes(2, rapid.IntRange(0, 200_000).Draw(rt, "value")),
			Headers:   hs,
		}
		msg := strings.Repeat("m", rapid.IntRange(0, 3000).Draw(rt, "message"))
		out := truncatedErrorRecord(in, "in.errors", TypeDecode, msg, limit, time.Time{}, nil)
		checkTruncated(rt, in, out, TypeDecode, limit)
	})
}

// batchBytes is franz-go's count of a one-record batch, and the broker's
// plus 4: at a topic's max.message.bytes L and a producer cap of L, a
// record of L bytes is produced and one of L+1 is refused by the producer;
// with a larger producer cap, the broker takes L+4 and refuses L+5. Kafka
// counts a batch with its 12-byte offset and length (kfake, 00_produce.go).
func TestBatchBytesIsWhatTheProducerAndBrokerCount(t *testing.T) {
	const limit = 3 << 20 // above 2 MiB, where the flexible length prefix has its 4 bytes
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	newClient := func(cap int32) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchMaxBytes(cap),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(limit))
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr(strconv.Itoa(limit))}, "t"); err != nil {
		t.Fatal(err)
	}
	value := randomBytes(11, limit)
	// sized is a record of exactly n bytes in batchBytes' count.
	sized := func(n int) *kgo.Record {
		r := &kgo.Record{Topic: "t", Key: []byte("k"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
		lo, hi := 0, len(value)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			r.Value = value[:mid]
			if batchBytes(r) <= n {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		r.Value = value[:lo]
		if batchBytes(r) != n {
			t.Fatalf("no record of exactly %d bytes", n)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		cap  int32
		size int
		ok   bool
	}{
		{"producer: at its cap", limit, limit, true},
		{"producer: one byte over its cap", limit, limit + 1, false},
		{"broker: at max.message.bytes", limit + 64, limit + 4, true},
		{"broker: one byte over max.message.bytes", limit + 64, limit + 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newClient(tc.cap).ProduceSync(ctx, sized(tc.size)).FirstErr()
			switch {
			case tc.ok && err != nil:
				t.Errorf("a record of %d bytes refused: %v", tc.size, err)
			case !tc.ok && !errors.Is(err, kerr.MessageTooLarge):
				t.Errorf("a record of %d bytes: %v, want MESSAGE_TOO_LARGE", tc.size, err)
			}
		})
	}
}
