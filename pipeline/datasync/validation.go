package datasync

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// Validation is the validation stage: it checks each canonical change,
// resolves it against its entity's state, and publishes the entity as
// resolved.
type Validation struct {
	codec    *Codec
	policies Policies
	outcomes map[Entity]map[string]*metrics.Counter
	rekeyed  *metrics.Counter
	// repartition is the deployment's name of the by-entity topic.
	group, repartition string
}

// Outcomes of a change at validation, as metric labels.
var validationOutcomes = [...]string{"applied", "conflict_resolved", "kept", "duplicate", "stale", "invalid"}

// NewValidation builds the stage, decoding and encoding with the codec of
// [WithCodec].
func NewValidation(opts ...Option) (*Validation, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	if o.codec == nil {
		return nil, errNoCodec
	}
	return newValidation(o.codec, o), nil
}

func newValidation(codec *Codec, o *options) *Validation {
	set, policies := o.set, o.policies
	group := o.names.Group(GroupValidation)
	p := &Validation{group: group, repartition: pipeline.RepartitionTopic(group, RepartitionByEntity), codec: codec, policies: policies, outcomes: make(map[Entity]map[string]*metrics.Counter)}
	for _, e := range entities {
		p.outcomes[e] = make(map[string]*metrics.Counter)
		for _, o := range validationOutcomes {
			p.outcomes[e][o] = set.GetOrCreateCounter(`carepipe_datasync_validation_total{pipeline="` + NameValidation + `",entity="` + string(e) + `",outcome="` + o + `"}`)
		}
	}
	p.rekeyed = set.GetOrCreateCounter(`carepipe_datasync_validation_repartitioned_total{pipeline="` + NameValidation + `"}`)
	return p
}

// Count is the number of changes of every entity type with outcome (one of
// applied, conflict_resolved, kept, duplicate, stale, invalid): for the
// summary. A kept change is held in the state for later (it may win once a
// delete removes the value that beats it) without changing the entity.
func (p *Validation) Count(outcome string) uint64 {
	var n uint64
	for _, m := range p.outcomes {
		if c := m[outcome]; c != nil {
			n += c.Get()
		}
	}
	return n
}

// Spec is the stage's runtime spec.
func (p *Validation) Spec() pipeline.Spec {
	var ins, outs []string
	for _, e := range entities {
		ins = append(ins, ChangeTopic(e))
		outs = append(outs, ValidatedTopic(e))
	}
	return pipeline.Spec{
		Name:         NameValidation,
		Group:        p.group,
		Inputs:       ins,
		Outputs:      outs,
		ErrorTopic:   TopicErrors,
		Stores:       []string{StoreEntities},
		Repartitions: []string{RepartitionByEntity},
		Process:      p.process,
		ErrorValue:   stageErrors("validation"),

		OriginalValue: OriginalValue, // errors replay unwraps error records with it
	}
}

// entityOf is the entity type of a canonical record: from its topic, or,
// on the repartition topic, from its entity-type header.
func entityOf(r *kgo.Record, repartition string) (Entity, error) {
	if r.Topic == repartition {
		e := Entity(envelope.HeaderValue(r, HeaderEntityType))
		for _, k := range entities {
			if k == e {
				return e, nil
			}
		}
		return "", pipeline.Rejectf(pipeline.TypeInvalid, "re-keyed record has no known entity-type header")
	}
	e, ok := entityOfTopic(r.Topic)
	if !ok {
		return "", pipeline.Rejectf(pipeline.TypeInvalid, "topic %s is not a canonical topic", r.Topic)
	}
	return e, nil
}

// process validates and resolves one canonical change.
func (p *Validation) process(c *pipeline.Context, r *kgo.Record) error {
	e, err := entityOf(r, p.repartition)
	if err != nil {
		return err
	}
	ev, err := p.codec.decodeEvent(r.Value, e)
	if err != nil {
		return pipeline.Reject(pipeline.TypeDecode, err)
	}
	sys, ok := ev.system()
	if !ok {
		return pipeline.Rejectf(pipeline.TypeInvalid, "canonical change carries no record")
	}
	if sys.ID == "" {
		return pipeline.Rejectf(pipeline.TypeInvalid, "canonical change has no entity id")
	}
	key := []byte(sys.ID)
	if r.Topic != p.repartition && (string(r.Key) != sys.ID || !c.IsLocal(key)) {
		extra := []kgo.RecordHeader{{Key: HeaderEntityType, Value: []byte(e)}}
		c.Repartition(RepartitionByEntity, key, extra...)
		p.rekeyed.Inc()
		return nil
	}
	ch := Change{Entity: e, ID: sys.ID, Op: Operation(ev.Operation), Source: sys.SourceSystem, SourceTime: sys.LastUpdated, SourceVersion: sys.Version}
	if ch.Op != OpDelete {
		if ch.Fields, err = FieldsOf(ev.Payload); err != nil {
			return pipeline.Reject(pipeline.TypeProcessing, err)
		}
	}
	store := c.Store(StoreEntities)
	skey := string(e) + "/" + sys.ID
	var prev *State
	if b, ok := store.Get(skey); ok {
		if prev, err = UnmarshalState(b); err != nil {
			return pipeline.Rejectf(pipeline.TypeProcessing, "held state of the entity is not readable: %v", err)
		}
	}
	wasDeleted := prev != nil && prev.Materialize(e, sys.ID).Op == OpDelete
	pol := p.policies[e]
	if problems := validateChange(p.subject(pol, prev, &ch)); len(problems) > 0 {
		p.outcomes[e]["invalid"].Inc()
		return pipeline.Rejectf(pipeline.TypeInvalid, "validation failed: %s", strings.Join(problems, "; "))
	}

	out := pol.apply(prev, &ch)
	switch {
	case out.Kind == outcomeDuplicate, out.Kind == outcomeStale && ch.Op == OpDelete && wasDeleted:
		// A source's redelivery, or a delete of what is deleted already
		// (Debezium's tombstone after its delete event): the state holds
		// it.
		p.outcomes[e]["duplicate"].Inc()
		return nil
	case out.Kind == outcomeStale:
		p.outcomes[e]["stale"].Inc()
		return pipeline.Reject(pipeline.TypeConflict, staleError(pol.Strategy, out.Resolution))
	}
	m := out.State.Materialize(e, sys.ID)
	if (!out.Changed && out.Resolution == nil) || (wasDeleted && m.Op == OpDelete) {
		// The state keeps the change (a value that may win after a future
		// delete, a later delete time), but the entity is as it was and no
		// conflict was decided: nothing to publish, and no version.
		if prev != nil {
			out.State.Version = prev.Version
		} else {
			out.State.Version = 0
		}
		held, err := marshalState(out.State)
		if err != nil {
			return pipeline.Reject(pipeline.TypeProcessing, err)
		}
		store.Put(skey, held)
		p.outcomes[e]["kept"].Inc()
		return nil
	}
	held, err := marshalState(out.State)
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	store.Put(skey, held)

	rec, err := m.record()
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	op := ev.Operation
	if m.Op == OpDelete {
		op = string(OpDelete)
	} else if ch.Op == OpDelete {
		// A delete that lost to newer fields leaves the entity as it was.
		op = string(OpUpdate)
	}
	corr, ok := envelope.HeaderCorrelation(r)
	if !ok && envelope.ValidCorrelationID(ev.Metadata.CorrelationID) {
		corr = ev.Metadata.CorrelationID
	}
	if corr == "" {
		corr = envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
	}
	topic := ValidatedTopic(e)
	resolved := out.Resolution != nil
	outEv := &event{
		Metadata: Metadata{
			EventID:            envelope.DerivedCorrelationID("validated/"+ev.Metadata.EventID, 0, 0),
			EventType:          topic,
			EventSource:        EventSourceValidation,
			SourceSystem:       m.Source,
			CorrelationID:      corr,
			Timestamp:          c.Now().UnixMilli(),
			ConflictResolution: resolved,
		},
		Operation:  op,
		Version:    out.State.Version,
		Payload:    rec,
		Resolution: out.Resolution,
	}
	v, err := p.codec.encodeEvent(nil, topic, e, outEv)
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	hs := envelope.OutputHeaders(corr, EventSourceValidation, topic)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderSourceSystem, Value: []byte(m.Source)},
		kgo.RecordHeader{Key: HeaderEntityType, Value: []byte(e)},
		kgo.RecordHeader{Key: HeaderOperationType, Value: []byte(op)},
		kgo.RecordHeader{Key: HeaderConflictResolved, Value: []byte(strconv.FormatBool(resolved))},
	)
	c.Emit(&kgo.Record{Topic: topic, Key: key, Value: v, Headers: hs})
	if resolved {
		p.outcomes[e]["conflict_resolved"].Inc()
	} else {
		p.outcomes[e]["applied"].Inc()
	}
	return nil
}

// subject is what Validate checks for change ch: under last-writer-wins the
// change itself, which replaces the record; under the per-field strategies
// the held entity with the change's fields over it, so a partial update (an
// address alone) is judged with the fields it does not repeat, and every
// value it brings is still checked.
func (p *Validation) subject(pol Policy, prev *State, ch *Change) *Change {
	if pol.Strategy == LastWriterWins || ch.Op == OpDelete || prev == nil {
		return ch
	}
	held := prev.Materialize(ch.Entity, ch.ID)
	if held.Op == OpDelete {
		return ch
	}
	merged := maps.Clone(held.Fields)
	maps.Copy(merged, ch.Fields)
	s := *ch
	s.Fields = merged
	return &s
}

// staleError says why a change was not applied: which source's newer value
// beat it. Source names and timestamps only, never values.
func staleError(s Strategy, res *Resolution) error {
	var b strings.Builder
	b.WriteString("stale update not applied (strategy ")
	b.WriteString(string(s))
	b.WriteString(")")
	if res != nil {
		for i, d := range res.Fields {
			if i == 5 {
				fmt.Fprintf(&b, "; and %d more fields", len(res.Fields)-i)
				break
			}
			fmt.Fprintf(&b, "; %s: held from %s at %d beats %s at %d", d.Field, d.Winner, d.WinnerTimestamp, d.Loser, d.LoserTimestamp)
		}
	}
	return fmt.Errorf("%s", b.String())
}
