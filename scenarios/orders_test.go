package scenarios

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/sim"
)

// Issue 5 (orders): 2,000 medication orders are processed exactly once
// each, PROCESSED at the injected clock's time, although the instance
// processing them is killed between produce and commit and its successor
// takes over.
func TestOrdersExactlyOnceAcrossACrash(t *testing.T) {
	c := kafkatest.NewCluster(t)
	prod := kafkatest.Client(t, c.ClientOpts())
	adm := kadm.NewClient(kafkatest.Client(t, c.ClientOpts()))
	spec := stageSpec(t, catalog.Settings{}, orders.Name, orders.Name)
	if err := pipeline.CreateTopics(context.Background(), adm, &spec, testPartitions, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := sim.NewVirtualClock(at)
	start := func() *kafkatest.Instance {
		return kafkatest.StartRunner(t, stageSpec(t, catalog.Settings{}, orders.Name, orders.Name), pipeline.WithKafka(c.ClientOpts()...), pipeline.WithCommitInterval(50*time.Millisecond),
			pipeline.WithInstanceID("orders-1"), pipeline.WithTransactionTimeout(5*time.Second), pipeline.WithLogger(testLogger()), pipeline.WithClock(clock))
	}

	crashed, release, fenced := crashFault(c.Kafka())
	recs, ids := sim.MedicationOrders(9, 2000)
	zombie := start()
	produceAll(t, prod, recs[:1000])
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the crash fault never fired")
	}
	zombie.Cancel()
	successor := start()
	select {
	case <-fenced:
	case <-time.After(20 * time.Second):
		t.Fatal("the successor never initialised its producer")
	}
	close(release)
	if err := zombie.Stop(); err != nil {
		t.Fatalf("zombie: %v", err)
	}
	produceAll(t, prod, recs[1000:])
	// Bounds the reads and the wait below together.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kafkatest.ReadN(ctx, t, c.ClientOpts(), len(ids), orders.TopicProcessed)
	kafkatest.WaitCaughtUp(ctx, t, c.ClientOpts(), spec)
	if err := successor.Stop(); err != nil {
		t.Fatal(err)
	}

	all := kafkatest.ReadToEnd(ctx, t, c.ClientOpts(), orders.TopicProcessed)
	seen := map[string]int{}
	for _, r := range all {
		var o struct{ ID, Status, ProcessedAt string }
		if err := json.Unmarshal(r.Value, &o); err != nil {
			t.Fatal(err)
		}
		seen[o.ID]++
		if o.Status != orders.StatusProcessed || o.ProcessedAt != "2025-03-01T10:00:00Z" {
			t.Errorf("order %s: status %s at %s", o.ID, o.Status, o.ProcessedAt)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("order %s processed %d times, want once", id, seen[id])
		}
	}
	if len(all) != len(ids) {
		t.Errorf("%d processed records, want %d", len(all), len(ids))
	}
	if n := len(kafkatest.ReadToEndAt(ctx, t, c.ClientOpts(), kgo.ReadUncommitted(), orders.TopicProcessed)); n <= len(ids) {
		t.Errorf("the log holds %d processed records with aborted ones, no more than the %d committed: the crash did not come after produce", n, len(ids))
	}
}
