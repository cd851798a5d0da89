package datasync

import (
	"errors"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// CDC is the change-data-capture stage: source records to canonical
// changes. It keeps no state.
type CDC struct {
	codec   *Codec
	sources *Sources
	avro    *avroSource
	mapped  map[Entity]*metrics.Counter
	// tombstones counts the tombstones passed over: no change, no error
	// (carepipe_datasync_tombstones_total).
	tombstones *metrics.Counter
	group      string
}

// NewCDC builds the stage, encoding with the codec of [WithCodec].
func NewCDC(opts ...Option) (*CDC, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	if o.codec == nil {
		return nil, errNoCodec
	}
	return newCDC(o.codec, o), nil
}

func newCDC(codec *Codec, o *options) *CDC {
	p := &CDC{group: o.names.Group(GroupCDC), codec: codec, sources: o.sources, avro: newAvroSource(o.registry), mapped: make(map[Entity]*metrics.Counter),
		tombstones: o.set.GetOrCreateCounter(`carepipe_datasync_tombstones_total{pipeline="` + NameCDC + `"}`)}
	for _, e := range entities {
		p.mapped[e] = o.set.GetOrCreateCounter(`carepipe_datasync_changes_total{pipeline="` + NameCDC + `",entity="` + string(e) + `"}`)
	}
	return p
}

// Mapped counts changes published (not transactional: for the summary).
func (p *CDC) Mapped() uint64 {
	var n uint64
	for _, c := range p.mapped {
		n += c.Get()
	}
	return n
}

// Spec is the stage's runtime spec.
func (p *CDC) Spec() pipeline.Spec {
	var outs []string
	for _, e := range entities {
		outs = append(outs, ChangeTopic(e))
	}
	return pipeline.Spec{
		Name:       NameCDC,
		Group:      p.group,
		Inputs:     p.sources.topicNames(),
		Outputs:    outs,
		ErrorTopic: TopicErrors,
		Process:    p.process,
		ErrorValue: stageErrors("cdc"),

		OriginalValue: OriginalValue, // errors replay unwraps error records with it
	}
}

func stageErrors(stage string) func(*kgo.Record, pipeline.ErrorType, string, time.Time) []byte {
	return func(r *kgo.Record, typ pipeline.ErrorType, msg string, now time.Time) []byte {
		return ErrorRecord(stage, r, typ, msg, now)
	}
}

// process maps one source record to its canonical change, keyed by the
// entity id, with the seed's headers. A tombstone maps to nothing: the
// delete event before it was the change.
func (p *CDC) process(c *pipeline.Context, r *kgo.Record) error {
	m, err := p.sources.mapSource(sourceRecord{Topic: r.Topic, Key: r.Key, Value: r.Value, System: envelope.HeaderValue(r, HeaderSourceSystem), Timestamp: r.Timestamp.UnixMilli()}, p.avro)
	if err != nil {
		if errors.Is(err, errSchemaUnavailable) {
			// The record is good; the registry is not answering. Retried
			// in a new transaction, never sent to the error topic.
			return pipeline.Transient(err)
		}
		if errors.Is(err, errUnreadable) {
			return pipeline.Reject(pipeline.TypeDecode, err)
		}
		return pipeline.Reject(pipeline.TypeInvalid, err)
	}
	if m.Tombstone {
		p.tombstones.Inc()
		return nil
	}
	ch := &m.Change
	// A metadata correlation id over the bound or not text counts as
	// absent, as a correlation-id header does (envelope.CorrelationID).
	corr, ok := envelope.HeaderCorrelation(r)
	if !ok && envelope.ValidCorrelationID(m.CorrelationID) {
		corr = m.CorrelationID
	}
	if corr == "" {
		corr = envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
	}
	rec, err := ch.record()
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	topic := ChangeTopic(ch.Entity)
	source := "cdc-" + ch.Source
	ev := &event{
		Metadata: Metadata{
			EventID:       eventID("cdc", r),
			EventType:     topic,
			EventSource:   source,
			SourceSystem:  ch.Source,
			CorrelationID: corr,
			Timestamp:     c.Now().UnixMilli(),
		},
		Operation: string(ch.Op),
		Payload:   rec,
	}
	v, err := p.codec.encodeEvent(nil, topic, ch.Entity, ev)
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	hs := envelope.OutputHeaders(corr, source, topic)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderSourceSystem, Value: []byte(ch.Source)},
		kgo.RecordHeader{Key: HeaderEntityType, Value: []byte(ch.Entity)},
		kgo.RecordHeader{Key: HeaderOperationType, Value: []byte(ch.Op)},
	)
	c.Emit(&kgo.Record{Topic: topic, Key: []byte(ch.ID), Value: v, Headers: hs})
	p.mapped[ch.Entity].Inc()
	return nil
}

// eventID derives an output's event id from the stage and the input's
// coordinates: a replay of the same input derives the same id.
func eventID(stage string, r *kgo.Record) string {
	return envelope.DerivedCorrelationID(stage+"/"+r.Topic, r.Partition, r.Offset)
}
