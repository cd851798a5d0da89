package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/carepipe/carepipe/sim"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	fgTopic = "fetchgap"
	// fgPartitions is franz-go's default FetchMaxBytes over its default
	// FetchMaxPartitionBytes (50 MiB / 1 MiB).
	fgPartitions = 50
	// fgBigBytes makes each partition's big record a batch of 1,048,502
	// bytes, under the brokers' default max.message.bytes (1,048,588).
	// After the 302 bytes of small batches before it (gate 72, aborted 75,
	// abort marker 78, small committed 77) it passes both 1 MiB and
	// fetchPartitionBytes, so no partition returns it in the first
	// response, and kfake counts 1,048,804 bytes a partition: 49 of them
	// and the 50th's small batches stay under 50 MiB (51,391,698), the
	// 50th's big batch passes it (52,440,200).
	fgBigBytes = 1_048_430
	// fgBigOffset is the big record's offset in every partition: after
	// the gate record, the aborted record, its marker and the small
	// committed record.
	fgBigOffset = 4
)

var (
	fgGate    = []byte("gate")
	fgAborted = []byte("aborted")
	fgSmall   = []byte("committed")
	fgBig     = []byte("big")
)

// The runner's session consumer must never return an aborted record, also
// when one fetch response names the backlog of many partitions.
//
// kfake (01_fetch.go, Cluster.handleFetch, lines 448-453 and 466-485) drops
// the aborted-transaction list of the partition it is filling when its
// count of the response's bytes passes FetchMaxBytes, and the count also
// holds, for every partition, the batch that did not fit the partition's
// limit. Every partition's log here is the same: a gate record (an open
// transaction that holds back every read_committed reader), a record of an
// aborted transaction and its marker, a small committed record, a ~1 MB
// committed record, their marker, and the gate's commit marker. The ~1 MB
// batch does not fit after the small ones, so a response returns 302 bytes
// a partition but counts 1,048,804: with franz-go's defaults (the runner
// before FetchLimits) the count passes 50 MiB at the 50th partition's big
// batch, after that partition's aborted record, which comes back as
// committed. A limit of partitions × FetchMaxPartitionBytes (52,429,400)
// is passed as well; the runner's limits keep the response whole.
//
// The gate opens only once each consumer's fetch session names every
// partition, so each consumer's first response that has records covers all
// of them: what it holds is deterministic.
func TestSessionFetchReturnsNoAbortedRecords(t *testing.T) {
	cases := []struct {
		name string
		// after the runner's session options
		opts        []kgo.Opt
		wantAborted bool
	}{
		{
			name: "franz-go default limits",
			opts: []kgo.Opt{
				kgo.FetchMaxBytes(50 << 20),
				kgo.FetchMaxPartitionBytes(1 << 20),
				kgo.BrokerMaxReadBytes(100 << 20),
			},
			wantAborted: true,
		},
		{
			// What the bound would be without the batch that does not fit.
			name:        "partitions times partition limit",
			opts:        []kgo.Opt{kgo.FetchMaxBytes(fgPartitions * fetchPartitionBytes)},
			wantAborted: true,
		},
		{name: "runner session options", wantAborted: false},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster, base := newFetchGapCluster(t)
	gate := newFetchGapBacklog(ctx, t, base)

	// The consumers read the one backlog, each in its own group. Each
	// names itself in its fetches' rack, which kfake ignores. The union of
	// the partitions a consumer's fetches name is its fetch session:
	// nothing returns records until the gate opens, so franz-go forgets no
	// partition before then.
	complete := make(chan string, len(cases))
	seen := make(map[string]map[int32]bool) // by rack; the cluster's goroutine only
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fr := req.(*kmsg.FetchRequest)
		// A consumer that asks for the big records has read all that
		// this test needs, and their 50 MB would cost seconds under
		// -race: the fetch fails, the cluster drops the connection, and
		// the client retries until it is closed.
		for _, rt := range fr.Topics {
			for _, rp := range rt.Partitions {
				if rp.FetchOffset >= fgBigOffset {
					cluster.KeepControl()
					return nil, errors.New("the test reads no big record"), true
				}
			}
		}
		ps := seen[fr.Rack]
		if ps == nil {
			ps = make(map[int32]bool)
			seen[fr.Rack] = ps
		}
		before := len(ps)
		for _, rt := range fr.Topics {
			for _, rp := range rt.Partitions {
				ps[rp.Partition] = true
			}
		}
		if before < fgPartitions && len(ps) == fgPartitions {
			select {
			case complete <- fr.Rack:
			default: // never block the cluster: a third rack fails the wait below
			}
		}
		return nil, nil, false
	})

	sessions := make([]*kgo.GroupTransactSession, len(cases))
	for i, tc := range cases {
		name := fmt.Sprintf("fetchgap%d", i)
		sessions[i] = newFetchGapSession(t, base, name, append([]kgo.Opt{kgo.Rack(name)}, tc.opts...))
	}
	for range cases {
		select {
		case <-complete:
		case <-ctx.Done():
			t.Fatalf("a consumer's fetches never named all %d partitions", fgPartitions)
		}
	}
	if err := gate.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess := sessions[i]
			// Every aborted record comes before its partition's small
			// committed one; the big records are never returned.
			var small, aborted, firstParts int
			for small < fgPartitions {
				fs := sess.PollFetches(ctx)
				fs.EachError(func(topic string, p int32, err error) {
					t.Fatalf("fetching %s/%d: %v", topic, p, err)
				})
				parts := make(map[int32]bool)
				fs.EachRecord(func(rec *kgo.Record) {
					parts[rec.Partition] = true
					switch {
					case bytes.Equal(rec.Value, fgAborted):
						aborted++
					case bytes.Equal(rec.Value, fgSmall):
						small++
					case bytes.Equal(rec.Value, fgGate):
					default:
						t.Fatalf("unexpected record at %s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
					}
				})
				if firstParts == 0 {
					firstParts = len(parts)
				}
			}
			t.Logf("FetchMaxBytes %v: the first response held records of %d of %d partitions; %d aborted records returned",
				sess.Client().OptValue(kgo.FetchMaxBytes), firstParts, fgPartitions, aborted)
			if tc.wantAborted {
				// The fault must have fired, or the other case proves nothing.
				if aborted == 0 {
					t.Fatalf("kfake's fault did not fire: no aborted record returned")
				}
				return
			}
			if aborted != 0 {
				t.Errorf("the session consumer returned %d records of aborted transactions", aborted)
			}
			if firstParts != fgPartitions {
				t.Errorf("the first response held %d partitions, want all %d", firstParts, fgPartitions)
			}
		})
	}
}

// The limits must hold the bound up to fetchGuardPartitions, stay within
// what franz-go accepts beyond it, and never stop a client from starting.
func TestFetchLimits(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 12, 72, fetchGuardPartitions, fetchGuardPartitions + 1, 10_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			// No consumer and no request: the client never dials.
			cl, err := kgo.NewClient(append(FetchLimits(n), kgo.SeedBrokers("127.0.0.1:1"))...)
			if err != nil {
				t.Fatalf("franz-go refuses the limits: %v", err)
			}
			defer cl.Close()
			maxBytes := int64(cl.OptValue(kgo.FetchMaxBytes).(int32))
			partBytes := int64(cl.OptValue(kgo.FetchMaxPartitionBytes).(int32))
			if partBytes != fetchPartitionBytes {
				t.Errorf("FetchMaxPartitionBytes %d, want %d", partBytes, fetchPartitionBytes)
			}
			// The most kfake can count for a response of m partitions.
			m := int64(max(n, 1))
			need := m*(partBytes+fetchBatchBytes) + fetchBatchBytes
			switch {
			case n <= fetchGuardPartitions && maxBytes < need:
				t.Errorf("FetchMaxBytes %d is under the %d a response of %d partitions can count", maxBytes, need, m)
			case n > fetchGuardPartitions && maxBytes != kgoMaxReadBytes:
				t.Errorf("FetchMaxBytes %d, want franz-go's ceiling %d", maxBytes, kgoMaxReadBytes)
			}
		})
	}
}

// newFetchGapCluster starts sim's tuned one-broker cluster with the test
// topic and returns client options for it. (This test is inside package
// pipeline, which internal/kafkatest imports, so it uses sim directly.)
func newFetchGapCluster(t *testing.T) (*kfake.Cluster, []kgo.Opt) {
	t.Helper()
	c, err := sim.NewCluster(sim.KafkaOpts(kfake.SeedTopics(fgPartitions, fgTopic)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Kafka(), c.ClientOpts()
}

// newFetchGapSession builds the session consumer as the runner does for a
// pipeline consuming the test topic in group, then applies opts.
func newFetchGapSession(t *testing.T, base []kgo.Opt, group string, opts []kgo.Opt) *kgo.GroupTransactSession {
	t.Helper()
	r, err := New(Spec{
		Name:       group,
		Group:      group,
		Inputs:     []string{fgTopic},
		ErrorTopic: fgTopic + ".errors",
		Process:    func(*Context, *kgo.Record) error { return nil },
	}, WithKafka(base...))
	if err != nil {
		t.Fatal(err)
	}
	r.numPartitions.Store(fgPartitions) // what Run learns from the topics
	// The runner's own callbacks start tasks; the test reads the records
	// itself.
	noop := func(context.Context, *kgo.Client, map[string][]int32) {}
	sess, err := kgo.NewGroupTransactSession(slices.Concat(r.sessionOpts(r.newSession()),
		[]kgo.Opt{kgo.OnPartitionsAssigned(noop), kgo.OnPartitionsRevoked(noop), kgo.OnPartitionsLost(noop)},
		opts)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return sess
}

// newFetchGapBacklog writes every partition's log up to the committed
// records' marker and returns the gate's producer with its transaction
// still open.
func newFetchGapBacklog(ctx context.Context, t *testing.T, base []kgo.Opt) *kgo.Client {
	t.Helper()
	producer := func(txnID string) *kgo.Client {
		cl, err := kgo.NewClient(slices.Concat(base, []kgo.Opt{
			kgo.TransactionalID(txnID),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			// The sizes above are what the test is about: no compression,
			// and room for a batch as large as the brokers accept.
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(1_048_588),
		})...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	begin := func(cl *kgo.Client) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	end := func(cl *kgo.Client, how kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.EndTransaction(ctx, how); err != nil {
			t.Fatal(err)
		}
	}
	// produceAll writes value once to every partition and waits for it.
	produceAll := func(cl *kgo.Client, value []byte) {
		t.Helper()
		recs := make([]*kgo.Record, fgPartitions)
		for p := range recs {
			recs[p] = &kgo.Record{Topic: fgTopic, Partition: int32(p), Value: value}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	gate, backlog := producer("fetchgap-gate"), producer("fetchgap-backlog")
	begin(gate)
	produceAll(gate, fgGate)
	begin(backlog)
	produceAll(backlog, fgAborted)
	end(backlog, kgo.TryAbort)
	begin(backlog)
	produceAll(backlog, fgSmall)
	big := make([]byte, fgBigBytes)
	copy(big, fgBig)
	produceAll(backlog, big) // its own batch: the small ones are flushed
	end(backlog, kgo.TryCommit)
	return gate
}
