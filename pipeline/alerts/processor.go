package alerts

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// Option configures a [Processor]. Options are validated once, by [New].
type Option func(*cfg)

type cfg struct {
	rules          *rules.Pack
	metrics        *metrics.Set
	maxRecordBytes int
	siteZone       *time.Location
	names          pipeline.Names
}

// DefaultMaxRecordBytes is the default limit on an observation record's
// value size.
const DefaultMaxRecordBytes = 256 << 10

// WithRules sets the rule pack evaluated. Default [rules.Default]. It is
// validated by New ([rules.Validate]) and copied.
func WithRules(pack rules.Pack) Option { return func(c *cfg) { c.rules = &pack } }

// WithMetrics sets the set the processor's metrics are registered in.
// Default (or nil): a new set of the processor's own. The process-wide
// default set is never used.
func WithMetrics(s *metrics.Set) Option { return func(c *cfg) { c.metrics = s } }

// WithMaxRecordBytes sets the largest observation value accepted; larger
// records go to the error topic as oversized without being decoded.
// Default [DefaultMaxRecordBytes] (256 KiB).
func WithMaxRecordBytes(n int) Option { return func(c *cfg) { c.maxRecordBytes = n } }

// WithSiteTimeZone sets the time zone of the site's clocks: an
// observation time of day sent without a time zone offset
// ("2024-04-05T19:41:00", which FHIR does not allow but hospital
// interfaces send) is read in it, and so is a date ("2024-04-05" starts at
// the site's midnight). Default nil: no site zone; such a time of day is
// an invalid record (error topic, reason "... has a time without a time
// zone offset ..."), never replaced by the record's Kafka timestamp, and a
// date starts at midnight UTC.
func WithSiteTimeZone(loc *time.Location) Option { return func(c *cfg) { c.siteZone = loc } }

// WithNames sets the deployment's names of the group and topics (an app
// id, renamed topics; see [pipeline.Names]). Default: the built-in names
// of topics.go.
func WithNames(n pipeline.Names) Option { return func(c *cfg) { c.names = n } }

func (c *cfg) validate() error {
	if c.maxRecordBytes <= 0 {
		return errors.New("alerts: max record bytes must be positive")
	}
	if err := c.names.Validate(); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	return nil
}

// Processor is the clinical alerts pipeline's processing. It holds no
// per-record state of its own (that lives in the runtime's store), so one
// Processor serves every partition concurrently.
type Processor struct {
	rules          *ruleSet
	maxRecordBytes int
	siteZone       *time.Location
	m              counters
	// names are the deployment's; observations and patients are its
	// names of the input and the patient table, looked up once.
	names                  pipeline.Names
	observations, patients string
}

type counters struct {
	alerts        [len(severities)]*metrics.Counter
	notifications [len(channels)]*metrics.Counter
	duplicates    *metrics.Counter
	suppressed    *metrics.Counter
	replaced      *metrics.Counter
	retracted     *metrics.Counter
	news2         *metrics.Counter
	repartitioned *metrics.Counter
	stateResets   *metrics.Counter
	skipped       [numSkipReasons]*metrics.Counter
}

// New builds the processor. It fails only on invalid options (rules
// included).
func New(opts ...Option) (*Processor, error) {
	c := cfg{maxRecordBytes: DefaultMaxRecordBytes}
	for _, o := range opts {
		o(&c)
	}
	if c.rules == nil {
		d := rules.Default()
		c.rules = &d
	}
	if c.metrics == nil {
		c.metrics = metrics.NewSet()
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	rs, err := newRuleSet(*c.rules)
	if err != nil {
		return nil, err
	}
	p := &Processor{rules: rs, maxRecordBytes: c.maxRecordBytes, siteZone: c.siteZone,
		names: c.names, observations: c.names.Topic(TopicObservations), patients: c.names.Topic(TopicPatients)}
	for i, s := range severities {
		p.m.alerts[i] = c.metrics.GetOrCreateCounter(`carepipe_alerts_alerts_total{pipeline="` + Name + `",severity="` + string(s) + `"}`)
	}
	for i, ch := range channels {
		p.m.notifications[i] = c.metrics.GetOrCreateCounter(`carepipe_alerts_notifications_total{pipeline="` + Name + `",channel="` + string(ch) + `"}`)
	}
	p.m.duplicates = c.metrics.GetOrCreateCounter(`carepipe_alerts_duplicates_total{pipeline="` + Name + `"}`)
	p.m.suppressed = c.metrics.GetOrCreateCounter(`carepipe_alerts_suppressed_total{pipeline="` + Name + `"}`)
	p.m.replaced = c.metrics.GetOrCreateCounter(`carepipe_alerts_replaced_total{pipeline="` + Name + `"}`)
	p.m.retracted = c.metrics.GetOrCreateCounter(`carepipe_alerts_retracted_total{pipeline="` + Name + `"}`)
	p.m.news2 = c.metrics.GetOrCreateCounter(`carepipe_alerts_news2_total{pipeline="` + Name + `"}`)
	p.m.repartitioned = c.metrics.GetOrCreateCounter(`carepipe_alerts_repartitioned_total{pipeline="` + Name + `"}`)
	p.m.stateResets = c.metrics.GetOrCreateCounter(`carepipe_alerts_state_resets_total{pipeline="` + Name + `"}`)
	for i, r := range skipReasons {
		if r != "" {
			p.m.skipped[i] = c.metrics.GetOrCreateCounter(`carepipe_alerts_skipped_total{pipeline="` + Name + `",reason="` + r + `"}`)
		}
	}
	return p, nil
}

// Spec is the pipeline's runtime spec, run by a [pipeline.Runner] or, in
// tests, by a [pipeline.Harness] as the runtime does. Its Process does what
// the package doc describes to each observation; a record it cannot
// process is a record error, which the runtime sends whole to the error
// topic.
func (p *Processor) Spec() pipeline.Spec {
	outs := make([]string, len(outputs))
	for i, t := range outputs {
		outs[i] = p.names.Topic(t)
	}
	return pipeline.Spec{
		Name:         Name,
		Group:        p.names.Group(Group),
		Inputs:       []string{p.observations},
		Outputs:      outs,
		ErrorTopic:   p.names.Topic(TopicErrors),
		Stores:       []string{StorePatientAlerts},
		Repartitions: []string{RepartitionByPatient},
		GlobalTables: []pipeline.GlobalTableSpec{{Topic: p.patients, Decode: decodePatientEntry}},
		Process:      p.process,
	}
}

// process is the pipeline's [pipeline.ProcessFunc]. An observation that
// arrives on fhir.Observation keyed by anything but its patient id, or on a
// partition that does not own that patient, is re-keyed through the
// observations-by-patient topic (with its correlation id, derived from
// these coordinates, in a header) and processed when it comes back.
// Otherwise it is evaluated and run against the patient's patient-alerts
// state (open alerts, suppression windows, NEWS2 parameters), and the
// alert versions, history records and notifications that result are
// emitted. Errors are record errors (see [Processor.decode] and
// [Processor.handle]); the runtime sends the record to
// clinical.alerts.errors.
func (p *Processor) process(c *pipeline.Context, r *kgo.Record) error {
	in := inputPool.Get().(*input)
	defer releaseInput(in)
	if err := p.decode(r, in); err != nil {
		return err
	}
	pid := in.Observation.PatientID
	// The record's own key is tested when it is the patient id, so that a
	// local record costs no key copy.
	if r.Topic == p.observations && (string(r.Key) != pid || !c.IsLocal(r.Key)) {
		var extra []kgo.RecordHeader
		if _, ok := envelope.HeaderCorrelation(r); !ok {
			extra = []kgo.RecordHeader{{Key: envelope.HeaderCorrelationID, Value: []byte(in.CorrelationID())}}
		}
		c.Repartition(RepartitionByPatient, []byte(pid), extra...)
		p.m.repartitioned.Inc()
		return nil
	}
	f := &in.findings
	if err := p.rules.evaluate(&in.Observation, f); err != nil {
		return err
	}
	if r := f.skipped(&in.Observation); r != skipNone {
		p.m.skipped[r].Inc()
	}
	store := c.Store(StorePatientAlerts)
	prev, _ := store.Get(pid)
	if !f.needsState(prev, in.Observation.ID) {
		return nil
	}
	out := &in.out
	p.apply(in, f, c.Global(p.patients), nil, prev, out)
	for _, rec := range out.Records {
		if p.names.Topics != nil {
			rec.Topic = p.names.Topic(rec.Topic)
		}
		c.Emit(rec)
	}
	if out.State != nil {
		store.Put(pid, out.State)
	}
	p.count(out)
	return nil
}

// needsState reports whether the findings can change anything: a rule
// fired, a NEWS2 parameter arrived, or the state names the observation
// (what it raised may need retracting). The cheap common case, a normal
// reading of an unwatched kind, skips decoding the state.
func (f *findings) needsState(prev []byte, obsID string) bool {
	switch {
	case f.class == classPending:
		return false
	case len(f.firings) > 0 || len(f.vitals) > 0:
		return true
	}
	return stateMayName(prev, obsID)
}

// skipped is why obs, valid, gave the rules and NEWS2 nothing to read;
// skipNone when it gave them something or was not evaluated (no result
// yet, or withdrawn). Such an observation still goes on to the state: an
// amendment that replaces a numeric value by a string must retract what
// the number raised.
func (f *findings) skipped(obs *observation) skipReason {
	if obs.skip == skipNone || (f.class != classResult && f.class != classProvisional) || len(f.firings) > 0 || len(f.vitals) > 0 {
		return skipNone
	}
	return obs.skip
}

// lookupPatient returns the context of patient id from the fhir.Patient
// table, decoded afresh from its entry: it is called once per observation
// that alerts, which is the cost of holding every patient compactly.
func lookupPatient(t *pipeline.GlobalTable, id string) (*patientContext, bool) {
	if t == nil {
		return nil, false
	}
	v, ok := t.Get(id)
	if !ok {
		return nil, false
	}
	return contextOf(v, id)
}

// contextOf is the context held as v under key: a table of
// decodePatientEntry holds patientEntrys, one of decodePatient (as this
// one was before) *patientContexts.
func contextOf(v any, key string) (*patientContext, bool) {
	switch v := v.(type) {
	case patientEntry:
		// An entry that does not decode is the table's bug, not the
		// patient's: the alert goes out unenriched, as for an unknown
		// patient, rather than not at all.
		pc, err := v.context(key)
		return pc, err == nil
	case *patientContext:
		return v, v != nil
	}
	return nil, false
}

// count adds an outcome to the metrics.
func (p *Processor) count(out *outcome) {
	for i := range out.Alerts {
		a := &out.Alerts[i]
		if a.Version != 1 {
			continue
		}
		p.m.alerts[a.Severity.Index()].Inc()
		if a.RuleID == rules.NEWS2ID {
			p.m.news2.Inc()
		}
	}
	for i, n := range out.Notified {
		if n > 0 {
			p.m.notifications[i].Add(n)
		}
	}
	for _, c := range [...]struct {
		m *metrics.Counter
		n int
	}{{p.m.duplicates, out.Duplicates}, {p.m.suppressed, out.Suppressed}, {p.m.replaced, out.Replaced}, {p.m.retracted, out.Retracted}} {
		if c.n > 0 {
			c.m.Add(c.n)
		}
	}
	if out.StateReset {
		p.m.stateResets.Inc()
	}
}

// input is a decoded observation record.
type input struct {
	// Record is the record decoded; its coordinates, headers and
	// timestamp feed the correlation id and the event time.
	Record      *kgo.Record
	Meta        envelope.Metadata
	Observation observation

	// findings, state and out are scratch for evaluation, the patient's
	// state and the outcome, reused with the input.
	findings findings
	state    patientState
	out      outcome
	// scratch is where an alert or a state value is written before it is
	// copied to a buffer of its size.
	scratch []byte
	// chunk is what is left of the chunk output values are carved from
	// (see values).
	chunk []byte
}

// valueChunk is the size of the chunks output values are carved from: the
// largest of Go's small allocations.
const valueChunk = 32 << 10

// values returns an empty buffer of capacity n for output values, carved
// from the input's chunk. The values of many alerts share an allocation
// then, which the runtime frees when it has produced them all. With an
// allocation per alert, allocating took 5% of the pipeline's CPU in an
// end-to-end profile, most of it taking fresh spans from the heap. Output values only: a
// store value carved from a chunk would keep all of it alive.
func (in *input) values(n int) []byte {
	if n > valueChunk/4 {
		return make([]byte, 0, n)
	}
	if len(in.chunk) < n {
		in.chunk = make([]byte, valueChunk)
	}
	b := in.chunk[:0:n]
	in.chunk = in.chunk[n:]
	return b
}

// CorrelationID is the record's correlation id ([envelope.CorrelationID]);
// without a Record, the metadata's.
func (in *input) CorrelationID() string {
	if in.Record == nil {
		return in.Meta.CorrelationID
	}
	return envelope.CorrelationID(in.Record, in.Meta)
}

// eventTime is when the observation happened: its effective or issued time,
// else, when it has none at all, the envelope timestamp, else the record's
// timestamp (which a repartitioned copy keeps). Never the wall clock; a
// time that is present but unreadable (or without an offset and no site
// zone) never gets here, it is an error record.
func (in *input) eventTime() time.Time {
	switch {
	case !in.Observation.EventTime.IsZero():
		return in.Observation.EventTime
	case !in.Meta.Timestamp.IsZero():
		return in.Meta.Timestamp.UTC()
	case in.Record != nil:
		return in.Record.Timestamp.UTC()
	}
	return time.Time{}
}

// decode checks r's size and decodes its value as an Observation into in,
// whose coding slice it reuses. Errors are [pipeline.RecordError]s:
// [pipeline.TypeOversized] for a value larger than the limit (not
// decoded), and those of [decodeObservation].
func (p *Processor) decode(r *kgo.Record, in *input) error {
	if len(r.Value) > p.maxRecordBytes {
		return pipeline.Rejectf(pipeline.TypeOversized, "observation of %d bytes exceeds the limit of %d", len(r.Value), p.maxRecordBytes)
	}
	in.Record = r
	meta, err := decodeObservation(r.Value, &in.Observation, p.siteZone)
	if err != nil {
		return err
	}
	// Judged here, with the other contract checks, rather than in
	// evaluate: a record rejected before it is re-keyed keeps its own
	// coordinates in the error topic.
	if err := p.rules.missingValue(&in.Observation); err != nil {
		return err
	}
	in.Meta = meta
	return nil
}

// inputPool recycles Inputs between records, for their coding slices: a
// fresh one per record was the largest allocation of a record that raises
// no alert.
var inputPool = sync.Pool{New: func() any { return new(input) }}

// releaseInput forgets in's record (no pinning its memory through the
// strings that alias it) and returns it to the pool. Only the slices'
// lengths are cleared: every record refills its slices from empty, and
// what shrinks them (slices.Delete and DeleteFunc) clears the tail it
// drops, so nothing past a slice's length is the record's. (Clearing to
// the capacities, releaseInput took 3% of the alerts pipeline's CPU in an
// end-to-end profile.)
func releaseInput(in *input) {
	codings := in.Observation.codings
	clear(codings)
	f := in.findings
	clear(f.firings)
	st := in.state
	clear(st.Open)
	clear(st.Vitals)
	clear(st.bases)
	// The emitted records and alerts belong to the runtime now: only the
	// slices' arrays are kept, emptied.
	out := in.out
	clear(out.Records)
	clear(out.Alerts)
	*in = input{
		Observation: observation{codings: codings[:0]},
		findings:    findings{firings: f.firings[:0], vitals: f.vitals[:0]},
		state:       patientState{Open: st.Open[:0], Vitals: st.Vitals[:0], bases: st.bases[:0]},
		out:         outcome{Records: out.Records[:0], Alerts: out.Alerts[:0]},
		scratch:     in.scratch[:0],
		chunk:       in.chunk,
	}
	inputPool.Put(in)
}

// patientLookup returns the context of a patient, if known.
type patientLookup func(patientID string) (*patientContext, bool)

// outcome is what one observation produces for its patient.
type outcome struct {
	// Records are the records to emit, in order: per alert version, the
	// alert, its history record, then one notification per channel; a
	// history record alone per suppressed repeat.
	Records []*kgo.Record
	// Alerts are the alert versions emitted (raised, replaced, retracted).
	Alerts []Alert
	// State is the patient's new patient-alerts value; nil when unchanged.
	State []byte
	// Duplicates counts candidates the state already had: the same
	// version of an alert, or a repeat already counted.
	Duplicates int
	// Suppressed, Replaced and Retracted count those events.
	Suppressed, Replaced, Retracted int
	// Notified counts notifications per channel (in channels order).
	Notified [len(channels)]int
	// StateReset reports that the previous state was unreadable and was
	// started afresh (open alerts and NEWS2 parameters are forgotten).
	StateReset bool
}
