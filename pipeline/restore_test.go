package pipeline

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue 16, item 6.3: catchUp waited for a record at offset target-1 that
// a read_committed reader is never handed, so a restore waited for a
// foreign open transaction to end (up to its timeout), or for ever on a
// topic nobody writes to. In each case below the last stable offset (the
// target) is where a transaction that stays open begins, and the record
// just below it is one the client never hands over. catchUp must return
// with every readable record applied, long before the open transaction
// would time out (a minute here).
func TestCatchUpReachesTargetWithoutSeeingItsLastRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		// configs of the topic
		configs map[string]*string
		// build writes the log, with ctl a plain producer; it opens
		// a transaction with open and leaves it open.
		build func(t *testing.T, c *kfake.Cluster, ctl *kgo.Client, open func())
		// hold holds back the reader's own fetches until catchUp has
		// asked the leader directly.
		hold bool
		want []string
	}{{
		// The aborted transaction's record is at target-1 and its abort
		// marker lies past the target, behind the open transaction.
		name: "aborted transaction interleaved with an open one",
		build: func(t *testing.T, _ *kfake.Cluster, ctl *kgo.Client, open func()) {
			produceSync(t, ctl, &kgo.Record{Key: []byte("k0"), Value: []byte("v")})
			abortAround(t, ctl, open)
		},
		want: []string{"k0"},
	}, {
		// Compaction removed the record at target-1 (an expired
		// tombstone) and the one it deleted. kfake compacts everything
		// but the last batch, which is the open transaction's.
		name:    "compacted tail before an open transaction",
		configs: map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "delete.retention.ms": kadm.StringPtr("0")},
		build: func(t *testing.T, c *kfake.Cluster, ctl *kgo.Client, open func()) {
			produceSync(t, ctl, &kgo.Record{Key: []byte("k1"), Value: []byte("v")})
			produceSync(t, ctl, &kgo.Record{Key: []byte("gone"), Value: []byte("v")})
			produceSync(t, ctl, &kgo.Record{Key: []byte("gone")})
			open()
			c.Compact()
		},
		want: []string{"k1"},
	}, {
		// The leader, asked directly, still has readable records the
		// reader has not been handed (its fetches are held back):
		// catchUp must wait for them, then finish.
		name: "readable records still on their way",
		build: func(t *testing.T, _ *kfake.Cluster, ctl *kgo.Client, open func()) {
			for _, k := range []string{"r0", "r1", "r2"} {
				produceSync(t, ctl, &kgo.Record{Key: []byte(k), Value: []byte("v")})
			}
			abortAround(t, ctl, open)
		},
		hold: true,
		want: []string{"r0", "r1", "r2"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(50 * time.Millisecond)}
			ctl := newTestClient(t, append(base, kgo.DefaultProduceTopic("g"))...)
			adm := kadm.NewClient(ctl)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			if _, err := adm.CreateTopic(ctx, 1, 1, tc.configs, "g"); err != nil {
				t.Fatal(err)
			}
			tc.build(t, c, ctl, func() {
				b := newTxnClient(t, ctl, "b")
				if err := b.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				produceSync(t, b, &kgo.Record{Key: []byte("open"), Value: []byte("v")})
			})

			var probed, released atomic.Bool
			if tc.hold {
				release := make(chan struct{})
				c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
					c.KeepControl()
					if req.(*kmsg.FetchRequest).MaxWaitMillis == 0 {
						// catchUp's own question: it found records
						// it has not been handed, so it must not
						// be done. Let the reader's fetches go.
						if probed.CompareAndSwap(false, true) {
							close(release)
						}
						return nil, nil, false
					}
					if !released.Load() {
						c.SleepControl(func() {
							select {
							case <-release:
							case <-ctx.Done():
							}
						})
						released.Store(true)
					}
					return nil, nil, false
				})
			}

			targets, err := catchUpTargets(ctx, adm, "g")
			if err != nil {
				t.Fatal(err)
			}
			target, ok := targets[0]
			if !ok {
				t.Fatalf("nothing to read: targets %v", targets)
			}
			rd := newTestClient(t, append(base, kgo.ConsumeTopics("g"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.KeepControlRecords())...)
			var got []string
			start := time.Now()
			if err := catchUp(ctx, rd, "g", targets, func(r *kgo.Record) { got = append(got, string(r.Key)) }); err != nil {
				t.Fatalf("catchUp after %v: %v (applied %q)", time.Since(start).Round(time.Millisecond), err, got)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("applied %q, want %q", got, tc.want)
			}
			if tc.hold && (!released.Load() || !probed.Load()) {
				t.Errorf("held %v, asked the leader %v: the test did not hold the reader back until catchUp asked", released.Load(), probed.Load())
			}
			// The open transaction is still open: catchUp did not
			// just outwait it.
			lso, err := adm.ListCommittedOffsets(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := lso.Lookup("g", 0); o.Offset != target {
				t.Errorf("last stable offset moved from %d to %d while catchUp ran", target, o.Offset)
			}
		})
	}
}

func newTestClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newTxnClient is a transactional producer to ctl's cluster and default
// topic. Its transactions time out after a minute, far beyond any test's
// deadline.
func newTxnClient(t *testing.T, ctl *kgo.Client, id string) *kgo.Client {
	t.Helper()
	return newTestClient(t, append(ctl.Opts(), kgo.TransactionalID(id), kgo.TransactionTimeout(time.Minute))...)
}

func produceSync(t *testing.T, cl *kgo.Client, r *kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// abortAround writes a record in a transaction, runs open (which opens a
// transaction of its own and leaves it open), and aborts the first: the
// aborted record lies below the open transaction, its abort marker past it.
func abortAround(t *testing.T, ctl *kgo.Client, open func()) {
	t.Helper()
	a := newTxnClient(t, ctl, "a")
	if err := a.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, a, &kgo.Record{Key: []byte("aborted"), Value: []byte("v")})
	open()
	if err := a.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}
