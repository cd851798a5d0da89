package sim

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Tuning of the embedded cluster and of the clients that talk to it. The
// values trade robustness on a loaded machine (the race detector on two
// cores) against how long one injected fault stalls a test. kfake's and
// kgo's defaults are production values (6 s minimum session timeout, 3 s
// heartbeats, 5 s metadata minimum age, 250 ms..5 s retry backoff), and with
// them a single fault costs seconds: see DESIGN.md §4.
const (
	// groupMinSessionTimeout lets clients ask for sub-second sessions.
	groupMinSessionTimeout = 100 * time.Millisecond

	// clientSessionTimeout is how long a dead classic-group member holds
	// its partitions. Twenty heartbeats of slack.
	clientSessionTimeout = 2 * time.Second
	// clientHeartbeatInterval is how fast a member learns that a
	// rebalance started (and, for KIP-848 groups, the broker's interval).
	clientHeartbeatInterval = 100 * time.Millisecond
	// clientRebalanceTimeout bounds how long a rebalance waits for
	// members to rejoin after revoking (a revoke may wait for a commit).
	clientRebalanceTimeout = 5 * time.Second

	clientMetadataMinAge = 50 * time.Millisecond
	clientMetadataMaxAge = time.Second

	retryBackoffMin = 10 * time.Millisecond
	retryBackoffMax = 250 * time.Millisecond
)

// ClusterOption configures [NewCluster].
type ClusterOption interface {
	apply(*clusterCfg)
}

type clusterOpt struct{ fn func(*clusterCfg) }

func (o clusterOpt) apply(c *clusterCfg) { o.fn(c) }

type clusterCfg struct {
	brokers int
	kopts   []kfake.Opt
}

func (c *clusterCfg) validate() error {
	if c.brokers < 1 {
		return fmt.Errorf("sim: broker count %d, want at least 1", c.brokers)
	}
	return nil
}

// Brokers sets the number of brokers in the embedded cluster, overriding the
// default of 1. Several brokers let fault-injection tests move partition
// leaders; kfake does not replicate, so there is no data redundancy either
// way.
func Brokers(n int) ClusterOption {
	return clusterOpt{func(c *clusterCfg) { c.brokers = n }}
}

// KafkaOpts passes options through to kfake.NewCluster. They are applied
// after sim's defaults, so they override them (for example
// kfake.GroupMinSessionTimeout, or kfake.BrokerConfigs, whose maps merge).
// kfake.NumBrokers and kfake.Ports given here win over [Brokers]. May be
// given several times; options accumulate.
func KafkaOpts(opts ...kfake.Opt) ClusterOption {
	return clusterOpt{func(c *clusterCfg) { c.kopts = append(c.kopts, opts...) }}
}

// Cluster is an in-process Kafka cluster (kfake) listening on 127.0.0.1 on
// random ports. It supports what DESIGN.md §4 lists: idempotent and
// transactional producers, read_committed, classic and KIP-848 groups,
// compaction, fault injection. It does not replicate.
//
// A Cluster is safe for concurrent use. Close it when done; closing twice is
// harmless.
type Cluster struct {
	k      *kfake.Cluster
	closed atomic.Bool
}

// NewCluster starts an embedded cluster. Defaults, each overridable with
// [KafkaOpts]:
//
//   - 1 broker ([Brokers]);
//   - kfake.GroupMinSessionTimeout(100ms), so the short session timeouts of
//     [Cluster.ClientOpts] are accepted (kfake's default minimum is 6 s);
//   - broker configs group.consumer.heartbeat.interval.ms=100 and
//     group.consumer.session.timeout.ms=2000, the KIP-848 equivalents of
//     the same client settings (the server owns them in that protocol);
//   - no automatic topic creation: create topics explicitly (kadm), as
//     production does.
//
// kfake binds every broker to 127.0.0.1 (and nothing else) unless a
// kfake.ListenFn option says otherwise.
func NewCluster(opts ...ClusterOption) (*Cluster, error) {
	cfg := clusterCfg{brokers: 1}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.GroupMinSessionTimeout(groupMinSessionTimeout),
		kfake.BrokerConfigs(map[string]string{
			"group.consumer.heartbeat.interval.ms": fmt.Sprint(clientHeartbeatInterval.Milliseconds()),
			"group.consumer.session.timeout.ms":    fmt.Sprint(clientSessionTimeout.Milliseconds()),
		}),
	}
	kopts = append(kopts, cfg.kopts...)
	k, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("sim: start embedded cluster: %w", err)
	}
	if len(k.ListenAddrs()) == 0 {
		k.Close()
		return nil, errors.New("sim: embedded cluster has no listeners")
	}
	return &Cluster{k: k}, nil
}

// Addrs returns the brokers' host:port addresses (all on 127.0.0.1), in
// broker order. It asks kfake each time, so it reflects brokers added or
// removed with Kafka().AddNode and RemoveNode. After Close it returns nil
// (kfake's own ListenAddrs would block on a closed cluster); do not call it
// concurrently with Close.
func (c *Cluster) Addrs() []string {
	if c.closed.Load() {
		return nil
	}
	return c.k.ListenAddrs()
}

// Kafka returns the underlying kfake cluster, for fault injection
// (ControlKey, KeepControl, SleepControl, MoveTopicPartition, Compact, ...).
func (c *Cluster) Kafka() *kfake.Cluster { return c.k }

// Close shuts the cluster down. Clients still connected see their
// connections drop. Safe to call more than once.
func (c *Cluster) Close() {
	c.closed.Store(true)
	c.k.Close()
}

// ClientOpts returns the recommended kgo options for a client of this
// cluster; append your own after them (later options win). They are:
//
//   - kgo.SeedBrokers(all brokers);
//   - kgo.MetadataMinAge(50ms) and kgo.MetadataMaxAge(1s), so leader moves
//     and new topics are seen at once (defaults 5 s and 5 min);
//   - kgo.RetryBackoffFn: 10 ms doubling to 250 ms (default 250 ms..5 s),
//     so a retry after an injected fault does not stall a test; with the
//     default 20 request retries a request gives up after about 4 s;
//   - group options kgo.SessionTimeout(2s), kgo.HeartbeatInterval(100ms),
//     kgo.RebalanceTimeout(5s) (defaults 45 s, 3 s, 60 s), so joins and
//     rebalances take milliseconds and a killed member is replaced within
//     about 2 s. kgo validates but ignores them in a client that joins no
//     group, so they are safe for producers and admin clients too.
//
// It sets no transaction timeout: that is the runner's choice (keep it short,
// DESIGN.md §1).
func (c *Cluster) ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...),
		kgo.MetadataMinAge(clientMetadataMinAge),
		kgo.MetadataMaxAge(clientMetadataMaxAge),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.SessionTimeout(clientSessionTimeout),
		kgo.HeartbeatInterval(clientHeartbeatInterval),
		kgo.RebalanceTimeout(clientRebalanceTimeout),
	}
}

// retryBackoff doubles from retryBackoffMin to retryBackoffMax. No jitter: all
// clients are in one process against one in-memory broker, there is no herd
// to spread out.
func retryBackoff(fails int) time.Duration {
	if fails < 1 {
		return retryBackoffMin
	}
	if fails > 8 { // 10ms<<5 already exceeds the max; avoid shift overflow
		return retryBackoffMax
	}
	return min(retryBackoffMin<<(fails-1), retryBackoffMax)
}
