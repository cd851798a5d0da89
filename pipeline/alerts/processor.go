package alerts

import (
	"errors"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// Option configures a [Processor]. Options are validated once, by [New].
type Option func(*cfg)

type cfg struct {
	rules          []Rule
	metrics        *metrics.Set
	maxRecordBytes int
}

// DefaultMaxRecordBytes is the default limit on an observation record's
// value size.
const DefaultMaxRecordBytes = 256 << 10

// WithRules sets the rules evaluated. Default (or nil) [DefaultRules]. They
// are validated by New ([ValidateRules]) and copied.
func WithRules(rules []Rule) Option { return func(c *cfg) { c.rules = rules } }

// WithMetrics sets the set the processor's metrics are registered in.
// Default (or nil): a new set, available from [Processor.Metrics]. The
// process-wide default set is never used.
func WithMetrics(s *metrics.Set) Option { return func(c *cfg) { c.metrics = s } }

// WithMaxRecordBytes sets the largest observation value accepted; larger
// records go to the error topic as oversized without being decoded.
// Default [DefaultMaxRecordBytes] (256 KiB).
func WithMaxRecordBytes(n int) Option { return func(c *cfg) { c.maxRecordBytes = n } }

func (c *cfg) validate() error {
	if c.maxRecordBytes <= 0 {
		return errors.New("alerts: max record bytes must be positive")
	}
	return nil
}

// Processor is the clinical alerts pipeline's processing. It holds no
// per-record state of its own (that lives in the runtime's store), so one
// Processor serves every partition concurrently.
type Processor struct {
	rules          *ruleSet
	maxRecordBytes int
	set            *metrics.Set
	m              counters
}

type counters struct {
	alerts        [len(severities)]*metrics.Counter
	notifications [len(channels)]*metrics.Counter
	duplicates    *metrics.Counter
	repartitioned *metrics.Counter
	stateResets   *metrics.Counter
}

// New builds the processor. It fails only on invalid options (rules
// included).
func New(opts ...Option) (*Processor, error) {
	c := cfg{maxRecordBytes: DefaultMaxRecordBytes}
	for _, o := range opts {
		o(&c)
	}
	if c.rules == nil {
		c.rules = DefaultRules()
	}
	if c.metrics == nil {
		c.metrics = metrics.NewSet()
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	rs, err := newRuleSet(c.rules)
	if err != nil {
		return nil, err
	}
	p := &Processor{rules: rs, maxRecordBytes: c.maxRecordBytes, set: c.metrics}
	for i, s := range severities {
		p.m.alerts[i] = c.metrics.GetOrCreateCounter(`carepipe_alerts_alerts_total{severity="` + string(s) + `"}`)
	}
	for i, ch := range channels {
		p.m.notifications[i] = c.metrics.GetOrCreateCounter(`carepipe_alerts_notifications_total{channel="` + string(ch) + `"}`)
	}
	p.m.duplicates = c.metrics.GetOrCreateCounter("carepipe_alerts_duplicates_total")
	p.m.repartitioned = c.metrics.GetOrCreateCounter("carepipe_alerts_repartitioned_total")
	p.m.stateResets = c.metrics.GetOrCreateCounter("carepipe_alerts_state_resets_total")
	return p, nil
}

// Metrics is the set the processor's metrics are in.
func (p *Processor) Metrics() *metrics.Set { return p.set }

// Rules returns a copy of the rules evaluated.
func (p *Processor) Rules() []Rule { return append([]Rule(nil), p.rules.rules...) }

// Spec is the pipeline's runtime spec.
func (p *Processor) Spec() pipeline.Spec {
	return pipeline.Spec{
		Name:         Name,
		Group:        Group,
		Inputs:       []string{TopicObservations},
		Outputs:      append([]string(nil), outputs...),
		ErrorTopic:   TopicErrors,
		Stores:       []string{StorePatientAlerts},
		Repartitions: []string{RepartitionByPatient},
		GlobalTables: []pipeline.GlobalTableSpec{{Topic: TopicPatients, Decode: DecodePatient}},
		Process:      p.Process,
	}
}

// Process is the pipeline's [pipeline.ProcessFunc]. An observation that
// arrives on fhir.Observation keyed by anything but its patient id, or on a
// partition that does not own that patient, is re-keyed through the
// observations-by-patient topic (with its correlation id, derived from
// these coordinates, in a header) and processed when it comes back.
// Otherwise it is evaluated, deduplicated against the patient's
// patient-alerts state, and its alerts, history records and notifications
// are emitted. Errors are record errors (see [Processor.Decode]); the runtime
// sends the record to clinical.alerts.errors.
func (p *Processor) Process(c *pipeline.Context, r *kgo.Record) error {
	in := inputPool.Get().(*Input)
	defer releaseInput(in)
	if err := p.decode(r, in); err != nil {
		return err
	}
	pid := in.Observation.PatientID
	// The record's own key is tested when it is the patient id, so that a
	// local record costs no key copy.
	if r.Topic == TopicObservations && (string(r.Key) != pid || !c.IsLocal(r.Key)) {
		var extra []kgo.RecordHeader
		if _, ok := envelope.HeaderCorrelation(r); !ok {
			extra = []kgo.RecordHeader{{Key: envelope.HeaderCorrelationID, Value: []byte(in.CorrelationID())}}
		}
		c.Repartition(RepartitionByPatient, []byte(pid), extra...)
		p.m.repartitioned.Inc()
		return nil
	}
	table := c.Global(TopicPatients)
	alerts := p.Evaluate(in, func(id string) (*PatientContext, bool) { return lookupPatient(table, id) }, nil)
	if len(alerts) == 0 {
		return nil
	}
	store := c.Store(StorePatientAlerts)
	prev, _ := store.Get(pid)
	out := p.Apply(alerts, prev)
	for _, rec := range out.Records {
		c.Emit(rec)
	}
	if out.State != nil {
		store.Put(pid, out.State)
	}
	p.count(&out)
	return nil
}

func lookupPatient(t *pipeline.GlobalTable, id string) (*PatientContext, bool) {
	if t == nil {
		return nil, false
	}
	v, ok := t.Get(id)
	if !ok {
		return nil, false
	}
	pc, ok := v.(*PatientContext)
	return pc, ok && pc != nil
}

// count adds an outcome to the metrics.
func (p *Processor) count(out *Outcome) {
	for i := range out.Alerts {
		s := out.Alerts[i].Severity
		p.m.alerts[s.index()].Inc()
		for _, ch := range s.Channels() {
			p.m.notifications[ch.index()].Inc()
		}
	}
	if out.Duplicates > 0 {
		p.m.duplicates.Add(out.Duplicates)
	}
	if out.StateReset {
		p.m.stateResets.Inc()
	}
}

// Input is a decoded observation record.
type Input struct {
	// Record is the record decoded; its coordinates, headers and
	// timestamp feed the correlation id and the event time.
	Record      *kgo.Record
	Meta        envelope.Metadata
	Observation Observation
}

// CorrelationID is the record's correlation id ([envelope.CorrelationID]);
// without a Record, the metadata's.
func (in *Input) CorrelationID() string {
	if in.Record == nil {
		return in.Meta.CorrelationID
	}
	return envelope.CorrelationID(in.Record, in.Meta)
}

// eventTime is when the observation happened: its effective or issued time,
// else the envelope timestamp, else the record's timestamp (which a
// repartitioned copy keeps). Never the wall clock.
func (in *Input) eventTime() time.Time {
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

// Decode checks r's size and decodes its value as an Observation. Errors
// are [pipeline.RecordError]s: [pipeline.ErrOversized] for a value larger
// than the limit (not decoded), and those of [DecodeObservation].
func (p *Processor) Decode(r *kgo.Record) (Input, error) {
	var in Input
	if err := p.decode(r, &in); err != nil {
		return Input{}, err
	}
	return in, nil
}

// decode is Decode into in, whose coding slice it reuses.
func (p *Processor) decode(r *kgo.Record, in *Input) error {
	if len(r.Value) > p.maxRecordBytes {
		return pipeline.Rejectf(pipeline.ErrOversized, "observation of %d bytes exceeds the limit of %d", len(r.Value), p.maxRecordBytes)
	}
	in.Record = r
	meta, err := DecodeObservation(r.Value, &in.Observation)
	if err != nil {
		return err
	}
	in.Meta = meta
	return nil
}

// inputPool recycles Inputs between records, for their coding slices: a
// fresh one per record was the largest allocation of a record that raises
// no alert.
var inputPool = sync.Pool{New: func() any { return new(Input) }}

// releaseInput forgets in's record (no pinning its memory through the
// strings that alias it) and returns it to the pool.
func releaseInput(in *Input) {
	codings := in.Observation.Codings
	clear(codings[:cap(codings)])
	*in = Input{Observation: Observation{Codings: codings[:0]}}
	inputPool.Put(in)
}

// PatientLookup returns the context of a patient, if known.
type PatientLookup func(patientID string) (*PatientContext, bool)

// Evaluate appends to dst one alert per rule that fires on in, in rule
// order, enriched from patients (nil: no enrichment). Observations whose
// status is cancelled or entered-in-error raise nothing.
//
// The alert timestamp is the observation's effectiveDateTime,
// effectiveInstant, effectivePeriod.start or issued, else the envelope's
// timestamp, else the record's; formatted RFC 3339 in UTC.
func (p *Processor) Evaluate(in *Input, patients PatientLookup, dst []Alert) []Alert {
	obs := &in.Observation
	switch obs.Status {
	case "cancelled", "entered-in-error":
		return dst
	}
	var idx [8]int
	matched := p.rules.match(obs.Codings, obs.Value, idx[:0])
	if len(matched) == 0 {
		return dst
	}
	var ts string
	if t := in.eventTime(); !t.IsZero() && t.Unix() > 0 {
		ts = t.Format(time.RFC3339Nano)
	}
	corr := in.CorrelationID()
	var pc *PatientContext
	if patients != nil {
		pc, _ = patients(obs.PatientID)
	}
	for _, i := range matched {
		rule := &p.rules.rules[i]
		a := Alert{
			AlertID:       obs.ID + "-" + rule.ID,
			PatientID:     obs.PatientID,
			ObservationID: obs.ID,
			Rule:          rule.Code,
			RuleID:        rule.ID,
			Severity:      rule.Severity,
			Description:   rule.Description,
			Value:         obs.Value,
			Unit:          obs.Unit,
			Timestamp:     ts,
			CorrelationID: corr,
			Status:        StatusActive,
		}
		if pc != nil {
			a.PatientName, a.PatientMRN, a.CareTeam = pc.Name, pc.MRN, pc.CareTeam
		}
		dst = append(dst, a)
	}
	return dst
}

// Outcome is what a patient's alerts produce.
type Outcome struct {
	// Records are the records to emit, in order: for each new alert, the
	// alert, its history record, then one notification per channel.
	Records []*kgo.Record
	// Alerts are the alerts emitted (duplicates left out).
	Alerts []Alert
	// State is the patient's new patient-alerts value; nil when unchanged.
	State []byte
	// Duplicates counts alerts already in the patient's recent window.
	Duplicates int
	// StateReset reports that the previous state was unreadable and was
	// started afresh (the running count restarts; duplicates older than
	// this record are no longer recognised).
	StateReset bool
}

// Apply deduplicates alerts (all of one patient) against the patient's
// patient-alerts value prev (nil: none) and encodes the records to emit.
// An unreadable prev is replaced, not an error: losing the dedupe window
// risks a duplicate alert, while failing would hold back every alert of
// the patient.
func (p *Processor) Apply(alerts []Alert, prev []byte) Outcome {
	var out Outcome
	if len(alerts) == 0 {
		return out
	}
	var st PatientState
	if len(prev) > 0 {
		if err := decodeState(prev, &st); err != nil || st.Count < 0 {
			st, out.StateReset = PatientState{}, true
		}
	}
	key := []byte(alerts[0].PatientID)
	for i := range alerts {
		a := &alerts[i]
		if st.seen(a.AlertID) {
			out.Duplicates++
			continue
		}
		seq := st.add(a)
		out.Records = append(out.Records, encodeAlert(a, key, seq)...)
		out.Alerts = append(out.Alerts, *a)
	}
	if len(out.Alerts) == 0 && !out.StateReset {
		return out
	}
	// The new state is the old one, give or take an alert or two.
	out.State = appendState(make([]byte, 0, len(prev)+256*len(out.Alerts)+64), &st)
	return out
}

// encodeAlert encodes an alert's records: the alert, its history record and
// one notification per channel. Their values share one buffer and the
// records one array, read-only from here on.
func encodeAlert(a *Alert, key []byte, seq int64) []*kgo.Record {
	chs := a.Severity.Channels()
	alertJSON := appendAlert(make([]byte, 0, 1024), a)
	// The history record and each notification (which embeds the alert)
	// take less than this besides the alert's own length, unless their
	// strings are unusually long, which append then grows for.
	const overhead = 512
	buf := make([]byte, 0, overhead+len(chs)*(len(alertJSON)+overhead))
	buf = appendHistory(buf, &HistoryRecord{
		AlertID:       a.AlertID,
		PatientID:     a.PatientID,
		Severity:      a.Severity,
		Channels:      chs,
		Timestamp:     a.Timestamp,
		CorrelationID: a.CorrelationID,
		Sequence:      seq,
	})
	hist := buf[:len(buf):len(buf)]
	buf = buf[len(buf):]
	all := make([]kgo.Record, 2+len(chs))
	recs := make([]*kgo.Record, len(all))
	all[0] = kgo.Record{Topic: TopicAlerts, Key: key, Value: alertJSON, Headers: envelope.OutputHeaders(a.CorrelationID, EventSource, EventTypeAlert)}
	all[1] = kgo.Record{Topic: TopicHistory, Key: key, Value: hist, Headers: envelope.OutputHeaders(a.CorrelationID, EventSource, EventTypeHistory)}
	for i, ch := range chs {
		buf = appendNotification(buf, &Notification{
			NotificationID: a.AlertID + "-" + string(ch),
			Channel:        ch,
			AlertID:        a.AlertID,
			PatientID:      a.PatientID,
			Severity:       a.Severity,
			Timestamp:      a.Timestamp,
			CorrelationID:  a.CorrelationID,
			Alert:          alertJSON,
		})
		all[2+i] = kgo.Record{Topic: ch.Topic(), Key: key, Value: buf[:len(buf):len(buf)], Headers: envelope.OutputHeaders(a.CorrelationID, EventSource, EventTypeNotification)}
		buf = buf[len(buf):]
	}
	for i := range all {
		recs[i] = &all[i]
	}
	return recs
}

// Handle is Process without the runtime: decode, evaluate and apply one
// observation record against the patient's state prev, with no
// repartitioning (r is taken to be on the partition that owns its patient)
// and no metrics. For tests, benchmarks and tools.
func (p *Processor) Handle(r *kgo.Record, patients PatientLookup, prev []byte) (Outcome, error) {
	in := inputPool.Get().(*Input)
	defer releaseInput(in)
	if err := p.decode(r, in); err != nil {
		return Outcome{}, err
	}
	alerts := p.Evaluate(in, patients, nil)
	return p.Apply(alerts, prev), nil
}
