// Package topics is carepipe's topics as code: the topics its pipelines need,
// with the configs they should have, compared with a cluster (Plan) and
// made so (Apply), idempotently. `carepipe topics plan|apply` runs it.
//
// It creates missing topics, raises partition counts and sets configs that
// differ; it never lowers a partition count (Kafka cannot, and re-keying
// would move every key's state) and never deletes a topic or a config it
// does not manage.
package topics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/carepipe/carepipe/pipeline"
)

// Topic is a topic as it should be.
type Topic struct {
	Name        string
	Partitions  int32
	Replication int16
	Configs     map[string]string
}

// Defaults are the layout of topics that specs do not decide themselves.
type Defaults struct {
	Partitions int32
	// Replication is every topic's replication factor; 0: decided by
	// the cluster's size (see Resolve).
	Replication int16
	// Configs apply to every topic; a topic's own configs (compaction, a
	// larger error topic) win.
	Configs map[string]string
}

// SeedDefaults is the seed's topic layout: 12 partitions, lz4, 1 MB
// messages, 7 days' retention (tables and changelogs are compacted
// instead), and the replication and min.insync.replicas the cluster's
// size allows (see Resolve): 3 and 2 on three brokers or more.
func SeedDefaults() Defaults {
	return Defaults{
		Partitions: 12,
		Configs: map[string]string{
			"compression.type":  "lz4",
			"max.message.bytes": "1000000",
			"retention.ms":      strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10),
		},
	}
}

// Resolve is d for a cluster of the given number of brokers, the one
// layout `carepipe topics plan` checks and `carepipe run --create-topics`
// creates:
//   - a replication of 0 becomes 3, or the brokers' count when there are
//     fewer (one on an embedded demo cluster);
//   - min.insync.replicas, unless d's configs set it, becomes the
//     replication less one, at most 2 and at least 1. With 3 replicas an
//     acks=all write (every carepipe write: transactions require it) is
//     acknowledged by 2 and survives the loss of a broker. With 2 or 1, a
//     minimum of every replica would refuse every write while one broker
//     is down, or always (NotEnoughReplicas) where it exceeds the
//     replicas: one acknowledgement is what such a cluster can promise.
func (d Defaults) Resolve(brokers int) Defaults {
	if d.Replication == 0 {
		d.Replication = int16(max(1, min(3, brokers)))
	}
	if _, ok := d.Configs["min.insync.replicas"]; !ok {
		c := maps.Clone(d.Configs)
		if c == nil {
			c = map[string]string{}
		}
		c["min.insync.replicas"] = strconv.Itoa(max(1, min(2, int(d.Replication)-1)))
		d.Configs = c
	}
	return d
}

// Desired is every topic the specs need, in spec order, each once, laid
// out by d, with each error topic's max.message.bytes raised to hold its
// inputs' largest records whole (see fitErrorTopics).
func Desired(specs []pipeline.Spec, d Defaults) []Topic {
	var out []Topic
	seen := map[string]bool{}
	for i := range specs {
		for _, t := range specs[i].Topics() {
			if seen[t.Name] {
				continue
			}
			seen[t.Name] = true
			configs := maps.Clone(d.Configs)
			if configs == nil {
				configs = map[string]string{}
			}
			maps.Copy(configs, t.Configs)
			if configs["cleanup.policy"] == "compact" {
				// A table keeps every key's latest value however old.
				delete(configs, "retention.ms")
			}
			out = append(out, Topic{Name: t.Name, Partitions: d.Partitions, Replication: d.Replication, Configs: configs})
		}
	}
	fitErrorTopics(specs, out, nil)
	return out
}

// fitErrorTopics raises each spec's error topic's max.message.bytes, where
// it is below an input's plus [pipeline.ErrorHeadersHeadroom], to that: an
// error record carries its input record whole, and one that cannot fit is
// written truncated (see [pipeline.TypeTruncated]). The topics named in keep
// (a topics file that sets an error topic's limit itself) are left as they
// are; the runner warns about them at start-up.
func fitErrorTopics(specs []pipeline.Spec, ts []Topic, keep map[string]bool) {
	index := make(map[string]int, len(ts))
	for i, t := range ts {
		index[t.Name] = i
	}
	limit := func(name string) int {
		i, ok := index[name]
		if !ok {
			return 0
		}
		n, _ := strconv.Atoi(ts[i].Configs["max.message.bytes"])
		return n
	}
	for i := range specs {
		e, ok := index[specs[i].ErrorTopic]
		if !ok || keep[specs[i].ErrorTopic] {
			continue
		}
		want := 0
		for _, in := range specs[i].Inputs {
			if n := limit(in); n > 0 {
				want = max(want, n+pipeline.ErrorHeadersHeadroom)
			}
		}
		if want > limit(specs[i].ErrorTopic) {
			c := maps.Clone(ts[e].Configs)
			if c == nil {
				c = map[string]string{}
			}
			c["max.message.bytes"] = strconv.Itoa(want)
			ts[e].Configs = c
		}
	}
}

// ChangeKind is what a change does.
type ChangeKind string

// The changes.
const (
	Create        ChangeKind = "create"
	AddPartitions ChangeKind = "add-partitions"
	SetConfig     ChangeKind = "set-config"
	// Refused: the cluster's topic has more partitions than desired.
	Refused ChangeKind = "refused"
)

// Change is one step from the cluster to the desired topics.
type Change struct {
	Kind  ChangeKind
	Topic Topic
	// From and To: partition counts (AddPartitions, Refused) or a config's
	// values (SetConfig, From "" when unset).
	From, To string
	Config   string
}

func (c Change) String() string {
	switch c.Kind {
	case Create:
		keys := slices.Sorted(maps.Keys(c.Topic.Configs))
		var cs []string
		for _, k := range keys {
			cs = append(cs, k+"="+c.Topic.Configs[k])
		}
		return fmt.Sprintf("create %s: %d partitions, replication %d, %s", c.Topic.Name, c.Topic.Partitions, c.Topic.Replication, strings.Join(cs, " "))
	case AddPartitions:
		return fmt.Sprintf("add partitions to %s: %s -> %s", c.Topic.Name, c.From, c.To)
	case SetConfig:
		from := c.From
		if from == "" {
			from = "(default)"
		}
		return fmt.Sprintf("set %s %s: %s -> %s", c.Topic.Name, c.Config, from, c.To)
	case Refused:
		return fmt.Sprintf("refused: %s has %s partitions, more than %s; partitions cannot be removed", c.Topic.Name, c.From, c.To)
	}
	return string(c.Kind)
}

// Plan compares the desired topics with the cluster and returns the
// changes, topic by topic in desired order. A topic with more partitions
// than desired yields a Refused change, which Apply reports as an error.
func Plan(ctx context.Context, adm *kadm.Client, desired []Topic) ([]Change, error) {
	st, err := Describe(ctx, adm, desired)
	if err != nil {
		return nil, err
	}
	return Compare(desired, st)
}

// State is what a plan compares the desired topics with: the cluster's
// brokers and the desired topics it has. The zero State is an empty
// cluster of unknown size, whose plan creates every topic.
type State struct {
	// Brokers is how many brokers the cluster has; 0: unknown, and
	// replication factors are not checked against it.
	Brokers int
	// Topics are the desired topics that exist, by name.
	Topics map[string]Existing
}

// Existing is a topic as the cluster has it.
type Existing struct {
	Partitions int32
	// Configs are the topic's configs that have a value, defaults
	// included.
	Configs map[string]string
}

// Describe reads from the cluster what Compare needs of it for desired.
func Describe(ctx context.Context, adm *kadm.Client, desired []Topic) (State, error) {
	var st State
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return st, fmt.Errorf("listing brokers: %w", err)
	}
	st.Brokers = len(brokers)
	names := make([]string, len(desired))
	for i, t := range desired {
		names[i] = t.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return st, fmt.Errorf("listing topics: %w", err)
	}
	st.Topics = map[string]Existing{}
	var existing []string
	for _, t := range desired {
		d, ok := details[t.Name]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			continue
		case d.Err != nil:
			return st, fmt.Errorf("topic %s: %w", t.Name, d.Err)
		}
		st.Topics[t.Name] = Existing{Partitions: int32(len(d.Partitions))}
		existing = append(existing, t.Name)
	}
	if len(existing) == 0 {
		return st, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
	if err != nil {
		return st, fmt.Errorf("describing topic configs: %w", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return st, fmt.Errorf("describing configs of %s: %w", rc.Name, rc.Err)
		}
		e, ok := st.Topics[rc.Name]
		if !ok {
			continue
		}
		e.Configs = map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				e.Configs[c.Key] = *c.Value
			}
		}
		st.Topics[rc.Name] = e
	}
	return st, nil
}

// Compare is the changes from st to the desired topics, topic by topic in
// desired order; see Plan. It reads nothing: Compare(desired, State{})
// is the plan for an empty cluster.
func Compare(desired []Topic, st State) ([]Change, error) {
	for _, t := range desired {
		if st.Brokers > 0 && int(t.Replication) > st.Brokers {
			return nil, fmt.Errorf("topic %s: replication %d exceeds the cluster's %d brokers", t.Name, t.Replication, st.Brokers)
		}
		if n, err := strconv.Atoi(t.Configs["min.insync.replicas"]); err == nil && t.Replication > 0 && n > int(t.Replication) {
			return nil, fmt.Errorf("topic %s: min.insync.replicas %d exceeds its replication %d: every acks=all write would be refused", t.Name, n, t.Replication)
		}
	}
	var changes []Change
	for _, t := range desired {
		have, ok := st.Topics[t.Name]
		if !ok {
			changes = append(changes, Change{Kind: Create, Topic: t})
			continue
		}
		from, to := strconv.Itoa(int(have.Partitions)), strconv.Itoa(int(t.Partitions))
		switch {
		case have.Partitions < t.Partitions:
			changes = append(changes, Change{Kind: AddPartitions, Topic: t, From: from, To: to})
		case have.Partitions > t.Partitions:
			changes = append(changes, Change{Kind: Refused, Topic: t, From: from, To: to})
		}
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			if v := have.Configs[k]; v != t.Configs[k] {
				changes = append(changes, Change{Kind: SetConfig, Topic: t, Config: k, From: v, To: t.Configs[k]})
			}
		}
	}
	return changes, nil
}

// Apply makes the changes. A Refused change is an error, and nothing is
// applied when the plan has one.
func Apply(ctx context.Context, adm *kadm.Client, changes []Change) error {
	for _, c := range changes {
		if c.Kind == Refused {
			return errors.New(c.String())
		}
	}
	for _, c := range changes {
		var err error
		switch c.Kind {
		case Create:
			configs := make(map[string]*string, len(c.Topic.Configs))
			for k, v := range c.Topic.Configs {
				configs[k] = kadm.StringPtr(v)
			}
			var resp kadm.CreateTopicResponse
			resp, err = adm.CreateTopic(ctx, c.Topic.Partitions, c.Topic.Replication, configs, c.Topic.Name)
			if err == nil {
				err = resp.Err
			}
		case AddPartitions:
			var resps kadm.CreatePartitionsResponses
			resps, err = adm.UpdatePartitions(ctx, int(c.Topic.Partitions), c.Topic.Name)
			if err == nil {
				err = resps.Error()
			}
		case SetConfig:
			var resps kadm.AlterConfigsResponses
			resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: c.Config, Value: kadm.StringPtr(c.To)}}, c.Topic.Name)
			if err == nil {
				for _, r := range resps {
					if r.Err != nil {
						err = r.Err
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	return nil
}
