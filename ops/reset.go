package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/carepipe/carepipe/pipeline"
)

// A reset does what kafka-streams-application-reset does for an
// application, for each consumer group of the pipelines given:
//
//   - it refuses a group that has members: a running instance would
//     commit its own offsets over the reset, and keep state the reset
//     deletes;
//   - it commits the group's offsets on its input topics: the earliest,
//     the latest, or the first at or after a time;
//   - it deletes the group's committed offsets on its repartition topics
//     and deletes its internal topics (changelogs and repartition topics),
//     which the runner creates again, empty, when the pipeline next
//     starts. Deleted rather than truncated: a changelog is compacted,
//     and Kafka refuses to delete records of a compacted topic.
//
// Output topics, the error topic, its replay log and global tables are
// not touched, as Kafka Streams' reset leaves output and global topics.

// ResetTo is where a reset puts the input offsets.
type ResetTo struct {
	// Latest: the end of each input (skip what is there). Otherwise the
	// start, or, when Time is set, the first offset at or after it.
	Latest bool
	Time   time.Time
}

func (t ResetTo) String() string {
	switch {
	case t.Latest:
		return "the latest offsets"
	case !t.Time.IsZero():
		return "the first offsets at or after " + t.Time.UTC().Format(time.RFC3339)
	}
	return "the earliest offsets"
}

// ResetPlan is what a reset does to one group.
type ResetPlan struct {
	Pipeline string
	Group    string
	To       ResetTo
	// Offsets are the input partitions' new offsets; Committed the
	// offsets committed before (-1: none).
	Offsets []ResetOffset
	// DeleteOffsets are the topics whose committed offsets are deleted.
	DeleteOffsets []string
	// DeleteTopics are the internal topics that exist and are deleted.
	DeleteTopics []string
}

// ResetOffset is one input partition's committed offset before and after.
type ResetOffset struct {
	Topic     string
	Partition int32
	Committed int64
	To        int64
}

// ActiveMembersError is a reset refused: the group has live members.
type ActiveMembersError struct {
	Group   string
	State   string
	Members int
}

func (e *ActiveMembersError) Error() string {
	return fmt.Sprintf("group %s has %d active members (state %s): stop every instance of the pipeline first; a reset under running instances would be overwritten by their next commit", e.Group, e.Members, e.State)
}

// PlanReset checks that no group of specs has members and returns what a
// reset to to would do to each.
func PlanReset(ctx context.Context, adm *kadm.Client, specs []pipeline.Spec, to ResetTo) ([]ResetPlan, error) {
	var plans []ResetPlan
	for i := range specs {
		s := &specs[i]
		if err := checkNoMembers(ctx, adm, s.Group); err != nil {
			return nil, err
		}
		p := ResetPlan{Pipeline: s.Name, Group: s.Group, To: to}
		committed, err := adm.FetchOffsets(ctx, s.Group)
		if err == nil {
			err = committed.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("group %s: fetching its offsets: %w", s.Group, err)
		}
		var listed kadm.ListedOffsets
		switch {
		case to.Latest:
			listed, err = adm.ListEndOffsets(ctx, s.Inputs...)
		case !to.Time.IsZero():
			listed, err = adm.ListOffsetsAfterMilli(ctx, to.Time.UnixMilli(), s.Inputs...)
		default:
			listed, err = adm.ListStartOffsets(ctx, s.Inputs...)
		}
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("group %s: listing its inputs' offsets: %w", s.Group, err)
		}
		listed.Each(func(o kadm.ListedOffset) {
			c := int64(-1)
			if oc, ok := committed.Lookup(o.Topic, o.Partition); ok {
				c = oc.At
			}
			p.Offsets = append(p.Offsets, ResetOffset{Topic: o.Topic, Partition: o.Partition, Committed: c, To: o.Offset})
		})
		slices.SortFunc(p.Offsets, func(a, b ResetOffset) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition - b.Partition)
		})
		var internal []string
		for _, t := range s.Topics() {
			if t.Internal() {
				internal = append(internal, t.Name)
			}
		}
		for _, r := range s.Repartitions {
			if topic := pipeline.RepartitionTopic(s.Group, r); len(committed[topic]) > 0 {
				p.DeleteOffsets = append(p.DeleteOffsets, topic)
			}
		}
		if len(internal) > 0 {
			details, err := adm.ListTopics(ctx, internal...)
			if err != nil {
				return nil, fmt.Errorf("group %s: listing its internal topics: %w", s.Group, err)
			}
			for _, t := range internal {
				if d, ok := details[t]; ok && d.Err == nil {
					p.DeleteTopics = append(p.DeleteTopics, t)
				}
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// checkNoMembers refuses a group with members.
func checkNoMembers(ctx context.Context, adm *kadm.Client, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("group %s: describing it: %w", group, err)
	}
	d, ok := described[group]
	if !ok {
		return fmt.Errorf("group %s: not described", group)
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("group %s: describing it: %w", group, d.Err)
	}
	if len(d.Members) > 0 {
		return &ActiveMembersError{Group: group, State: d.State, Members: len(d.Members)}
	}
	return nil
}

// ApplyReset carries plans out: it checks again that each group has no
// members, commits the new offsets (which the broker refuses, too, once a
// member has joined), deletes the repartition topics' offsets and the
// internal topics, and waits until those topics are gone, so that the
// pipeline, started next, creates them anew.
func ApplyReset(ctx context.Context, adm *kadm.Client, plans []ResetPlan) error {
	for _, p := range plans {
		if err := checkNoMembers(ctx, adm, p.Group); err != nil {
			return err
		}
		offsets := kadm.Offsets{}
		for _, o := range p.Offsets {
			offsets.AddOffset(o.Topic, o.Partition, o.To, -1)
		}
		if len(offsets) > 0 {
			resp, err := adm.CommitOffsets(ctx, p.Group, offsets)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("group %s: committing its reset offsets: %w", p.Group, err)
			}
		}
		if len(p.DeleteOffsets) > 0 {
			set := kadm.TopicsSet{}
			committed, err := adm.FetchOffsets(ctx, p.Group)
			if err != nil {
				return fmt.Errorf("group %s: fetching its offsets: %w", p.Group, err)
			}
			for _, t := range p.DeleteOffsets {
				for part := range committed[t] {
					set.Add(t, part)
				}
			}
			resp, err := adm.DeleteOffsets(ctx, p.Group, set)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("group %s: deleting its repartition topics' offsets: %w", p.Group, err)
			}
		}
		if len(p.DeleteTopics) > 0 {
			resp, err := adm.DeleteTopics(ctx, p.DeleteTopics...)
			if err == nil {
				err = resp.Error()
			}
			if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("group %s: deleting its internal topics: %w", p.Group, err)
			}
			if err := waitGone(ctx, adm, p.DeleteTopics); err != nil {
				return fmt.Errorf("group %s: %w", p.Group, err)
			}
		}
	}
	return nil
}

// waitGone waits until the cluster's metadata no longer lists topics:
// Kafka deletes a topic in the background, and creating it again before
// that fails.
func waitGone(ctx context.Context, adm *kadm.Client, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := adm.ListTopics(ctx, topics...)
		if err == nil {
			gone := true
			for _, t := range topics {
				if d, ok := details[t]; ok && d.Err == nil {
					gone = false
				}
			}
			if gone {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("internal topics %s still listed a minute after their deletion", strings.Join(topics, ", "))
		case <-tick.C:
		}
	}
}

// WritePlan prints plans for people: per group, each input partition's
// committed offset and the new one, and what is deleted.
func WritePlan(w io.Writer, plans []ResetPlan) {
	for _, p := range plans {
		fmt.Fprintf(w, "pipeline %s, group %s: reset to %s\n", p.Pipeline, p.Group, p.To)
		for _, o := range p.Offsets {
			from := "none"
			if o.Committed >= 0 {
				from = fmt.Sprint(o.Committed)
			}
			fmt.Fprintf(w, "  offset %s[%d]: %s -> %d\n", o.Topic, o.Partition, from, o.To)
		}
		for _, t := range p.DeleteOffsets {
			fmt.Fprintf(w, "  delete the group's offsets on %s\n", t)
		}
		for _, t := range p.DeleteTopics {
			fmt.Fprintf(w, "  delete internal topic %s\n", t)
		}
	}
}
