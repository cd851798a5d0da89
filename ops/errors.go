package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// Filter selects error records; its zero value selects every one.
// Partitions and offsets are the original's, on its source topic, as the
// error headers say.
type Filter struct {
	// ErrorType is an error-type header value (invalid, decode, ...).
	ErrorType string
	// SourceTopic is the topic the originals were read from.
	SourceTopic string
	// Partitions are source partitions; empty: any.
	Partitions []int32
	// FromOffset and ToOffset bound the source offset, both included; a
	// nil bound is none.
	FromOffset, ToOffset *int64
	// Since and Until bound the record's timestamp, which is its
	// original's (the runner keeps it): Since included, Until excluded; a
	// zero bound is none.
	Since, Until time.Time
}

// Match reports whether e is selected.
func (f *Filter) Match(e *ErrorRecord) bool {
	switch {
	case f.ErrorType != "" && e.Type != f.ErrorType:
		return false
	case f.SourceTopic != "" && e.SourceTopic != f.SourceTopic:
		return false
	case len(f.Partitions) > 0 && !slices.Contains(f.Partitions, e.SourcePartition):
		return false
	case f.FromOffset != nil && e.SourceOffset < *f.FromOffset:
		return false
	case f.ToOffset != nil && e.SourceOffset > *f.ToOffset:
		return false
	case !f.Since.IsZero() && e.Timestamp.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Timestamp.Before(f.Until):
		return false
	}
	return true
}

// ErrorTopics are the distinct error topics of specs, in spec order
// (datasync's three stages share one).
func ErrorTopics(specs []pipeline.Spec) []string {
	var ts []string
	for _, s := range specs {
		if !slices.Contains(ts, s.ErrorTopic) {
			ts = append(ts, s.ErrorTopic)
		}
	}
	return ts
}

// ReadErrors reads the error topics of specs read_committed, up to their
// last stable offsets as of the call, and calls each for every record f
// selects, in partition and offset order within a partition. Of an error
// topic other pipelines write to as well, only the records whose source
// topic one of specs consumes are read. An error topic that does not
// exist yet has no records.
func ReadErrors(ctx context.Context, kopts []kgo.Opt, specs []pipeline.Spec, f Filter, each func(*ErrorRecord) error) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, topic := range ErrorTopics(specs) {
		if err := readErrorTopic(ctx, kopts, adm, specs, topic, f, each); err != nil {
			return err
		}
	}
	return nil
}

func readErrorTopic(ctx context.Context, kopts []kgo.Opt, adm *kadm.Client, specs []pipeline.Spec, topic string, f Filter, each func(*ErrorRecord) error) error {
	original, ok := originalValueOf(specs, topic)
	// An error topic can be shared (datasync's stages share one): of
	// specs' error topic, only the records of what specs consume are
	// theirs.
	consumed := map[string]bool{}
	for _, s := range specs {
		if s.ErrorTopic != topic {
			continue
		}
		for _, in := range s.Inputs {
			consumed[in] = true
		}
		for _, r := range s.Repartitions {
			consumed[pipeline.RepartitionTopic(s.Group, r)] = true
		}
	}
	err := readCommitted(ctx, kopts, adm, topic, func(r *kgo.Record) error {
		e := parseErrorRecord(r, original, !ok)
		if !f.Match(e) || e.SourceTopic != "" && !consumed[e.SourceTopic] {
			return nil
		}
		if e.Type == string(pipeline.TypeTruncated) {
			if err := recoverFromSource(ctx, kopts, adm, e); err != nil {
				return err
			}
		}
		return each(e)
	})
	if isNoTopic(err) {
		return nil
	}
	return err
}

// ErrNoRecord is an error record asked for that is not there: past the
// end, deleted by retention, or not a committed data record.
var ErrNoRecord = errors.New("no such error record")

// ReadErrorAt reads the error record at topic, partition, offset, one of
// specs' error topics.
func ReadErrorAt(ctx context.Context, kopts []kgo.Opt, specs []pipeline.Spec, topic string, partition int32, offset int64) (*ErrorRecord, error) {
	if !slices.Contains(ErrorTopics(specs), topic) {
		return nil, fmt.Errorf("%s is not an error topic of the pipeline (its error topics: %s)", topic, strings.Join(ErrorTopics(specs), ", "))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	original, ok := originalValueOf(specs, topic)
	var found *ErrorRecord
	err = readCommittedFrom(ctx, kopts, kadm.NewClient(cl), topic, map[int32]int64{partition: offset}, func(r *kgo.Record) error {
		if r.Offset == offset {
			found = parseErrorRecord(r, original, !ok)
		}
		return errStop
	})
	if err == nil && found != nil && found.Type == string(pipeline.TypeTruncated) {
		err = recoverFromSource(ctx, kopts, kadm.NewClient(cl), found)
	}
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%s/%d/%d: %w", topic, partition, offset, ErrNoRecord)
	}
	return found, nil
}

// recoverFromSource finds the original of e, a truncated error record, on
// its source topic: the record at its source coordinates, if it is still
// there and its value and key have the SHA-256 sums the error record
// keeps. Found, it is e's Original; otherwise Unreplayable says why.
func recoverFromSource(ctx context.Context, kopts []kgo.Opt, adm *kadm.Client, e *ErrorRecord) error {
	var src *kgo.Record
	err := readCommittedFrom(ctx, kopts, adm, e.SourceTopic, map[int32]int64{e.SourcePartition: e.SourceOffset}, func(r *kgo.Record) error {
		if r.Offset == e.SourceOffset {
			src = r
		}
		return errStop
	})
	if isNoTopic(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("reading the original of %s on %s: %w", e.Coordinates(), e.SourceTopic, err)
	}
	if src == nil {
		e.Unreplayable = "truncated, and its original is no longer on its source topic (retention or compaction deleted it)"
		return nil
	}
	var valueSum, keySum string
	for _, h := range e.Headers {
		switch h.Key {
		case pipeline.HeaderOriginalValueHash:
			valueSum = string(h.Value)
		case pipeline.HeaderOriginalKeyHash:
			keySum = string(h.Value)
		}
	}
	vs := sha256.Sum256(src.Value)
	ks := sha256.Sum256(src.Key)
	if valueSum != hex.EncodeToString(vs[:]) || (keySum == "") != (src.Key == nil) || (keySum != "" && keySum != hex.EncodeToString(ks[:])) {
		e.Unreplayable = "truncated, and the record at its source offset is not its original (its SHA-256 sums differ)"
		return nil
	}
	e.Original = &kgo.Record{
		Topic: src.Topic, Partition: src.Partition, Key: src.Key, Value: src.Value,
		Headers: src.Headers, Timestamp: src.Timestamp, Offset: -1,
	}
	e.KeyBytes, e.ValueBytes = len(src.Key), len(src.Value)
	e.Unreplayable = ""
	return nil
}
