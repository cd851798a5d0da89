package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Option configures a [Runner]. Options are validated once, by [New].
type Option func(*cfg)

type cfg struct {
	kafka          []kgo.Opt
	commitInterval time.Duration
	commitRecords  int
	clock          Clock
	logger         *slog.Logger
	metrics        *metrics.Set
	instanceID     string
	txnTimeout     time.Duration
	queueBatches   int
	createTopics   bool
	partitions     int32
	replication    int16
	topicConfigs   map[string]map[string]string
	closeTimeout   time.Duration
	sessionBackoff time.Duration
	sessionTimeout time.Duration
	carried        []string // WithCarriedHeaders
	advertiseHTTP  string
}

func defaultCfg() cfg {
	return cfg{
		commitInterval: 100 * time.Millisecond,
		commitRecords:  50000,
		clock:          SystemClock{},
		logger:         slog.New(slog.DiscardHandler),
		txnTimeout:     10 * time.Second,
		queueBatches:   16,
		partitions:     12,
		replication:    -1,
		closeTimeout:   10 * time.Second,
		sessionBackoff: 250 * time.Millisecond,
		sessionTimeout: DefaultSessionTimeout,
	}
}

// WithKafka passes client options through to every franz-go client the
// runner makes: seed brokers, TLS, SASL, timeouts. The runner adds its own
// group, transaction and isolation options after these, and its session
// consumer's fetch limits (see FetchLimits), which override any given here.
// A session timeout or heartbeat interval given here wins over
// [WithSessionTimeout]'s.
func WithKafka(opts ...kgo.Opt) Option {
	return func(c *cfg) { c.kafka = append(c.kafka, opts...) }
}

// WithCommitInterval sets how long a transaction collects records before it
// commits. Default 100ms. Shorter lowers end-to-end latency; longer raises
// throughput (fewer transaction markers and round trips).
func WithCommitInterval(d time.Duration) Option { return func(c *cfg) { c.commitInterval = d } }

// WithCommitRecords caps the records consumed in one transaction; the
// transaction commits early when it is reached. Default 50,000: at the
// default interval it binds only above 500,000 records/s, and it bounds the
// work an abort throws away.
func WithCommitRecords(n int) Option { return func(c *cfg) { c.commitRecords = n } }

// WithClock injects the clock processors see through [Context.Now]. Default
// the system clock.
func WithClock(clk Clock) Option { return func(c *cfg) { c.clock = clk } }

// WithLogger sets the logger. Default: discard. The runner logs coordinates
// (topic, partition, offset), counts and error classes, never record content.
func WithLogger(l *slog.Logger) Option { return func(c *cfg) { c.logger = l } }

// WithMetrics sets the metrics set the runner registers its metrics in.
// Default: a new set, available from [Runner.Metrics].
func WithMetrics(s *metrics.Set) Option { return func(c *cfg) { c.metrics = s } }

// WithInstanceID gives the instance a stable name (a StatefulSet pod name).
// The transactional id becomes <group>-<id>, so a restarted instance fences
// its predecessor and aborts its open transaction at once, and the id is the
// group's static member id (group.instance.id, KIP-345): an instance
// restarted within the session timeout takes its partitions back without a
// rebalance, and none of the other members stops. A second live process
// with the same id is fenced by the group and stops: Run returns a
// [DuplicateInstanceError]. Default: a random transactional id per process
// and dynamic membership.
func WithInstanceID(id string) Option { return func(c *cfg) { c.instanceID = id } }

// DefaultSessionTimeout bounds how long a crashed member's partitions go
// unprocessed before the group moves them: about 10 s, Kafka's own default
// being 45 s. Brokers accept 6 s to 30 min unless configured otherwise
// (group.min.session.timeout.ms, group.max.session.timeout.ms).
const DefaultSessionTimeout = 10 * time.Second

// WithSessionTimeout sets the consumer group session timeout
// (session.timeout.ms): how long the group waits for a member that stopped
// heartbeating, a crashed one or one cut off, before it gives its
// partitions to the others, and how long a static member (see
// [WithInstanceID]) may be away and come back without a rebalance. The
// heartbeat interval is a third of it, at most 3 s. Default
// [DefaultSessionTimeout].
func WithSessionTimeout(d time.Duration) Option { return func(c *cfg) { c.sessionTimeout = d } }

// WithTransactionTimeout sets the broker-side transaction timeout. A crashed
// instance's open transaction holds back read_committed readers until it
// expires, so keep it short. Default 10s.
func WithTransactionTimeout(d time.Duration) Option { return func(c *cfg) { c.txnTimeout = d } }

// WithQueueBatches bounds each partition task's queue, in fetched batches.
// A full queue blocks polling: backpressure. Default 16.
func WithQueueBatches(n int) Option { return func(c *cfg) { c.queueBatches = n } }

// WithCreateTopics makes start-up create missing input, output, error and
// global-table topics with the given partition count and replication factor
// (-1: the broker's default) instead of failing. Internal topics (changelogs,
// repartitions) are always created. Default: off, 12 partitions.
func WithCreateTopics(partitions int32, replication int16) Option {
	return func(c *cfg) { c.createTopics, c.partitions, c.replication = true, partitions, replication }
}

// WithTopicLayout sets how start-up creates a missing topic: its
// replication factor (-1: the broker's default), and the configs of the
// topics configs names, in place of the spec's own ([TopicSpec.Configs]);
// partition counts stay the runner's (see [WithCreateTopics]). carepipe
// run passes the layout `carepipe topics plan` checks, so that a topic it
// creates is one the plan is content with. The replication given last,
// here or to WithCreateTopics, wins. Default: -1 and the spec's configs.
func WithTopicLayout(replication int16, configs map[string]map[string]string) Option {
	return func(c *cfg) { c.replication, c.topicConfigs = replication, configs }
}

// WithCloseTimeout bounds how long shutdown may take to finish the open
// transaction and leave the group. Default 10s.
func WithCloseTimeout(d time.Duration) Option { return func(c *cfg) { c.closeTimeout = d } }

func (c *cfg) validate() error {
	switch {
	case c.commitInterval <= 0:
		return errors.New("commit interval must be positive")
	case c.commitRecords <= 0:
		return errors.New("commit record cap must be positive")
	case c.clock == nil:
		return errors.New("nil clock")
	case c.logger == nil:
		return errors.New("nil logger")
	case c.txnTimeout < time.Second:
		return fmt.Errorf("transaction timeout %v is under 1s", c.txnTimeout)
	case c.queueBatches <= 0:
		return errors.New("queue size must be positive")
	case c.partitions <= 0:
		return errors.New("partition count must be positive")
	case c.closeTimeout <= 0:
		return errors.New("close timeout must be positive")
	case c.sessionTimeout < time.Second:
		return fmt.Errorf("session timeout %v is under 1s", c.sessionTimeout)
	}
	if err := checkAdvertised(c.advertiseHTTP); err != nil {
		return err
	}
	return CheckCarriedHeaders(c.carried...)
}
