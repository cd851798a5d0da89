package datasync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
)

// maxHistory bounds the version history an aggregate keeps (the newest).
const maxHistory = 50

// ReconcileConfig says which target systems must acknowledge each entity
// type, and how long a validated version may wait for them.
type ReconcileConfig struct {
	Targets  map[Entity][]string
	Deadline time.Duration
}

// DefaultReconcileConfig expects [DefaultTargets] for every entity type
// within [DefaultReconcileDeadline].
func DefaultReconcileConfig() ReconcileConfig {
	c := ReconcileConfig{Targets: make(map[Entity][]string), Deadline: DefaultReconcileDeadline}
	for _, e := range entities {
		c.Targets[e] = DefaultTargets()
	}
	return c
}

func (c ReconcileConfig) validate() error {
	if c.Deadline <= 0 {
		return errors.New("datasync: reconciliation deadline must be positive")
	}
	for _, e := range entities {
		ts := c.Targets[e]
		if len(ts) == 0 {
			return fmt.Errorf("datasync: no target systems for entity type %s", e)
		}
		for i, t := range ts {
			if t == "" || strings.ContainsAny(t, ". ") || slices.Contains(ts[:i], t) {
				return fmt.Errorf("datasync: target systems of %s: %q is empty, repeated or not a plain name", e, t)
			}
		}
	}
	return nil
}

// allTargets is every target system of any entity type, sorted.
func (c ReconcileConfig) allTargets() []string {
	var all []string
	for _, ts := range c.Targets {
		for _, t := range ts {
			if !slices.Contains(all, t) {
				all = append(all, t)
			}
		}
	}
	slices.Sort(all)
	return all
}

// aggregate is the reconciliation stage's state of one entity and the read
// model the query API serves: the canonical record as validated, its
// version history, and each target system's acknowledgement.
type aggregate struct {
	Entity  Entity `json:"entityType"`
	ID      string `json:"entityId"`
	Version int64  `json:"version"`
	Deleted bool   `json:"deleted"`
	// Current is the canonical record of the latest version, as JSON.
	Current     json.RawMessage `json:"current,omitempty"`
	ValidatedAt int64           `json:"validatedAt"`
	// History is the versions validated, oldest first, at most maxHistory.
	History []historyEntry `json:"history"`
	// Acks are the latest acknowledgement of each target system.
	Acks             map[string]ack `json:"acks"`
	CompletedVersion int64          `json:"completedVersion"`
	OverdueVersion   int64          `json:"overdueVersion"`
	// DueAt is when the latest version becomes overdue, ms; 0 when it is
	// reconciled (or already reported overdue).
	DueAt int64 `json:"dueAt,omitempty"`
}

// historyEntry is one validated version of an entity.
type historyEntry struct {
	Version         int64       `json:"version"`
	Operation       string      `json:"operation"`
	SourceSystem    string      `json:"sourceSystem"`
	SourceTimestamp int64       `json:"sourceTimestamp"`
	ValidatedAt     int64       `json:"validatedAt"`
	CorrelationID   string      `json:"correlationId"`
	Resolution      *Resolution `json:"resolution,omitempty"`
}

// ack is what a target system has acknowledged of an entity. Version and
// AsOf only grow, so the acknowledgements' order does not change them.
type ack struct {
	// Version is the highest version acknowledged successfully by number.
	Version int64 `json:"version"`
	// AsOf is the latest syncTimestamp of a successful acknowledgement that
	// named no version: it covers every version validated by then.
	AsOf int64 `json:"asOf,omitempty"`
	// Status and SyncTimestamp are those of the last acknowledgement
	// processed (success or failed), for the read model.
	Status        string `json:"status"`
	SyncTimestamp int64  `json:"syncTimestamp"`
}

// covers says whether the acknowledgements cover the version validated at
// validatedAt.
func (k ack) covers(version, validatedAt int64) bool {
	return k.Version >= version || (k.AsOf > 0 && k.AsOf >= validatedAt)
}

// syncEvent is a target's sync.completed event.
type syncEvent struct {
	EntityType    string          `json:"entityType"`
	EntityID      string          `json:"entityId"`
	SyncTimestamp json.RawMessage `json:"syncTimestamp"`
	SyncStatus    string          `json:"syncStatus"`
	SyncDetails   json.RawMessage `json:"syncDetails"`
	Version       json.RawMessage `json:"version"`
}

// Reconciliation is the reconciliation stage.
type Reconciliation struct {
	codec     *Codec
	cfg       ReconcileConfig
	completed map[Entity]*metrics.Counter
	overdue   map[Entity]*metrics.Counter
	acks      map[string]*metrics.Counter
	rekeyed   *metrics.Counter
	// repartition is the deployment's name of the by-entity topic.
	group, repartition string
}

// NewReconciliation builds the stage, decoding with the codec of
// [WithCodec].
func NewReconciliation(opts ...Option) (*Reconciliation, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	if o.codec == nil {
		return nil, errNoCodec
	}
	return newReconciliation(o.codec, o), nil
}

func newReconciliation(codec *Codec, o *options) *Reconciliation {
	set, cfg := o.set, o.reconcile
	group := o.names.Group(GroupReconciliation)
	p := &Reconciliation{group: group, repartition: pipeline.RepartitionTopic(group, RepartitionByEntity), codec: codec, cfg: cfg, completed: map[Entity]*metrics.Counter{}, overdue: map[Entity]*metrics.Counter{}, acks: map[string]*metrics.Counter{}}
	for _, e := range entities {
		p.completed[e] = set.GetOrCreateCounter(`carepipe_datasync_reconciliations_completed_total{pipeline="` + NameReconciliation + `",entity="` + string(e) + `"}`)
		p.overdue[e] = set.GetOrCreateCounter(`carepipe_datasync_reconciliations_overdue_total{pipeline="` + NameReconciliation + `",entity="` + string(e) + `"}`)
	}
	for _, t := range cfg.allTargets() {
		for _, s := range []string{"success", "failed"} {
			p.acks[t+"/"+s] = set.GetOrCreateCounter(`carepipe_datasync_acks_total{pipeline="` + NameReconciliation + `",target="` + t + `",status="` + s + `"}`)
		}
	}
	p.rekeyed = set.GetOrCreateCounter(`carepipe_datasync_reconciliation_repartitioned_total{pipeline="` + NameReconciliation + `"}`)
	return p
}

// Completed and Overdue count reconciliations of every entity type (for
// the summary; not transactional).
func (p *Reconciliation) Completed() uint64 { return sum(p.completed) }
func (p *Reconciliation) Overdue() uint64   { return sum(p.overdue) }

func sum(m map[Entity]*metrics.Counter) uint64 {
	var n uint64
	for _, c := range m {
		n += c.Get()
	}
	return n
}

// Spec is the stage's runtime spec.
func (p *Reconciliation) Spec() pipeline.Spec {
	var ins, outs []string
	for _, e := range entities {
		ins = append(ins, ValidatedTopic(e))
		outs = append(outs, CompletedTopic(e), OverdueTopic(e))
	}
	for _, t := range p.cfg.allTargets() {
		ins = append(ins, TargetTopic(t))
	}
	return pipeline.Spec{
		Name:           NameReconciliation,
		Group:          p.group,
		Inputs:         ins,
		Outputs:        outs,
		ErrorTopic:     TopicErrors,
		Stores:         []string{StoreAggregates, StoreTimers},
		Repartitions:   []string{RepartitionByEntity},
		Process:        p.process,
		Punctuate:      p.punctuate,
		PunctuateEvery: time.Second,
		ErrorValue:     stageErrors("reconciliation"),

		OriginalValue: OriginalValue, // errors replay unwraps error records with it
	}
}

// AggregateKey is the store key of an entity's aggregate.
func AggregateKey(e Entity, id string) string { return string(e) + "/" + id }

// process folds a validated version or a target's acknowledgement into the
// entity's aggregate.
func (p *Reconciliation) process(c *pipeline.Context, r *kgo.Record) error {
	repart := p.repartition
	target := envelope.HeaderValue(r, headerSyncTarget)
	if r.Topic != repart {
		target = targetOfTopic(r.Topic)
	}
	if target == "" {
		e, err := entityOf(r, repart)
		if err != nil {
			return err
		}
		return p.validated(c, r, e)
	}
	return p.ack(c, r, target)
}

func targetOfTopic(topic string) string {
	t, ok := strings.CutPrefix(topic, "target.")
	if !ok {
		return ""
	}
	t, ok = strings.CutSuffix(t, ".sync.completed")
	if !ok {
		return ""
	}
	return t
}

func (p *Reconciliation) load(c *pipeline.Context, e Entity, id string) (*aggregate, error) {
	b, ok := c.Store(StoreAggregates).Get(AggregateKey(e, id))
	if !ok {
		return &aggregate{Entity: e, ID: id, Acks: map[string]ack{}}, nil
	}
	a := new(aggregate)
	if err := json.Unmarshal(b, a); err != nil {
		// The decoder's message may quote the held bytes: not repeated.
		return nil, pipeline.Rejectf(pipeline.TypeProcessing, "held aggregate is not readable")
	}
	if a.Acks == nil {
		a.Acks = map[string]ack{}
	}
	return a, nil
}

func (p *Reconciliation) save(c *pipeline.Context, a *aggregate) error {
	b, err := json.Marshal(a)
	if err != nil {
		return pipeline.Rejectf(pipeline.TypeProcessing, "encoding the aggregate: %v", err)
	}
	k := AggregateKey(a.Entity, a.ID)
	c.Store(StoreAggregates).Put(k, b)
	timers := c.Store(StoreTimers)
	if a.DueAt > 0 {
		timers.Put(k, strconv.AppendInt(nil, a.DueAt, 10))
	} else if _, ok := timers.Get(k); ok {
		timers.Delete(k)
	}
	return nil
}

func (p *Reconciliation) validated(c *pipeline.Context, r *kgo.Record, e Entity) error {
	ev, err := p.codec.decodeEvent(r.Value, e)
	if err != nil {
		return pipeline.Reject(pipeline.TypeDecode, err)
	}
	sys, ok := ev.system()
	if !ok || sys.ID == "" {
		return pipeline.Rejectf(pipeline.TypeInvalid, "validated event carries no record id")
	}
	key := []byte(sys.ID)
	if r.Topic != p.repartition && (string(r.Key) != sys.ID || !c.IsLocal(key)) {
		c.Repartition(RepartitionByEntity, key, kgo.RecordHeader{Key: HeaderEntityType, Value: []byte(e)})
		p.rekeyed.Inc()
		return nil
	}
	a, err := p.load(c, e, sys.ID)
	if err != nil {
		return err
	}
	if ev.Version <= a.Version {
		// A version already folded in: a redelivery by an at-least-once
		// writer of the validated topic.
		return nil
	}
	cur, err := json.Marshal(ev.Payload)
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, err)
	}
	corr, _ := envelope.HeaderCorrelation(r)
	if corr == "" && envelope.ValidCorrelationID(ev.Metadata.CorrelationID) {
		corr = ev.Metadata.CorrelationID
	}
	a.Version = ev.Version
	a.Deleted = ev.Operation == string(OpDelete)
	a.Current = cur
	a.ValidatedAt = ev.Metadata.Timestamp
	a.History = append(a.History, historyEntry{
		Version: ev.Version, Operation: ev.Operation, SourceSystem: sys.SourceSystem,
		SourceTimestamp: sys.LastUpdated, ValidatedAt: ev.Metadata.Timestamp,
		CorrelationID: corr, Resolution: ev.Resolution,
	})
	if n := len(a.History); n > maxHistory {
		a.History = slices.Delete(a.History, 0, n-maxHistory)
	}
	a.DueAt = a.ValidatedAt + p.cfg.Deadline.Milliseconds()
	if err := p.check(c, a, corr); err != nil {
		return err
	}
	return p.save(c, a)
}

func (p *Reconciliation) ack(c *pipeline.Context, r *kgo.Record, target string) error {
	var se syncEvent
	d := json.NewDecoder(bytes.NewReader(r.Value))
	if err := d.Decode(&se); err != nil {
		return pipeline.Rejectf(pipeline.TypeDecode, "sync event is not a JSON object of the expected shape")
	}
	e := Entity(se.EntityType)
	if !slices.Contains(entities[:], e) {
		return pipeline.Rejectf(pipeline.TypeInvalid, "sync event has no known entityType")
	}
	if se.EntityID == "" {
		return pipeline.Rejectf(pipeline.TypeInvalid, "sync event has no entityId")
	}
	if !slices.Contains(p.cfg.Targets[e], target) {
		return pipeline.Rejectf(pipeline.TypeInvalid, "target %s is not expected to synchronize %s", target, e)
	}
	key := []byte(se.EntityID)
	if r.Topic != p.repartition && (string(r.Key) != se.EntityID || !c.IsLocal(key)) {
		extra := []kgo.RecordHeader{{Key: headerSyncTarget, Value: []byte(target)}}
		if _, ok := envelope.HeaderCorrelation(r); !ok {
			extra = append(extra, kgo.RecordHeader{Key: envelope.HeaderCorrelationID, Value: []byte(envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset))})
		}
		c.Repartition(RepartitionByEntity, key, extra...)
		p.rekeyed.Inc()
		return nil
	}
	var status string
	switch strings.ToLower(se.SyncStatus) {
	case "success", "succeeded", "completed", "synced", "ok":
		status = "success"
	case "failed", "failure", "error":
		status = "failed"
	default:
		return pipeline.Rejectf(pipeline.TypeInvalid, "sync event syncStatus is not one of success, completed, synced, failed, error")
	}
	ts, err := parseTime(se.SyncTimestamp)
	if err != nil {
		return pipeline.Rejectf(pipeline.TypeInvalid, "sync event syncTimestamp: %v", err)
	}
	var version int64
	if len(se.Version) > 0 && string(se.Version) != "null" {
		v, err := strconv.ParseInt(strings.Trim(string(se.Version), `"`), 10, 64)
		if err != nil || v < 1 {
			return pipeline.Rejectf(pipeline.TypeInvalid, "sync event version is not a positive integer")
		}
		version = v
	} else if ts == 0 {
		// Without a version the acknowledgement covers what was validated
		// by its syncTimestamp; without either, it says nothing that does
		// not depend on when it is read.
		return pipeline.Rejectf(pipeline.TypeInvalid, "sync event has neither version nor syncTimestamp")
	}
	a, err := p.load(c, e, se.EntityID)
	if err != nil {
		return err
	}
	k := a.Acks[target]
	k.Status, k.SyncTimestamp = status, ts
	if status == "success" {
		if version > 0 {
			k.Version = max(k.Version, version)
		} else {
			k.AsOf = max(k.AsOf, ts)
		}
	}
	a.Acks[target] = k
	p.acks[target+"/"+status].Inc()
	corr, ok := envelope.HeaderCorrelation(r)
	if !ok {
		corr = envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
	}
	if err := p.check(c, a, corr); err != nil {
		return err
	}
	return p.save(c, a)
}

// check emits reconciliation.<entity>.completed when every expected target
// has acknowledged the latest version successfully, once per version.
func (p *Reconciliation) check(c *pipeline.Context, a *aggregate, corr string) error {
	if a.Version == 0 || a.CompletedVersion >= a.Version {
		return nil
	}
	var last int64
	for _, t := range p.cfg.Targets[a.Entity] {
		ack, ok := a.Acks[t]
		if !ok || !ack.covers(a.Version, a.ValidatedAt) {
			return nil
		}
		last = max(last, ack.SyncTimestamp)
	}
	now := c.Now().UnixMilli()
	if last == 0 {
		last = now
	}
	dur := max(last-a.ValidatedAt, 0)
	out := struct {
		EntityType              Entity         `json:"entityType"`
		EntityID                string         `json:"entityId"`
		Version                 int64          `json:"version"`
		ReconciliationTimestamp int64          `json:"reconciliationTimestamp"`
		ValidatedAt             int64          `json:"validatedAt"`
		TargetSystems           []targetStatus `json:"targetSystems"`
		SyncDuration            string         `json:"syncDuration"`
		SyncDurationMs          int64          `json:"syncDurationMs"`
	}{a.Entity, a.ID, a.Version, now, a.ValidatedAt, p.targetStatuses(a), clock(dur), dur}
	if err := p.emit(c, CompletedTopic(a.Entity), a, corr, out); err != nil {
		return err
	}
	a.CompletedVersion = a.Version
	a.DueAt = 0
	p.completed[a.Entity].Inc()
	return nil
}

type targetStatus struct {
	Name          string `json:"name"`
	Synced        bool   `json:"synced"`
	Version       int64  `json:"version"`
	Status        string `json:"status,omitempty"`
	SyncTimestamp int64  `json:"syncTimestamp,omitempty"`
}

func (p *Reconciliation) targetStatuses(a *aggregate) []targetStatus {
	var ts []targetStatus
	for _, t := range p.cfg.Targets[a.Entity] {
		ack := a.Acks[t]
		ts = append(ts, targetStatus{Name: t, Synced: ack.covers(a.Version, a.ValidatedAt), Version: ack.Version, Status: ack.Status, SyncTimestamp: ack.SyncTimestamp})
	}
	return ts
}

func (p *Reconciliation) emit(c *pipeline.Context, topic string, a *aggregate, corr string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return pipeline.Reject(pipeline.TypeProcessing, fmt.Errorf("encoding a reconciliation event: %w", err))
	}
	hs := envelope.OutputHeaders(corr, EventSourceReconciliation, topic)
	hs = append(hs, kgo.RecordHeader{Key: HeaderEntityType, Value: []byte(a.Entity)})
	c.Emit(&kgo.Record{Topic: topic, Key: []byte(a.ID), Value: b, Headers: hs})
	return nil
}

// punctuate emits reconciliation.<entity>.overdue for each entity whose
// latest version passed its deadline unacknowledged, once per version.
func (p *Reconciliation) punctuate(c *pipeline.Context) error {
	now := c.Now().UnixMilli()
	timers := c.Store(StoreTimers)
	for _, k := range timers.Keys() {
		v, _ := timers.Get(k)
		due, err := strconv.ParseInt(string(v), 10, 64)
		if err == nil && now < due {
			continue
		}
		e, id, _ := strings.Cut(k, "/")
		a, err := p.load(c, Entity(e), id)
		if err != nil {
			timers.Delete(k)
			continue
		}
		a.DueAt = 0
		if a.CompletedVersion < a.Version && a.OverdueVersion < a.Version {
			var missing []string
			for _, t := range p.targetStatuses(a) {
				if !t.Synced {
					missing = append(missing, t.Name)
				}
			}
			out := struct {
				EntityType    Entity         `json:"entityType"`
				EntityID      string         `json:"entityId"`
				Version       int64          `json:"version"`
				ValidatedAt   int64          `json:"validatedAt"`
				Deadline      string         `json:"deadline"`
				OverdueAt     int64          `json:"overdueAt"`
				Missing       []string       `json:"missingTargets"`
				TargetSystems []targetStatus `json:"targetSystems"`
			}{a.Entity, a.ID, a.Version, a.ValidatedAt, p.cfg.Deadline.String(), now, missing, p.targetStatuses(a)}
			corr := ""
			if n := len(a.History); n > 0 {
				corr = a.History[n-1].CorrelationID
			}
			if err := p.emit(c, OverdueTopic(a.Entity), a, corr, out); err != nil {
				return err
			}
			a.OverdueVersion = a.Version
			p.overdue[a.Entity].Inc()
		}
		if err := p.save(c, a); err != nil {
			return err
		}
	}
	return nil
}

// clock formats d ms as the seed's HH:MM:SS (hours may exceed 24).
func clock(ms int64) string {
	s := ms / 1000
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// parseTime reads a timestamp given as ms since the epoch or RFC 3339; an
// absent one is 0.
func parseTime(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, errors.New("neither ms since the epoch nor RFC 3339")
}
