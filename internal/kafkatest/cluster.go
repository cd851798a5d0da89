package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/sim"
)

// DefaultWait bounds a wait whose context has no deadline. Generous: CI
// runs every package at once under the race detector on two cores.
const DefaultWait = 30 * time.Second

// NewCluster starts sim's tuned embedded cluster (see sim.NewCluster for
// the tuning and opts), closed when the test ends.
func NewCluster(t testing.TB, opts ...sim.ClusterOption) *sim.Cluster {
	t.Helper()
	c, err := sim.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Client returns a client with kopts (a cluster's ClientOpts, say) and then
// opts, closed when the test ends. The options are copied: appending to
// kopts here never writes into the caller's slice.
func Client(t testing.TB, kopts []kgo.Opt, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(join(kopts, opts)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func join(a, b []kgo.Opt) []kgo.Opt {
	return append(append(make([]kgo.Opt, 0, len(a)+len(b)), a...), b...)
}

// bounded returns ctx, with a DefaultWait deadline if it has none.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultWait)
}
