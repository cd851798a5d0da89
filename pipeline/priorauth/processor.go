package priorauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// headerEvent names, on a record re-keyed through the repartition topic,
// the input topic it came from: the repartition topic carries every kind
// of event.
const headerEvent = "priorauth-event"

// Option configures a [Processor].
type Option func(*Processor)

// WithConfig sets the payer table and urgent categories. Default
// [DefaultConfig].
func WithConfig(c Config) Option { return func(p *Processor) { p.cfg = c } }

// WithMetrics sets the set the processor's metrics are registered in.
// Default: a new set.
func WithMetrics(s *metrics.Set) Option { return func(p *Processor) { p.set = s } }

// WithNames sets the deployment's names of the group and topics (an app
// id, renamed topics; see [pipeline.Names]). Default: the built-in names.
// Processing, the event-type headers and the stored records keep the
// built-in topic names.
func WithNames(n pipeline.Names) Option { return func(p *Processor) { p.names = n } }

// lateKinds are the kind labels of carepipe_priorauth_stale_events_total,
// by the input topic of the late event: a determination the case had
// moved past, a communication report after the approval expired.
var lateKinds = map[string]string{
	TopicDeterminationReceived:  "determination",
	TopicCommunicationCompleted: "communication",
}

// Processor is the orchestrator's processing. Its state lives in the
// runtime's store, so one Processor serves every partition.
type Processor struct {
	cfg   Config
	set   *metrics.Set
	names pipeline.Names
	// repartition is the deployment's name of the repartition topic.
	repartition string
	transitions map[Status]*metrics.Counter
	duplicates  *metrics.Counter
	late        map[string]*metrics.Counter
	rekeyed     *metrics.Counter
	breaches    *metrics.Counter
	checks      *metrics.Counter
	unreadable  *metrics.Counter
	purged      *metrics.Counter
}

// New builds the processor.
func New(opts ...Option) (*Processor, error) {
	p := &Processor{cfg: DefaultConfig()}
	for _, o := range opts {
		o(p)
	}
	if p.set == nil {
		p.set = metrics.NewSet()
	}
	if err := p.cfg.validate(); err != nil {
		return nil, err
	}
	if err := p.names.Validate(); err != nil {
		return nil, fmt.Errorf("priorauth: %w", err)
	}
	p.repartition = pipeline.RepartitionTopic(p.names.Group(Group), RepartitionByPriorAuth)
	p.transitions = make(map[Status]*metrics.Counter, len(statuses))
	for _, s := range statuses {
		p.transitions[s] = p.set.GetOrCreateCounter(`carepipe_priorauth_transitions_total{pipeline="` + Name + `",status="` + string(s) + `"}`)
	}
	p.duplicates = p.set.GetOrCreateCounter(`carepipe_priorauth_duplicates_total{pipeline="` + Name + `"}`)
	// Late events by input topic: a bounded label, no patient data.
	p.late = make(map[string]*metrics.Counter, len(lateKinds))
	for topic, kind := range lateKinds {
		p.late[topic] = p.set.GetOrCreateCounter(`carepipe_priorauth_stale_events_total{pipeline="` + Name + `",kind="` + kind + `"}`)
	}
	p.rekeyed = p.set.GetOrCreateCounter(`carepipe_priorauth_repartitioned_total{pipeline="` + Name + `"}`)
	p.breaches = p.set.GetOrCreateCounter(`carepipe_priorauth_sla_breaches_total{pipeline="` + Name + `"}`)
	p.checks = p.set.GetOrCreateCounter(`carepipe_priorauth_status_checks_total{pipeline="` + Name + `"}`)
	p.unreadable = p.set.GetOrCreateCounter(`carepipe_priorauth_unreadable_records_total{pipeline="` + Name + `"}`)
	p.purged = p.set.GetOrCreateCounter(`carepipe_priorauth_purged_total{pipeline="` + Name + `"}`)
	return p, nil
}

// Completed counts workflows completed (DETERMINATION_COMMUNICATED) by
// this processor, for the demo's summary line.
func (p *Processor) Completed() uint64 { return p.transitions[StatusDeterminationCommunicated].Get() }

// Spec is the pipeline's runtime spec.
func (p *Processor) Spec() pipeline.Spec {
	return pipeline.Spec{
		Name:           Name,
		Group:          p.names.Group(Group),
		Inputs:         p.rename(inputs),
		Outputs:        p.rename(outputs),
		ErrorTopic:     p.names.Topic(TopicErrors),
		Stores:         []string{StorePriorAuths, StoreTimers},
		Repartitions:   []string{RepartitionByPriorAuth},
		Process:        p.process,
		Punctuate:      p.punctuate,
		PunctuateEvery: time.Second,
	}
}

// rename is ts by the deployment's names.
func (p *Processor) rename(ts []string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = p.names.Topic(t)
	}
	return out
}

// process is the pipeline's [pipeline.ProcessFunc]. An event not keyed by
// its prior-auth id on the partition that owns it (every prescription, keyed
// by its own id) is re-keyed through the repartition topic, with the topic
// it came from and its correlation id in headers. Otherwise the event runs
// through the transition function (Config.apply) against the stored record.
func (p *Processor) process(c *pipeline.Context, r *kgo.Record) error {
	// Processing reads events by their built-in topic names, whatever
	// the deployment calls them; so does the repartition's header.
	topic := p.names.Default(r.Topic)
	if r.Topic == p.repartition {
		topic = envelope.HeaderValue(r, headerEvent)
	}
	ev, err := decodeIn(r, topic, p.cfg.zone())
	if err != nil {
		return err
	}
	key := []byte(ev.PriorAuthID)
	if r.Topic != p.repartition && (string(r.Key) != ev.PriorAuthID || !c.IsLocal(key)) {
		extra := []kgo.RecordHeader{{Key: headerEvent, Value: []byte(topic)}}
		if _, ok := envelope.HeaderCorrelation(r); !ok {
			extra = append(extra, kgo.RecordHeader{Key: envelope.HeaderCorrelationID, Value: []byte(ev.CorrelationID)})
		}
		c.Repartition(RepartitionByPriorAuth, key, extra...)
		p.rekeyed.Inc()
		return nil
	}
	store := c.Store(StorePriorAuths)
	var rec *record
	if b, ok := store.Get(ev.PriorAuthID); ok {
		rec = new(record)
		if err := json.Unmarshal(b, rec); err != nil {
			return pipeline.Rejectf(pipeline.TypeProcessing, "stored prior authorization is not readable")
		}
	}
	st, err := p.cfg.apply(rec, &ev)
	if err != nil {
		return err
	}
	if st.Duplicate {
		p.duplicates.Inc()
		return nil
	}
	if err := p.save(c, &st); err != nil {
		return err
	}
	if st.Late {
		p.late[ev.Topic].Inc()
		return nil
	}
	if rec == nil || st.Record.Status != rec.Status {
		p.transitions[st.Record.Status].Inc()
	}
	return nil
}

// save stores a step's record, indexes its next timer, and emits its
// outputs.
func (p *Processor) save(c *pipeline.Context, st *result) error {
	rec := st.Record
	b, err := json.Marshal(rec)
	if err != nil {
		return pipeline.Rejectf(pipeline.TypeProcessing, "encoding the prior authorization failed")
	}
	c.Store(StorePriorAuths).Put(rec.ID, b)
	// The timers store holds, per prior authorization with a timer, the
	// earliest due time: a punctuation reads it instead of every record.
	timers := c.Store(StoreTimers)
	if due, ok := rec.nextDue(); ok {
		timers.Put(rec.ID, strconv.AppendInt(nil, due.UnixMilli(), 10))
	} else if _, had := timers.Get(rec.ID); had {
		timers.Delete(rec.ID)
	}
	key := []byte(rec.ID)
	for _, o := range st.Outputs {
		c.Emit(&kgo.Record{
			Topic: p.names.Topic(o.Topic), Key: key, Value: o.Value,
			Headers: envelope.OutputHeaders(rec.CorrelationID, EventSource, o.Topic),
		})
		switch o.Topic {
		case TopicSLABreached:
			p.breaches.Inc()
		case TopicStatusCheckRequested:
			p.checks.Inc()
		}
	}
	return nil
}

// punctuate is the pipeline's [pipeline.PunctuateFunc]: it fires the
// timers due at the injected clock's time (decision deadlines, status
// checks, expiries) of the task's prior authorizations. A record that
// cannot be read is counted and skipped, not retried forever.
func (p *Processor) punctuate(c *pipeline.Context) error {
	now := c.Now()
	timers := c.Store(StoreTimers)
	recs := c.Store(StorePriorAuths)
	for _, id := range timers.Keys() {
		v, _ := timers.Get(id)
		due, err := strconv.ParseInt(string(v), 10, 64)
		if err == nil && now.UnixMilli() < due {
			continue
		}
		b, ok := recs.Get(id)
		if !ok {
			timers.Delete(id)
			continue
		}
		rec, err := decodeRecord(b)
		if err != nil {
			p.unreadable.Inc()
			timers.Delete(id)
			continue
		}
		st := p.cfg.fire(rec, now)
		if st.Purge {
			recs.Delete(id)
			timers.Delete(id)
			p.purged.Inc()
			continue
		}
		if st.Record == nil {
			continue
		}
		if err := p.save(c, &st); err != nil {
			return err
		}
		if st.Record.Status != rec.Status {
			p.transitions[st.Record.Status].Inc()
		}
	}
	return nil
}

// decodeRecord decodes a stored record; for the query API.
func decodeRecord(value []byte) (*record, error) {
	var rec record
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, errors.New("stored prior authorization is not readable")
	}
	return &rec, nil
}
