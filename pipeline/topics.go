package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorTopicMaxBytes is the error topic's max.message.bytes when carepipe
// creates it, and what the runner assumes when it cannot read the topic's
// own: an error record is an input record whole plus error headers, so it
// must fit records as large as any input topic accepts (the broker default
// is about 1 MB). An input that allows more is checked at start-up, and its
// records that do not fit are written truncated (see [TypeTruncated]).
const errorTopicMaxBytes = 4 << 20

// ErrorHeadersHeadroom is what an error record adds to its input record, at
// most, in the start-up check and in the topics carepipe plans: the error
// headers, with a message of a few hundred bytes. An error topic should
// allow its largest input's max.message.bytes plus this. A longer message,
// or a Spec.ErrorValue that grows the value, can still make an error record
// truncated.
const ErrorHeadersHeadroom = 4 << 10

// TopicKind says what a topic is to a pipeline; it decides how a missing
// topic is created.
type TopicKind int

const (
	TopicInput TopicKind = iota
	TopicOutput
	TopicError
	TopicGlobal      // compacted, read whole by every instance
	TopicChangelog   // internal, compacted, co-partitioned with the inputs
	TopicRepartition // internal, co-partitioned with the inputs
)

// TopicSpec is a topic a pipeline needs, and how to create it.
type TopicSpec struct {
	Name    string
	Kind    TopicKind
	Configs map[string]string
}

// Internal reports whether carepipe owns the topic (and so always creates it).
func (t TopicSpec) Internal() bool { return t.Kind == TopicChangelog || t.Kind == TopicRepartition }

// Topics lists every topic the spec needs, in a stable order, with the
// configs carepipe creates them with.
func (s *Spec) Topics() []TopicSpec {
	compact := map[string]string{"cleanup.policy": "compact"}
	var ts []TopicSpec
	add := func(name string, kind TopicKind, configs map[string]string) {
		for _, t := range ts {
			if t.Name == name {
				return
			}
		}
		ts = append(ts, TopicSpec{Name: name, Kind: kind, Configs: configs})
	}
	for _, t := range s.Inputs {
		add(t, TopicInput, nil)
	}
	for _, t := range s.Outputs {
		add(t, TopicOutput, nil)
	}
	add(s.ErrorTopic, TopicError, map[string]string{"max.message.bytes": strconv.Itoa(errorTopicMaxBytes)})
	for _, g := range s.GlobalTables {
		add(g.Topic, TopicGlobal, compact)
	}
	for _, st := range s.Stores {
		add(ChangelogTopic(s.Group, st), TopicChangelog, compact)
	}
	for _, r := range s.Repartitions {
		add(RepartitionTopic(s.Group, r), TopicRepartition, nil)
	}
	return ts
}

// MissingTopicsError names the topics a pipeline needs that do not exist.
type MissingTopicsError struct {
	Pipeline string
	Topics   []string
}

func (e *MissingTopicsError) Error() string {
	return fmt.Sprintf("pipeline %s: missing topics %s (create them, or run with --create-topics)",
		e.Pipeline, strings.Join(e.Topics, ", "))
}

// ensureTopics checks that every topic exists, creating internal topics
// always and the others when create is set, and returns the partition count
// that the spec's tasks are numbered by. When the spec has state, the
// consumed topics and changelogs must all have that count: a task's state
// partition p serves exactly partition p of each input. A topic named in
// layout is created with its configs there, not the spec's (see
// [WithTopicLayout]).
func ensureTopics(ctx context.Context, adm *kadm.Client, s *Spec, create bool, partitions int32, replication int16, layout map[string]map[string]string) (int32, error) {
	specs := s.Topics()
	names := make([]string, len(specs))
	for i, t := range specs {
		names[i] = t.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return 0, fmt.Errorf("pipeline %s: listing topics: %w", s.Name, err)
	}
	counts := make(map[string]int32, len(specs))
	var missing []string
	for _, t := range specs {
		d, ok := details[t.Name]
		switch {
		case ok && d.Err == nil:
			counts[t.Name] = int32(len(d.Partitions))
		case ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return 0, fmt.Errorf("pipeline %s: topic %s: %w", s.Name, t.Name, d.Err)
		case !t.Internal() && !create:
			missing = append(missing, t.Name)
		}
	}
	if len(missing) > 0 {
		return 0, &MissingTopicsError{Pipeline: s.Name, Topics: missing}
	}

	// The task count is the inputs' partition count, when they exist;
	// internal topics follow it.
	n := partitions
	for _, t := range s.Inputs {
		if c, ok := counts[t]; ok {
			n = c
			break
		}
	}
	for _, t := range specs {
		if _, ok := counts[t.Name]; ok {
			continue
		}
		p := partitions
		if t.Internal() || t.Kind == TopicInput {
			p = n
		}
		if c, ok := layout[t.Name]; ok {
			t.Configs = c
		}
		if err := createTopic(ctx, adm, t, p, replication); err != nil {
			return 0, fmt.Errorf("pipeline %s: %w", s.Name, err)
		}
		counts[t.Name] = p
	}

	if len(s.Stores) > 0 {
		var off []string
		for _, t := range specs {
			if t.Kind == TopicInput || t.Internal() {
				if counts[t.Name] != n {
					off = append(off, fmt.Sprintf("%s (%d)", t.Name, counts[t.Name]))
				}
			}
		}
		if len(off) > 0 {
			sort.Strings(off)
			return 0, fmt.Errorf("pipeline %s: not co-partitioned: the inputs and state topics must all have %d partitions; these differ: %s",
				s.Name, n, strings.Join(off, ", "))
		}
	}
	return n, nil
}

func createTopic(ctx context.Context, adm *kadm.Client, t TopicSpec, partitions int32, replication int16) error {
	var configs map[string]*string
	if len(t.Configs) > 0 {
		configs = make(map[string]*string, len(t.Configs))
		for k, v := range t.Configs {
			configs[k] = kadm.StringPtr(v)
		}
	}
	resp, err := adm.CreateTopic(ctx, partitions, replication, configs, t.Name)
	if err == nil {
		err = resp.Err
	}
	// Another instance starting at the same time may have won the race.
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", t.Name, err)
	}
	return nil
}

// CreateTopics creates every topic the spec needs that does not exist yet,
// all with the given partition count, with carepipe's configs (compacted
// changelogs and global tables, a larger error topic). Tests, benchmarks and
// tools use it to lay out a cluster before a runner starts.
func CreateTopics(ctx context.Context, adm *kadm.Client, s *Spec, partitions int32, replication int16) error {
	for _, t := range s.Topics() {
		if err := createTopic(ctx, adm, t, partitions, replication); err != nil {
			return err
		}
	}
	return nil
}

// loadErrorLimit reads the max.message.bytes of the error topic and of the
// inputs. The error topic's becomes the error records' limit (see
// [TypeTruncated]); when it cannot be read, carepipe's own
// (errorTopicMaxBytes) is assumed, and a broker that refuses an error
// record under it lowers it (errorTopicRefused). An input that allows
// larger records than the error topic can take is a warning, not a
// failure: its records that do not fit are written truncated, and the
// partition moves on. An error topic too small for even a truncated error
// record (under errorRecordMinBytes) is a failure: every error would stop
// the pipeline.
func (r *Runner) loadErrorLimit(ctx context.Context) error {
	topics := append([]string{r.spec.ErrorTopic}, r.spec.Inputs...)
	limits := make(map[string]int, len(topics))
	rcs, err := r.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		r.log.Warn("the error and input topics' max.message.bytes not read", "error", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			r.log.Warn("topic's max.message.bytes not read", "topic", rc.Name, "error", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
					limits[rc.Name] = n
				}
			}
		}
	}
	errMax, ok := limits[r.spec.ErrorTopic]
	if !ok {
		errMax = errorTopicMaxBytes
		r.log.Warn("the error topic's max.message.bytes is assumed to be carepipe's own",
			"topic", r.spec.ErrorTopic, "max_message_bytes", errMax)
	}
	if errMax < errorRecordMinBytes {
		return fmt.Errorf("pipeline %s: error topic %s allows records of %d bytes, fewer than the %d an error record needs (raise its max.message.bytes)",
			r.spec.Name, r.spec.ErrorTopic, errMax, errorRecordMinBytes)
	}
	r.errLimit.Store(int64(min(errMax, errorRecordMaxBytes)))
	for _, in := range r.spec.Inputs {
		r.inputMaxBytes = max(r.inputMaxBytes, limits[in])
	}
	for _, in := range r.spec.Inputs {
		if n, ok := limits[in]; ok && n+ErrorHeadersHeadroom > errMax {
			r.log.Warn(fmt.Sprintf("input %s allows %d bytes but error topic %s only %d: oversized records will be written truncated",
				in, n, r.spec.ErrorTopic, errMax),
				"input", in, "input_max_message_bytes", n, "error_topic", r.spec.ErrorTopic, "error_topic_max_message_bytes", errMax)
		}
	}
	return nil
}
