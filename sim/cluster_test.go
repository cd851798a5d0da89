package sim

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestNewClusterOptions(t *testing.T) {
	tests := []struct {
		name        string
		opts        []ClusterOption
		wantBrokers int
		wantErr     bool
	}{
		{name: "default one broker", wantBrokers: 1},
		{name: "three brokers", opts: []ClusterOption{Brokers(3)}, wantBrokers: 3},
		{name: "kfake option wins", opts: []ClusterOption{Brokers(3), KafkaOpts(kfake.NumBrokers(2))}, wantBrokers: 2},
		{name: "zero brokers", opts: []ClusterOption{Brokers(0)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCluster(tt.opts...)
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("NewCluster succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatalf("NewCluster: %v", err)
			}
			t.Cleanup(c.Close)
			addrs := c.Addrs()
			if len(addrs) != tt.wantBrokers {
				t.Fatalf("Addrs() = %v, want %d brokers", addrs, tt.wantBrokers)
			}
			for _, a := range addrs {
				host, _, err := net.SplitHostPort(a)
				if err != nil {
					t.Fatalf("address %q: %v", a, err)
				}
				if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
					t.Errorf("broker listens on %q, want loopback only", a)
				}
			}
		})
	}
}

func TestClusterCloseTwice(t *testing.T) {
	c, err := NewCluster()
	if err != nil {
		t.Fatalf("NewCluster: %v", err)
	}
	c.Close()
	c.Close()
	if got := c.Addrs(); got != nil {
		t.Errorf("Addrs() after Close = %v, want nil", got)
	}
}

func TestClusterKafkaOptsPassThrough(t *testing.T) {
	c := newCluster(t, KafkaOpts(kfake.SeedTopics(4, "seeded")))
	adm := kadm.NewClient(newClient(t, c))
	td, err := adm.ListTopics(newCtx(t), "seeded")
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if got := len(td["seeded"].Partitions); got != 4 {
		t.Fatalf("seeded topic has %d partitions, want 4", got)
	}
}

// TestClusterSmoke produces a generated workload (patients, observations
// and poison, the oversized kind included) through the embedded cluster and
// reads every record back byte-identical.
func TestClusterSmoke(t *testing.T) {
	c := newCluster(t)
	createTopics(t, c, 3, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, TopicPatient)
	createTopics(t, c, 3, nil, TopicObservation)

	g, err := NewAlerts(AlertsWorkload{Seed: 7, Patients: 5, AlertFraction: 0.3, PoisonFraction: 0.3, EnvelopeFraction: 0.5, MisKeyedFraction: 0.2})
	if err != nil {
		t.Fatalf("NewAlerts: %v", err)
	}
	obs, _ := g.NextN(40)
	want := append(g.PatientRecords(), obs...)
	wantStrings := sortedRecordStrings(want) // before kgo touches them

	if err := Produce(newCtx(t), newClient(t, c), want); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	got := consumeN(t, c, len(want), TopicPatient, TopicObservation)
	if !slices.Equal(sortedRecordStrings(got), wantStrings) {
		t.Fatalf("consumed records differ from produced ones (%d consumed, %d produced)", len(got), len(want))
	}
}

func TestProduceMissingTopic(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c, kgo.UnknownTopicRetries(1))
	err := Produce(newCtx(t), cl, []*kgo.Record{{Topic: "no-such-topic", Value: []byte("x")}})
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("Produce to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		name  string
		fails int
		want  time.Duration
	}{
		{"zero", 0, 10 * time.Millisecond},
		{"first", 1, 10 * time.Millisecond},
		{"second", 2, 20 * time.Millisecond},
		{"fifth", 5, 160 * time.Millisecond},
		{"capped", 6, 250 * time.Millisecond},
		{"large", 1000, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryBackoff(tt.fails); got != tt.want {
				t.Errorf("retryBackoff(%d) = %v, want %v", tt.fails, got, tt.want)
			}
		})
	}
}

// TestClusterGroupJoinsFast checks that with the cluster's defaults and
// ClientOpts a second member joining a group gets partitions fast, in both
// group protocols. Measured here: about 0.2 s with them; with kfake's and
// kgo's defaults about 1 s (classic) and 20 s (KIP-848, 5 s heartbeats).
func TestClusterGroupJoinsFast(t *testing.T) {
	const (
		partitions = 4
		limit      = time.Second
	)
	tests := []struct {
		name string
		opts []kgo.Opt
	}{
		{name: "classic cooperative-sticky"},
		{name: "KIP-848", opts: []kgo.Opt{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			createTopics(t, c, partitions, nil, "joins")
			group := "g-" + tt.name
			ctx := newCtx(t)
			member := func() {
				newClient(t, c, append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics("joins")}, tt.opts...)...)
			}
			member()
			if _, err := c.Kafka().WaitGroupStable(ctx, group, 1); err != nil {
				t.Fatalf("first member never stable: %v", err)
			}
			start := time.Now()
			member()
			_, err := c.Kafka().WaitGroupInfo(ctx, group, func(g *kfake.GroupInfo) bool {
				if g == nil || g.State != "Stable" || len(g.Members) != 2 || g.NumAssigned() != partitions {
					return false
				}
				for i := range g.Members {
					if g.Members[i].NumAssigned() == 0 {
						return false
					}
				}
				return true
			})
			if err != nil {
				t.Fatalf("group never settled with two members: %v", err)
			}
			if elapsed := time.Since(start); elapsed > limit {
				t.Errorf("second member took %v to get partitions, want under %v", elapsed, limit)
			} else {
				t.Logf("second member got partitions after %v", elapsed)
			}
		})
	}
}
