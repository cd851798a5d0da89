package ops_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
)

// rejecting is a spec whose Process rejects every record as invalid: each
// one becomes an error record, made by the runner.
func rejecting(name string) pipeline.Spec {
	return pipeline.Spec{
		Name: name, Group: name + "-group", Inputs: []string{name + ".in"}, ErrorTopic: name + ".errors",
		Process: func(*pipeline.Context, *kgo.Record) error {
			return pipeline.Rejectf(pipeline.TypeInvalid, "rejected by the test")
		},
	}
}

// originals are records as a producer sends them to topic, with what makes
// byte for byte hard: a null value, an empty one, bytes that are not
// UTF-8, no key, repeated headers, a header named error-type of the
// record's own, and a value larger than the error topic takes (last).
func originals(topic string, large int) []*kgo.Record {
	ts := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	recs := []*kgo.Record{
		{Key: []byte("k1"), Value: []byte(`{"id":"a"}`), Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("c1")}}},
		{Key: []byte("k2"), Value: nil},
		{Key: []byte("k3"), Value: []byte{}},
		{Key: nil, Value: []byte{0xff, 0xfe, 0x00, 0x80}},
		{Key: []byte{0xc3, 0x28}, Value: []byte("v"), Headers: []kgo.RecordHeader{
			{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}, {Key: "error-type", Value: []byte("mine")}, {Key: "empty", Value: []byte{}},
		}},
		{Key: []byte("large"), Value: bytes.Repeat([]byte("x"), large)},
	}
	for i, r := range recs {
		r.Topic = topic
		r.Timestamp = ts.Add(time.Duration(i) * time.Second)
	}
	return recs
}

// same reports whether a recovered original is the record sent, byte for
// byte: key, value (null and empty apart), headers in order, timestamp,
// partition.
func same(got, sent *kgo.Record) bool {
	hs := func(h []kgo.RecordHeader) []string {
		var out []string
		for _, x := range h {
			out = append(out, x.Key+"="+string(x.Value))
		}
		return out
	}
	return got.Topic == sent.Topic && got.Partition == sent.Partition &&
		bytes.Equal(got.Key, sent.Key) && (got.Key == nil) == (sent.Key == nil) &&
		bytes.Equal(got.Value, sent.Value) && (got.Value == nil) == (sent.Value == nil) &&
		slices.Equal(hs(got.Headers), hs(sent.Headers)) && got.Timestamp.Equal(sent.Timestamp)
}

// The runner's error records, read back: every whole one gives its
// original byte for byte, verbatim or wrapped in datasync's structured
// error value (its Spec.OriginalValue unwraps it); a truncated one is
// listed but not replayable, with the reason.
func TestReadErrorsRecoversOriginals(t *testing.T) {
	wrapped := rejecting("wrapped")
	wrapped.ErrorValue = func(r *kgo.Record, typ pipeline.ErrorType, msg string, now time.Time) []byte {
		return datasync.ErrorRecord("cdc", r, typ, msg, now)
	}
	wrapped.OriginalValue = datasync.OriginalValue
	for _, spec := range []pipeline.Spec{rejecting("verbatim"), wrapped} {
		t.Run(spec.Name, func(t *testing.T) {
			c := kafkatest.NewCluster(t)
			cl := kafkatest.Client(t, c.ClientOpts())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			adm := kadm.NewClient(cl)
			// An error topic that takes 16 KiB batches: the 32 KiB
			// record's error record is truncated.
			if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("16384")}, spec.ErrorTopic); err != nil {
				t.Fatal(err)
			}
			if err := pipeline.CreateTopics(ctx, adm, &spec, 2, 1); err != nil {
				t.Fatal(err)
			}
			sent := originals(spec.Inputs[0], 32<<10)
			if err := cl.ProduceSync(ctx, sent...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			in := kafkatest.StartRunner(t, spec, pipeline.WithKafka(c.ClientOpts()...), pipeline.WithLogger(slog.New(slog.DiscardHandler)),
				pipeline.WithCommitInterval(20*time.Millisecond))
			var got []*ops.ErrorRecord
			kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d error records", len(sent)), func() bool {
				got = got[:0]
				if err := ops.ReadErrors(ctx, c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, func(e *ops.ErrorRecord) error {
					got = append(got, e)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return len(got) >= len(sent)
			})
			if err := in.Stop(); err != nil {
				t.Fatal(err)
			}
			for _, s := range sent {
				i := slices.IndexFunc(got, func(e *ops.ErrorRecord) bool {
					return e.SourcePartition == s.Partition && e.SourceOffset == s.Offset
				})
				if i < 0 {
					t.Fatalf("no error record of %s/%d/%d", s.Topic, s.Partition, s.Offset)
				}
				e := got[i]
				if len(s.Value) == 32<<10 {
					// Truncated: its original comes from its source
					// topic, whole.
					if e.Type != string(pipeline.TypeTruncated) || e.OriginalType != string(pipeline.TypeInvalid) || e.ValueBytes != len(s.Value) {
						t.Errorf("truncated error record read as type %q, original type %q, %d value bytes", e.Type, e.OriginalType, e.ValueBytes)
					}
					if e.Original == nil || !same(e.Original, s) {
						t.Errorf("truncated error record's original not recovered from its source topic: %s", e.Unreplayable)
					}
					continue
				}
				if e.Type != string(pipeline.TypeInvalid) || e.Message != "invalid: rejected by the test" && e.Message != "rejected by the test" {
					t.Errorf("%s: type %q message %q", e.Coordinates(), e.Type, e.Message)
				}
				if e.Original == nil {
					t.Errorf("%s: not replayable: %s", e.Coordinates(), e.Unreplayable)
					continue
				}
				if !same(e.Original, s) {
					t.Errorf("%s: original %+v, sent %+v", e.Coordinates(), e.Original, s)
				}
			}

			// Once retention has deleted the originals, a truncated
			// error record cannot be replayed, and says why; the
			// others still can.
			ends, err := adm.ListEndOffsets(ctx, spec.Inputs[0])
			if err != nil {
				t.Fatal(err)
			}
			upTo := kadm.Offsets{}
			ends.Each(func(o kadm.ListedOffset) { upTo.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
			if resp, err := adm.DeleteRecords(ctx, upTo); err != nil || resp.Error() != nil {
				t.Fatal(err, resp.Error())
			}
			var replayable, gone int
			if err := ops.ReadErrors(ctx, c.ClientOpts(), []pipeline.Spec{spec}, ops.Filter{}, func(e *ops.ErrorRecord) error {
				switch {
				case e.Original != nil:
					replayable++
				case strings.Contains(e.Unreplayable, "no longer on its source topic"):
					gone++
				default:
					t.Errorf("%s: %s", e.Coordinates(), e.Unreplayable)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if replayable != len(sent)-1 || gone != 1 {
				t.Errorf("after the originals' deletion, %d replayable and %d gone, want %d and 1", replayable, gone, len(sent)-1)
			}
		})
	}
}
