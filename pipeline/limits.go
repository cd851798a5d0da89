package pipeline

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBatchMaxBytes is the producer's batch cap for a topic that allows
// more: about the brokers' default max.message.bytes.
const defaultBatchMaxBytes = 1_000_012

// loadMaxBytes reads each output topic's max.message.bytes, which bounds
// what Process may emit to it (see task.atomically) and the producer's
// batches. A topic whose limit cannot be read (DescribeConfigs denied, a
// topic not yet known) gets the default cap: a warning, not a failure.
func (r *Runner) loadMaxBytes(ctx context.Context) {
	topics := make([]string, 0, len(r.outputs))
	for t := range r.outputs {
		topics = append(topics, t)
	}
	r.maxBytes = make(map[string]int, len(topics))
	if len(topics) == 0 {
		return
	}
	rcs, err := r.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		r.log.Warn("output topics' max.message.bytes not read; the default cap applies", "cap", defaultBatchMaxBytes, "error", err)
		return
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			r.log.Warn("output topic's max.message.bytes not read; the default cap applies", "topic", rc.Name, "cap", defaultBatchMaxBytes, "error", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
					r.maxBytes[rc.Name] = n
				}
			}
		}
	}
}

// recordLimit is the most a batch of topic may hold: its max.message.bytes
// when known, never more than the producer's default cap.
func (r *Runner) recordLimit(topic string) int {
	if m, ok := r.maxBytes[topic]; ok && m < defaultBatchMaxBytes {
		return m
	}
	return defaultBatchMaxBytes
}

// tooLarge reports whether rec, alone in a batch and uncompressed, would
// exceed the limit of its topic's batches, and the sizes. The broker (or
// the producer) refuses such a batch for good, so the record must never be
// produced: its input goes to the error topic instead. Compression could
// make some fit; an estimate that errs on the side of refusing keeps the
// transaction from failing over and over.
func (r *Runner) tooLarge(rec *kgo.Record) (size, limit int, over bool) {
	limit = r.recordLimit(rec.Topic)
	// A batch header, a record's own framing, and each header's.
	size = 61 + 21 + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		size += 10 + len(h.Key) + len(h.Value)
	}
	return size, limit, size > limit
}
