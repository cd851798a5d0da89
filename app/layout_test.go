package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/topics"
)

// `carepipe run --create-topics` creates every topic as `carepipe topics
// plan` wants it, from the one layout: a plan after the create has nothing
// to do (issue 20; before, it planned min.insync.replicas,
// compression.type and max.message.bytes changes on every topic).
func TestPlanAfterCreateTopicsHasNothingToDo(t *testing.T) {
	c := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cfg := Config{Brokers: c.Addrs(), SchemaRegistryURL: reg.URL(), CreateTopics: true, SummaryEvery: -1, Partitions: 3}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	// Every topic of every pipeline, created by the runners as they start.
	want := cfg
	want.setDefaults()
	specs, err := specsOf(&want)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range topics.Desired(specs, topics.SeedDefaults()) {
		names = append(names, tp.Name)
	}
	cl := kafkatest.Client(t, c.ClientOpts())
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		td, err := adm.ListTopics(ctx, names...)
		missing := len(names)
		if err == nil {
			missing = 0
			for _, n := range names {
				if d, ok := td[n]; !ok || d.Err != nil {
					missing++
				}
			}
		}
		if missing == 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run stopped before creating its topics: %v", err)
		case <-deadline:
			t.Fatalf("%d of %d topics not created within a minute", missing, len(names))
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	d := topics.SeedDefaults()
	d.Partitions = 3
	var out bytes.Buffer
	plan := Config{Brokers: c.Addrs(), SchemaRegistryURL: reg.URL(), Stdout: &out}
	if err := Topics(context.Background(), plan, false, d, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "nothing to do") {
		t.Errorf("plan after run --create-topics:\n%s", got)
	}
}
