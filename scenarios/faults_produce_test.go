package scenarios

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/sim/check"
)

// faultCommitInterval is ordersWorld.start's commit interval.
const faultCommitInterval = 50 * time.Millisecond

// Row f: produce errors. The runner's transactional Produce requests to
// medication.order.processed are answered with a partition error code
// before the broker acts on them. A retriable code is retried by franz-go
// inside the open transaction; a terminal one fails the records, which
// dooms the transaction: the runner aborts it and resumes from the
// committed offsets. Either way every order is accounted for exactly once.

// TestFaultProduceRetriable: codes franz-go retries for a transactional
// producer (kgo sink.go, handleReqRespBatch: kerr.IsRetriable, no retry
// limit by default) never reach the runner: no abort, no new session.
func TestFaultProduceRetriable(t *testing.T) {
	const faults = 5
	tests := []struct {
		name string
		code *kerr.Error
	}{
		// The broker refused the append: fewer in-sync replicas than
		// min.insync.replicas.
		{"not enough replicas", kerr.NotEnoughReplicas},
		// The broker timed out before appending. franz-go cannot tell
		// that from a timeout after the append, so it marks the batch
		// unsure and retries it past any limit, under the same
		// sequence numbers.
		{"request timed out", kerr.RequestTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newOrdersWorld(t)
			f := newFirings(faults)
			failProduce(t, w, f, faults, tt.code, -1, 0)
			in := w.start()
			w.produce(orderWorkload(6, faultOrders))
			for range faults {
				f.await(t, tt.name)
			}
			w.waitCaughtUp()
			stats := in.Runner.Stats()
			if err := in.Stop(); err != nil {
				t.Fatal(err)
			}
			if got := f.count(); got != faults {
				t.Errorf("fault fired %d times, want %d", got, faults)
			}
			t.Logf("runner: %d commits, %d aborts, %d session restarts", stats.Commits, stats.Aborts, stats.SessionRestarts)
			if stats.Aborts != 0 || stats.SessionRestarts != 0 {
				t.Errorf("a retriable produce error reached the runner: %d aborts, %d session restarts, want none",
					stats.Aborts, stats.SessionRestarts)
			}
			w.requireExactlyOnce()
		})
	}
}

// TestFaultProduceTerminalThenRecovers: codes franz-go does not retry fail
// the batch's records (kgo sink.go, handleReqRespBatch, default arm:
// finishBatch fails every record buffered for the partition). The runner's
// produce callback dooms the transaction, which aborts; records it had
// already written stay in the log as aborted ones. After the faults the
// broker behaves, and every order comes out exactly once.
//
// The runner does not rebuild its session for this: End(TryAbort) rewinds
// the consumer to the committed offsets within the session (kgo txn.go,
// GroupTransactSession.End), so session restarts are logged, not asserted.
//
// Regression: Runner.endTxnOf read doomed before End(TryCommit) flushed, so
// a produce that failed during that flush did not stop the commit, and the
// inputs of the failed outputs were committed past: lost. It flushes first
// now.
func TestFaultProduceTerminalThenRecovers(t *testing.T) {
	const faults = 3
	tests := []struct {
		name string
		code *kerr.Error
		// late delays the answer: past the commit interval, it
		// arrives while the runner is already ending the transaction.
		late time.Duration
	}{
		// Not retriable in kerr: the broker validated the batch and
		// refused it (a real one does so for, say, a record without a
		// key on a compacted topic).
		{name: "invalid record", code: kerr.InvalidRecord},
		// Retriable in kerr, but franz-go excludes it by name from its
		// produce retries (sink.go: err != kerr.CorruptMessage): a
		// batch that arrived corrupt would be re-sent byte for byte.
		{name: "corrupt message", code: kerr.CorruptMessage},
		// A refusal that comes after the commit interval: the runner
		// has decided to commit and is flushing in End.
		{name: "invalid record, answered after the commit interval", code: kerr.InvalidRecord, late: 4 * faultCommitInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Three brokers, and the fault on one: a transaction's
			// records for the partitions the others lead are written
			// and then aborted.
			// kfake picks each partition's leader at random, and
			// all six on one broker (1 in 243) left no partition
			// outside the fault; the brokers take them in turn.
			w := newOrdersWorld(t, sim.Brokers(3))
			const node = 0
			for p := range int32(testPartitions) {
				if err := w.k.MoveTopicPartition(orders.TopicProcessed, p, p%3); err != nil {
					t.Fatal(err)
				}
			}
			f := newFirings(faults)
			failProduce(t, w, f, faults, tt.code, node, tt.late)
			in := w.start()

			// One chunk per firing, then the rest: every firing has a
			// transaction to fail.
			recs := orderWorkload(7, faultOrders)
			chunk := len(recs) / (faults + 1)
			for i := range faults {
				w.produce(recs[i*chunk : (i+1)*chunk])
				f.await(t, tt.name)
			}
			w.produce(recs[faults*chunk:])
			w.waitCaughtUp()
			stats := in.Runner.Stats()
			if err := in.Stop(); err != nil {
				t.Fatal(err)
			}
			if got := f.count(); got != faults {
				t.Errorf("fault fired %d times, want %d", got, faults)
			}
			t.Logf("runner: %d commits, %d aborts, %d session restarts", stats.Commits, stats.Aborts, stats.SessionRestarts)
			if stats.Aborts == 0 {
				t.Error("the runner's records were refused, yet it aborted no transaction")
			}
			rep := w.requireExactlyOnce()
			all := kafkatest.ReadToEndAt(context.Background(), t, w.cluster.ClientOpts(), kgo.ReadUncommitted(), orders.TopicProcessed)
			t.Logf("%d processed records in the log, %d of them committed", len(all), rep.Outputs)
			if len(all) <= rep.Outputs {
				t.Errorf("the log holds %d processed records, aborted ones included, no more than the %d committed: no failed transaction had written anything",
					len(all), rep.Outputs)
			}
		})
	}
}

// failProduce answers the first n transactional Produce requests that
// broker node (-1: any broker) receives with records for
// medication.order.processed, answering code for every partition they
// carry, without the broker acting on them, late after the request came.
func failProduce(t *testing.T, w *ordersWorld, f *firings, n int, code *kerr.Error, node int32, late time.Duration) {
	t.Helper()
	k := w.k
	id := topicID(t, w.adm, orders.TopicProcessed)
	quit := quitChan(t)
	var seen atomic.Int32
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		if r.TransactionID == nil || !writesTo(r, orders.TopicProcessed, id) || node >= 0 && k.CurrentNode() != node {
			return nil, nil, false
		}
		if seen.Add(1) >= int32(n) {
			k.DropControl()
		} else {
			k.KeepControl()
		}
		if late > 0 {
			k.SleepControl(func() {
				select {
				case <-time.After(late): // the fault: a slow broker
				case <-quit:
				}
			})
		}
		// Announced as it is answered: a test that then produces more
		// has it land in a later transaction.
		f.fire()
		return failedProduce(r, code), nil, true
	})
}

// failedProduce is the answer to r with code for every partition.
func failedProduce(r *kmsg.ProduceRequest, code *kerr.Error) *kmsg.ProduceResponse {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// writesTo reports whether r carries records for topic, named (Produce
// v12 and below) or by id (v13 and above).
func writesTo(r *kmsg.ProduceRequest, topic string, id [16]byte) bool {
	return slices.ContainsFunc(r.Topics, func(t kmsg.ProduceRequestTopic) bool {
		return t.Topic == topic || t.TopicID == id
	})
}

func topicID(t *testing.T, adm *kadm.Client, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	ds, err := adm.ListTopics(ctx, topic)
	if err == nil {
		err = ds.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	id := ds[topic].ID
	if id == (kadm.TopicID{}) {
		t.Fatalf("topic %s has no id", topic)
	}
	return id
}

// An output record that can never be produced: the output topic's
// max.message.bytes is smaller than one order's processed form, so the
// broker answers every batch holding it MESSAGE_TOO_LARGE, which franz-go
// does not retry. Wanted: that order goes to medication.order.errors whole
// (error-type oversized), and its partition, like every other, keeps
// moving, without a loop of aborted transactions.
//
// Regression: the runner aborted, rewound and processed the input again,
// endlessly (about 19 aborts/s), since nothing routed it to the error topic.
// The runner now knows each output topic's max.message.bytes and rejects an
// emit that cannot fit as oversized, before it is produced.
func TestFaultProduceUnproducibleOutput(t *testing.T) {
	const (
		limit = 64 << 10 // the output topic's max.message.bytes
		n     = 600
		// wait bounds the run; with the bug fixed it takes under a second.
		wait = 15 * time.Second
	)
	w := newOrdersWorld(t)
	setTopicConfig(t, w.adm, orders.TopicProcessed, "max.message.bytes", strconv.Itoa(limit))
	oversized := countOversized(w.k, orders.TopicProcessed, topicID(t, w.adm, orders.TopicProcessed), limit)

	// The oversized order takes a poison order's place, so the workload
	// still has one error record per poisonEvery orders. Its filler is
	// random, so that compression does not bring the batch under the
	// limit.
	recs := orderWorkload(8, n)
	valid, _ := sim.MedicationOrders(8, n)
	big := recs[5*poisonEvery-1]
	big.Value = withFiller(valid[5*poisonEvery-1].Value, 2*limit)
	if n, err := processedSize(big); err != nil || n <= limit {
		t.Fatalf("the oversized order's processed form has %d bytes (error %v), want more than %d", n, err, limit)
	}

	in := w.start()
	t.Cleanup(func() {
		if t.Failed() {
			s := in.Runner.Stats()
			t.Logf("at the failure: %d of %d orders committed; runner: %d commits, %d aborts, %d session restarts; %d oversized batches reached the broker",
				w.committed(), w.produced, s.Commits, s.Aborts, s.SessionRestarts, oversized.Load())
		}
	})
	w.produce(recs)
	kafkatest.Eventually(t, wait, "every order committed, the oversized one's partition included", func() bool {
		return w.committed() >= int64(w.produced)
	})
	stats := in.Runner.Stats()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("runner: %d commits, %d aborts, %d session restarts; %d oversized batches reached the broker",
		stats.Commits, stats.Aborts, stats.SessionRestarts, oversized.Load())
	// A fix may meet the broker's refusal once and abort that
	// transaction; it must not loop on it.
	if stats.Aborts > 2 {
		t.Errorf("%d transactions aborted: the runner retried an output the broker refuses for good", stats.Aborts)
	}
	w.requireExactlyOnce()
	var found bool
	for _, e := range kafkatest.ReadToEnd(context.Background(), t, w.cluster.ClientOpts(), orders.TopicErrors) {
		h := headerMap(e)
		if h[check.HeaderSourcePartition] != strconv.Itoa(int(big.Partition)) || h[check.HeaderSourceOffset] != strconv.FormatInt(big.Offset, 10) {
			continue
		}
		found = true
		if typ := h["error-type"]; typ != string(pipeline.TypeOversized) {
			t.Errorf("the oversized order's error record has error-type %q, want %q", typ, pipeline.TypeOversized)
		}
	}
	if !found {
		t.Errorf("no error record for the oversized order (%s/%d@%d)", big.Topic, big.Partition, big.Offset)
	}
}

// setTopicConfig sets one config of topic.
func setTopicConfig(t *testing.T, adm *kadm.Client, topic, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: name, Value: kadm.StringPtr(value)}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("setting %s of %s: %v", name, topic, err)
	}
}

// countOversized counts the transactional produce batches for topic (id:
// its id) larger than limit that reach the cluster, which answers them
// MESSAGE_TOO_LARGE, without touching the requests.
func countOversized(k *kfake.Cluster, topic string, id [16]byte, limit int) *atomic.Int64 {
	var n atomic.Int64
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		if r.TransactionID == nil {
			return nil, nil, false
		}
		for _, rt := range r.Topics {
			if rt.Topic != topic && rt.TopicID != id {
				continue
			}
			for _, rp := range rt.Partitions {
				if len(rp.Records) > limit {
					n.Add(1)
				}
			}
		}
		return nil, nil, false
	})
	return &n
}

// withFiller is the JSON object order with a notes member of size random
// letters and digits appended (seeded: the same every run).
func withFiller(order []byte, size int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(uint64(size), 1))
	out := slices.Clone(order[:len(order)-1]) // without the closing brace
	out = append(out, `,"notes":"`...)
	for range size {
		out = append(out, alphabet[r.IntN(len(alphabet))])
	}
	return append(out, `"}`...)
}

// processedSize is the size of the value the orders processor emits for
// order r, as its Spec processes it in a pipeline.Harness.
func processedSize(r *kgo.Record) (int, error) {
	p, err := orders.New()
	if err != nil {
		return 0, err
	}
	h, err := pipeline.NewHarness(p.Spec())
	if err != nil {
		return 0, err
	}
	in := *r
	in.Topic = orders.TopicSubmitted
	out, err := h.Process(&in)
	if err != nil {
		return 0, err
	}
	if len(out) != 1 {
		return 0, fmt.Errorf("the order made %d records, want 1", len(out))
	}
	return len(out[0].Value), nil
}
