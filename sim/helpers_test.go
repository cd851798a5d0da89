package sim

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testTimeout bounds every test that talks to a cluster.
const testTimeout = 20 * time.Second

// newCluster starts an embedded cluster closed at the end of the test.
func newCluster(t *testing.T, opts ...ClusterOption) *Cluster {
	t.Helper()
	c, err := NewCluster(opts...)
	if err != nil {
		t.Fatalf("NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// newClient returns a client of c with sim's recommended options and opts,
// closed at the end of the test (before the cluster: cleanups run last in
// first out).
func newClient(t *testing.T, c *Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(c.ClientOpts(), opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newCtx returns a context cancelled after testTimeout or at the test's end.
func newCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createTopics creates topics with the given partitions and configs.
func createTopics(t *testing.T, c *Cluster, partitions int32, configs map[string]*string, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	resps, err := adm.CreateTopics(newCtx(t), partitions, 1, configs, topics...)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			t.Fatalf("CreateTopics %s: %v", r.Topic, r.Err)
		}
	}
}

// endOffsetsSum returns the sum of the high watermarks of topic.
func endOffsetsSum(t *testing.T, c *Cluster, topic string) int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	offs, err := adm.ListEndOffsets(newCtx(t), topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	var sum int64
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		sum += o.Offset
	})
	return sum
}

// consumeN reads topics from the start until it has n records, failing the
// test if the context ends first.
func consumeN(t *testing.T, c *Cluster, n int, topics ...string) []*kgo.Record {
	t.Helper()
	ctx := newCtx(t)
	cl := newClient(t, c,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

// recordString identifies a record by topic, key, value and headers, for
// order-insensitive comparison; it prints lengths, not content, of values.
func recordString(r *kgo.Record) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s|%s|%x", r.Topic, r.Key, r.Value)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "|%s=%s", h.Key, h.Value)
	}
	return b.String()
}

func sortedRecordStrings(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = recordString(r)
	}
	sort.Strings(out)
	return out
}

// closesWithin runs stop and fails t unless it returns within d.
func closesWithin(t *testing.T, what string, stop func(), d time.Duration) {
	t.Helper()
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	select {
	case <-stopped:
	case <-deadline.C:
		t.Fatalf("%s did not return within %v", what, d)
	}
}
