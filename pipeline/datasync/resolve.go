package datasync

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Conflict resolution: the validation stage holds, per entity, a [State]
// built only from the changes it accepted, and Policy.apply folds each new
// change into it. The state is a join-semilattice (a state-based CRDT): the
// join of a change is commutative, associative and idempotent, so the state,
// and what [State.Materialize] makes of it, depend only on the set of changes
// applied, not on their order or on how often each arrived. Nothing here reads
// a clock or a random source; time is the sources' own timestamps.
//
// Why a change can be Applied without changing the record: under the per-field
// strategies a change's value can lose now and still matter later. Say
// registration holds the address (t=1) and ehr sends a newer one (t=3): under
// survivorship registration wins. A delete at t=2 then removes registration's
// address but not ehr's, and ehr's address must appear, whichever of the three
// arrived first. So the state keeps every candidate value that can still win
// after some delete (per field, the values no other held value beats both on
// the order key and on time), and a change that adds one is accepted (Applied,
// Outcome.Changed false) although the record stays as it was. Only a change
// that adds nothing the state does not already dominate is Duplicate or Stale,
// which is what lets the caller drop it and keep the state it had.

// Strategy is a way of resolving conflicting changes of one entity.
type Strategy string

const (
	// LastWriterWins: the whole record of the greatest change by (SourceTime,
	// source rank, Source, SourceVersion, hash of the change's canonical
	// fields JSON) wins; a delete is a change without fields. Within one
	// source and millisecond the version (a log position for Debezium)
	// orders a delete and the row's re-insert.
	LastWriterWins Strategy = "last-writer-wins"
	// Survivorship: per field, the value of the greatest candidate by (rank
	// of its source in FieldPriority[field] then SourcePriority, SourceTime,
	// Source, SourceVersion, value bytes) wins.
	Survivorship Strategy = "survivorship"
	// FieldMerge: per field, the value of the greatest candidate by
	// (SourceTime, rank of its source in SourcePriority, Source,
	// SourceVersion, value bytes) wins: the latest value of each field.
	FieldMerge Strategy = "field-merge"
)

// In every order key a higher-ranked source (earlier in its priority list)
// is greater, sources of the same rank (every unlisted one) compare by name
// with the alphabetically first greater, and then a greater SourceVersion
// and greater value bytes are greater: two changes that differ only in these
// still resolve the same way in any order.
//
// A value outlives a delete when it is later by (SourceTime, SourceVersion):
// at the same millisecond the later log position wins, so a row deleted and
// re-inserted within one millisecond stays alive in any order of arrival.
// The held delete is the greatest by (SourceTime, SourceVersion, source
// rank, Source), so a value that outlives it outlives every delete seen.

// parseStrategy parses a strategy name: last-writer-wins, survivorship or
// field-merge.
func parseStrategy(s string) (Strategy, error) {
	switch st := Strategy(s); st {
	case LastWriterWins, Survivorship, FieldMerge:
		return st, nil
	}
	return "", fmt.Errorf("unknown conflict resolution strategy %q (want %s, %s or %s)", s, LastWriterWins, Survivorship, FieldMerge)
}

// Policy is how one entity type's conflicts are resolved.
type Policy struct {
	Strategy Strategy
	// SourcePriority are source systems, highest first; unlisted sources
	// rank below every listed one, equal among themselves.
	SourcePriority []string
	// FieldPriority (survivorship only) are, per field, sources highest
	// first. They rank above the field's other sources, which keep their
	// SourcePriority order.
	FieldPriority map[string][]string
}

// Policies are the policies per entity type.
type Policies map[Entity]Policy

// DefaultPolicies returns the default policies: patients by survivorship
// (ehr, registration, pharmacy; registration first for address and contact),
// encounters and observations last-writer-wins (ehr first), prescriptions
// field-merge (pharmacy, ehr).
func DefaultPolicies() Policies {
	return Policies{
		Patient: {
			Strategy:       Survivorship,
			SourcePriority: []string{"ehr", "registration", "pharmacy"},
			FieldPriority: map[string][]string{
				"address": {"registration", "ehr"},
				"contact": {"registration", "ehr"},
			},
		},
		Encounter:    {Strategy: LastWriterWins, SourcePriority: []string{"ehr"}},
		Observation:  {Strategy: LastWriterWins, SourcePriority: []string{"ehr"}},
		Prescription: {Strategy: FieldMerge, SourcePriority: []string{"pharmacy", "ehr"}},
	}
}

// validate reports everything wrong with p: an unknown strategy, field
// priorities under a strategy other than survivorship, an empty field name,
// and empty or repeated source names.
func (p Policy) validate() error {
	var errs []error
	if _, err := parseStrategy(string(p.Strategy)); err != nil {
		errs = append(errs, err)
	}
	if len(p.FieldPriority) > 0 && p.Strategy != Survivorship {
		errs = append(errs, fmt.Errorf("field priorities need the %s strategy, not %q", Survivorship, p.Strategy))
	}
	if err := checkSourceList("source priority", p.SourcePriority); err != nil {
		errs = append(errs, err)
	}
	for _, f := range sortedKeys(p.FieldPriority) {
		if f == "" {
			errs = append(errs, errors.New("field priority for an empty field name"))
			continue
		}
		if err := checkSourceList(fmt.Sprintf("field priority of %q", f), p.FieldPriority[f]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkSourceList(what string, list []string) error {
	for i, s := range list {
		if s == "" {
			return fmt.Errorf("%s: empty source name at position %d", what, i+1)
		}
		if slices.Index(list[:i], s) >= 0 {
			return fmt.Errorf("%s: source %q listed twice", what, s)
		}
	}
	return nil
}

// strategy is the strategy Apply uses: an unknown one (only a policy that
// failed Validate has one) is last-writer-wins.
func (p Policy) strategy() Strategy {
	if p.Strategy == Survivorship || p.Strategy == FieldMerge {
		return p.Strategy
	}
	return LastWriterWins
}

// sourceRank is the rank of src in p's SourcePriority: 0 highest, every
// unlisted source len(SourcePriority).
func (p Policy) sourceRank(src string) int {
	if i := slices.Index(p.SourcePriority, src); i >= 0 {
		return i
	}
	return len(p.SourcePriority)
}

// fieldRank is the rank of src for a field's values: under survivorship the
// field's own priority first, then SourcePriority; otherwise SourcePriority.
func (p Policy) fieldRank(field, src string) int {
	if p.Strategy != Survivorship {
		return p.sourceRank(src)
	}
	fl := p.FieldPriority[field]
	if i := slices.Index(fl, src); i >= 0 {
		return i
	}
	return len(fl) + p.sourceRank(src)
}

// preferSource compares two sources by rank (lower is preferred) and then
// by name (alphabetically first preferred): > 0 when a is preferred.
func preferSource(ra int, a string, rb int, b string) int {
	if ra != rb {
		return cmp.Compare(rb, ra)
	}
	return strings.Compare(b, a)
}

// outcomeKind is what applying a change did.
type outcomeKind int

const (
	// outcomeApplied: the change was accepted; the state holds something new.
	outcomeApplied outcomeKind = iota
	// outcomeDuplicate: the state holds the change already (a redelivery).
	outcomeDuplicate
	// outcomeStale: the state holds newer or preferred values for all of the
	// change; it adds nothing.
	outcomeStale
)

func (k outcomeKind) String() string {
	switch k {
	case outcomeApplied:
		return "applied"
	case outcomeDuplicate:
		return "duplicate"
	case outcomeStale:
		return "stale"
	}
	return fmt.Sprintf("OutcomeKind(%d)", int(k))
}

// outcome is the result of [Policy.apply].
type outcome struct {
	Kind outcomeKind
	// State is the state to hold: a new one when Applied, the input state
	// itself (possibly nil) when Duplicate or Stale. The input is never
	// modified, so a caller can roll back by keeping it.
	State *State
	// Resolution is non-nil when a conflict was decided: which fields of
	// the change lost to values held from other updates, and which won over
	// newer ones. On Stale it says what beat the change.
	Resolution *Resolution
	// Changed says whether the materialized entity (its fields, system
	// fields or deleted flag) differs from before. It can be false when
	// Applied: the state took values that lost now but may win after a
	// later delete.
	Changed bool
}

// State is what is held for one entity: under last-writer-wins the winning
// change; under the per-field strategies, per field the candidate values
// that can still win (at most one per source) and the newest delete. It is
// a function of the set of changes applied (and the policy), whatever their
// order, except Version.
type State struct {
	// Version counts the changes accepted (outcomeApplied).
	Version int64

	strategy Strategy
	win      *lwwWinner             // last-writer-wins: the winning change
	fields   map[string][]fieldCand // per-field strategies: candidates sorted by Source
	del      *deleteMark            // per-field strategies: the newest delete
}

// lwwWinner is the change held under last-writer-wins.
type lwwWinner struct {
	Source  string `json:"s"`
	Time    int64  `json:"t"`
	Version int64  `json:"n"`
	Deleted bool   `json:"x,omitempty"`
	Fields  Fields `json:"f,omitempty"`
}

// fieldCand is a candidate value of one field from one source. Rank is the
// source's rank for the field under the policy it was applied with, so that
// Materialize needs no policy.
type fieldCand struct {
	Source  string          `json:"s"`
	Rank    int             `json:"r"`
	Time    int64           `json:"t"`
	Version int64           `json:"n"`
	Value   json.RawMessage `json:"v"`
}

// deleteMark is the greatest delete by (SourceTime, SourceVersion, source
// rank, Source).
type deleteMark struct {
	Source  string `json:"s"`
	Rank    int    `json:"r"`
	Time    int64  `json:"t"`
	Version int64  `json:"n"`
}

// identifiersField is the one field whose values are merged, not chosen:
// its value is the union of every held source's identifiers.
const identifiersField = "identifiers"

// apply resolves ch (of entity ch.Entity, id ch.ID) against prev, the state
// held for that entity (nil: nothing held yet). It never modifies prev or
// ch, and its result depends only on them. A state held under another
// strategy is first rebuilt from what it materializes. Field values must be
// JSON (Validate checks it); one that is not is held as a JSON string of its
// bytes, so that the state stays serializable.
func (p Policy) apply(prev *State, ch *Change) outcome {
	if p.strategy() == LastWriterWins {
		return p.applyLWW(prev, ch)
	}
	return p.applyFields(prev, ch)
}

// applyLWW is Apply under last-writer-wins.
func (p Policy) applyLWW(prev *State, ch *Change) outcome {
	inc := &lwwWinner{Source: ch.Source, Time: ch.SourceTime, Version: ch.SourceVersion, Deleted: ch.Op == OpDelete}
	if !inc.Deleted {
		inc.Fields = normalFields(ch.Fields)
	}
	var held *lwwWinner
	if prev != nil {
		held = prev.win
		if prev.strategy != LastWriterWins {
			held = winnerOf(prev.view())
		}
	}
	if held != nil {
		switch c := p.cmpLWW(inc, held); {
		case c == 0:
			return outcome{Kind: outcomeDuplicate, State: prev}
		case c < 0:
			return outcome{Kind: outcomeStale, State: prev, Resolution: lwwResolution(held, inc)}
		}
	}
	next := &State{strategy: LastWriterWins, win: inc}
	if prev != nil {
		next.Version = prev.Version
	}
	next.Version++
	var res *Resolution
	if held != nil && held.Time == inc.Time && held.Source != inc.Source {
		res = lwwResolution(inc, held)
	}
	return outcome{Kind: outcomeApplied, State: next, Resolution: res, Changed: !prev.view().equal(next.view())}
}

// winnerOf is the last-writer-wins change a materialized state stands for
// (nil for an empty one).
func winnerOf(v stateView) *lwwWinner {
	if v.empty {
		return nil
	}
	return &lwwWinner{Source: v.source, Time: v.time, Version: v.version, Deleted: v.deleted, Fields: v.fields}
}

// cmpLWW orders changes under last-writer-wins: > 0 when a wins over b.
func (p Policy) cmpLWW(a, b *lwwWinner) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	if c := preferSource(p.sourceRank(a.Source), a.Source, p.sourceRank(b.Source), b.Source); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	ha, hb := a.hash(), b.hash()
	return bytes.Compare(ha[:], hb[:])
}

// outlives says whether a value at (t, v) is later than a delete at (dt,
// dv): by source time, then by version.
func outlives(t, v, dt, dv int64) bool {
	return t > dt || t == dt && v > dv
}

// hash is the SHA-256 of the change's canonical fields JSON (keys sorted,
// values compact); of nothing for a delete.
func (w *lwwWinner) hash() [sha256.Size]byte {
	if w.Deleted {
		return sha256.Sum256(nil)
	}
	if len(w.Fields) == 0 {
		return sha256.Sum256([]byte("{}"))
	}
	b, err := json.Marshal(w.Fields)
	if err != nil {
		// Unreachable: values are normalized to JSON when applied.
		panic("datasync: held fields are not JSON")
	}
	return sha256.Sum256(b)
}

func lwwResolution(winner, loser *lwwWinner) *Resolution {
	return newResolution(LastWriterWins, []FieldDecision{{
		Field: "*", Winner: winner.Source, WinnerTimestamp: winner.Time,
		Loser: loser.Source, LoserTimestamp: loser.Time,
	}})
}

// applyFields is Apply under survivorship and field-merge.
func (p Policy) applyFields(prev *State, ch *Change) outcome {
	next := p.rebuild(prev)
	absorbed := false
	var inc Fields
	if ch.Op == OpDelete {
		absorbed = next.putDelete(deleteMark{Source: ch.Source, Rank: p.sourceRank(ch.Source), Time: ch.SourceTime, Version: ch.SourceVersion})
	} else {
		inc = normalFields(ch.Fields)
		for _, f := range sortedKeys(inc) {
			c := fieldCand{Source: ch.Source, Rank: p.fieldRank(f, ch.Source), Time: ch.SourceTime, Version: ch.SourceVersion, Value: inc[f]}
			if next.putCand(f, c) {
				absorbed = true
			}
		}
	}
	after := next.view()
	if !absorbed {
		if next.holds(ch, inc) {
			return outcome{Kind: outcomeDuplicate, State: prev}
		}
		return outcome{Kind: outcomeStale, State: prev, Resolution: next.decide(outcomeStale, ch, inc, after, after)}
	}
	next.Version++
	before := prev.view()
	return outcome{Kind: outcomeApplied, State: next, Resolution: next.decide(outcomeApplied, ch, inc, before, after), Changed: !before.equal(after)}
}

// rebuild returns a new state under p's strategy holding what prev holds:
// its candidates and delete re-ranked under p, or, for a state held under
// last-writer-wins, its winner as candidates.
func (p Policy) rebuild(prev *State) *State {
	next := &State{strategy: p.strategy(), fields: map[string][]fieldCand{}}
	if prev == nil {
		return next
	}
	next.Version = prev.Version
	if prev.strategy != FieldMerge && prev.strategy != Survivorship {
		w := winnerOf(prev.view())
		switch {
		case w == nil:
		case w.Deleted:
			next.putDelete(deleteMark{Source: w.Source, Rank: p.sourceRank(w.Source), Time: w.Time, Version: w.Version})
		default:
			for _, f := range sortedKeys(w.Fields) {
				next.putCand(f, fieldCand{Source: w.Source, Rank: p.fieldRank(f, w.Source), Time: w.Time, Version: w.Version, Value: w.Fields[f]})
			}
		}
		return next
	}
	if d := prev.del; d != nil {
		m := *d
		m.Rank = p.sourceRank(m.Source)
		next.putDelete(m)
	}
	for _, f := range sortedKeys(prev.fields) {
		for _, c := range prev.fields[f] {
			c.Rank = p.fieldRank(f, c.Source)
			next.putCand(f, c)
		}
	}
	return next
}

// cmpCand orders two candidates of one field under strategy st: > 0 when a
// is preferred.
func cmpCand(st Strategy, a, b *fieldCand) int {
	if st == Survivorship {
		if a.Rank != b.Rank {
			return cmp.Compare(b.Rank, a.Rank)
		}
		if c := cmp.Compare(a.Time, b.Time); c != 0 {
			return c
		}
	} else {
		if c := cmp.Compare(a.Time, b.Time); c != 0 {
			return c
		}
		if a.Rank != b.Rank {
			return cmp.Compare(b.Rank, a.Rank)
		}
	}
	if c := strings.Compare(b.Source, a.Source); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

// dominates says whether held candidate d makes c irrelevant: whenever c
// survives a delete, so does d, and d is preferred. For identifiers, whose
// candidates are merged, only a newer one from the same source replaces one.
func (s *State) dominates(field string, d, c *fieldCand) bool {
	if field == identifiersField {
		return d.Source == c.Source && cmpCand(s.strategy, d, c) >= 0
	}
	return !outlives(c.Time, c.Version, d.Time, d.Version) && cmpCand(s.strategy, d, c) >= 0
}

// putCand joins candidate c of field into s: reports whether s changed.
func (s *State) putCand(field string, c fieldCand) bool {
	if s.del != nil && !outlives(c.Time, c.Version, s.del.Time, s.del.Version) {
		return false
	}
	cs := s.fields[field]
	for i := range cs {
		if s.dominates(field, &cs[i], &c) {
			return false
		}
	}
	kept := make([]fieldCand, 0, len(cs)+1)
	for i := range cs {
		if !s.dominates(field, &c, &cs[i]) {
			kept = append(kept, cs[i])
		}
	}
	kept = append(kept, c)
	slices.SortFunc(kept, func(a, b fieldCand) int { return strings.Compare(a.Source, b.Source) })
	s.fields[field] = kept
	return true
}

// putDelete joins delete m into s, dropping the candidates it outdates:
// reports whether s changed.
func (s *State) putDelete(m deleteMark) bool {
	if d := s.del; d != nil {
		c := cmp.Compare(m.Time, d.Time)
		if c == 0 {
			c = cmp.Compare(m.Version, d.Version)
		}
		if c == 0 {
			c = preferSource(m.Rank, m.Source, d.Rank, d.Source)
		}
		if c <= 0 {
			return false
		}
	}
	s.del = &m
	for _, f := range sortedKeys(s.fields) {
		cs := s.fields[f]
		kept := make([]fieldCand, 0, len(cs))
		for _, c := range cs {
			if outlives(c.Time, c.Version, m.Time, m.Version) {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			delete(s.fields, f)
		} else {
			s.fields[f] = kept
		}
	}
	return true
}

// holds says whether s holds every value of ch (inc: its normalized
// fields) as that source's candidate with the same time, or ch's delete as
// its delete: ch is a redelivery.
func (s *State) holds(ch *Change, inc Fields) bool {
	if ch.Op == OpDelete {
		return s.del != nil && s.del.Source == ch.Source && s.del.Time == ch.SourceTime && s.del.Version == ch.SourceVersion
	}
	for f, v := range inc {
		if !slices.ContainsFunc(s.fields[f], func(c fieldCand) bool {
			return c.Source == ch.Source && c.Time == ch.SourceTime && bytes.Equal(c.Value, v)
		}) {
			return false
		}
	}
	return true
}

// decide lists the conflicts decided by applying ch to s (the state after;
// before and after its views): the fields of ch whose value is not the one
// materialized and what beat them, and the fields where ch's value won over
// a value of another source at least as new. For a delete, whether newer
// values outlived it (or, when Stale, what made it stale).
func (s *State) decide(kind outcomeKind, ch *Change, inc Fields, before, after stateView) *Resolution {
	var ds []FieldDecision
	lost := func(field, winner string, at int64) {
		ds = append(ds, FieldDecision{Field: field, Winner: winner, WinnerTimestamp: at, Loser: ch.Source, LoserTimestamp: ch.SourceTime})
	}
	byDelete := func(field string) {
		if s.del != nil {
			lost(field, s.del.Source, s.del.Time)
		}
	}
	if ch.Op == OpDelete {
		if kind == outcomeStale || !after.deleted {
			lost("*", after.source, after.time)
		}
		return newResolution(s.strategy, ds)
	}
	for _, f := range sortedKeys(inc) {
		v := inc[f]
		if f == identifiersField {
			i := slices.IndexFunc(s.fields[f], func(c fieldCand) bool { return c.Source == ch.Source })
			switch {
			case i < 0:
				byDelete(f)
			case !bytes.Equal(s.fields[f][i].Value, v):
				lost(f, ch.Source, s.fields[f][i].Time)
			}
			continue
		}
		got, ok := after.chosen[f]
		switch {
		case !ok:
			byDelete(f)
		case !bytes.Equal(got.Value, v):
			lost(f, got.Source, got.Time)
		case kind == outcomeApplied && got.Source == ch.Source && got.Time == ch.SourceTime:
			// ch's value is the one chosen: did it win over another
			// source's value at least as new, by priority?
			if b, ok := before.chosen[f]; ok && b.Source != ch.Source && b.Time >= ch.SourceTime && !bytes.Equal(b.Value, v) {
				ds = append(ds, FieldDecision{Field: f, Winner: ch.Source, WinnerTimestamp: ch.SourceTime, Loser: b.Source, LoserTimestamp: b.Time})
			}
		}
	}
	return newResolution(s.strategy, ds)
}

// newResolution is the resolution of decisions ds, nil when there are none.
func newResolution(st Strategy, ds []FieldDecision) *Resolution {
	if len(ds) == 0 {
		return nil
	}
	slices.SortStableFunc(ds, func(a, b FieldDecision) int { return strings.Compare(a.Field, b.Field) })
	var systems []string
	for _, d := range ds {
		systems = append(systems, d.Winner, d.Loser)
	}
	slices.Sort(systems)
	systems = slices.Compact(systems)
	return &Resolution{Strategy: string(st), ConflictingSystems: systems, Fields: ds}
}

// stateView is a state materialized.
type stateView struct {
	empty   bool // nothing held
	deleted bool
	fields  Fields               // nil when deleted
	chosen  map[string]fieldCand // per-field strategies: the chosen candidate of each field but identifiers
	source  string
	time    int64
	version int64
}

func (v stateView) equal(w stateView) bool {
	if v.empty != w.empty || v.deleted != w.deleted || v.source != w.source || v.time != w.time || v.version != w.version || len(v.fields) != len(w.fields) {
		return false
	}
	for f, b := range v.fields {
		if c, ok := w.fields[f]; !ok || !bytes.Equal(b, c) {
			return false
		}
	}
	return true
}

// view materializes s; a nil or empty s materializes as empty.
func (s *State) view() stateView {
	if s == nil {
		return stateView{empty: true}
	}
	if s.strategy != FieldMerge && s.strategy != Survivorship {
		w := s.win
		switch {
		case w == nil:
			return stateView{empty: true}
		case w.Deleted:
			return stateView{deleted: true, source: w.Source, time: w.Time, version: w.Version}
		}
		fs := make(Fields, len(w.Fields))
		for f, b := range w.Fields {
			fs[f] = b
		}
		return stateView{fields: fs, source: w.Source, time: w.Time, version: w.Version}
	}
	v := stateView{fields: Fields{}, chosen: map[string]fieldCand{}}
	// contributing are the candidates whose values are materialized: the
	// system fields come from the newest of them.
	var contributing []fieldCand
	for _, f := range sortedKeys(s.fields) {
		var live []fieldCand
		for _, c := range s.fields[f] {
			if s.del == nil || outlives(c.Time, c.Version, s.del.Time, s.del.Version) {
				live = append(live, c)
			}
		}
		if len(live) == 0 {
			continue
		}
		if f == identifiersField {
			v.fields[f] = unionIdentifiers(live)
			contributing = append(contributing, live...)
			continue
		}
		best := live[0]
		for i := 1; i < len(live); i++ {
			if cmpCand(s.strategy, &live[i], &best) > 0 {
				best = live[i]
			}
		}
		v.fields[f] = best.Value
		v.chosen[f] = best
		contributing = append(contributing, best)
	}
	if len(contributing) == 0 {
		if s.del == nil {
			return stateView{empty: true}
		}
		return stateView{deleted: true, source: s.del.Source, time: s.del.Time, version: s.del.Version}
	}
	top := contributing[0]
	for _, c := range contributing[1:] {
		if c.Time > top.Time || c.Time == top.Time && preferSource(c.Rank, c.Source, top.Rank, top.Source) > 0 {
			top = c
		}
	}
	v.source, v.time = top.Source, top.Time
	for _, c := range contributing {
		if c.Source == top.Source && c.Time == top.Time {
			v.version = max(v.version, c.Version)
		}
	}
	return v
}

// unionIdentifiers is the union of the candidates' identifier arrays,
// deduplicated and sorted by (system, value). A value that is not an array
// of identifiers adds nothing.
func unionIdentifiers(cs []fieldCand) json.RawMessage {
	ids := []Identifier{}
	for _, c := range cs {
		var some []Identifier
		if json.Unmarshal(c.Value, &some) == nil {
			ids = append(ids, some...)
		}
	}
	slices.SortFunc(ids, func(a, b Identifier) int {
		return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.Value, b.Value))
	})
	ids = slices.Compact(ids)
	b, err := json.Marshal(ids)
	if err != nil {
		panic("datasync: identifiers do not encode") // unreachable: strings only
	}
	return b
}

// Materialize is the entity as held: its system fields and data fields as
// a Change of entity e with id id. A deleted entity is an OpDelete with nil
// Fields, its system fields those of the winning delete; otherwise the Op
// is OpUpsert. Under the per-field strategies SourceTime is that of the
// newest value materialized, Source its source (ties: by rank, then name)
// and SourceVersion the greatest version of that source's materialized
// values at that time. Nothing held (a nil state) materializes as an
// upsert without fields and zero system fields. The field values are
// shared with the state: do not modify them.
func (s *State) Materialize(e Entity, id string) Change {
	v := s.view()
	ch := Change{Entity: e, ID: id, Op: OpUpsert, Source: v.source, SourceTime: v.time, SourceVersion: v.version, Fields: v.fields}
	if v.deleted {
		ch.Op = OpDelete
		ch.Fields = nil
	} else if ch.Fields == nil {
		ch.Fields = Fields{}
	}
	return ch
}

// normalFields copies fs with every value normalized (see normalValue); a
// null is left out: nulls are never held.
func normalFields(fs Fields) Fields {
	out := make(Fields, len(fs))
	for f, v := range fs {
		if n := normalValue(v); string(n) != "null" {
			out[f] = n
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// stateWire is the serialized State.
type stateWire struct {
	Version  int64                  `json:"version"`
	Strategy Strategy               `json:"strategy"`
	Winner   *lwwWinner             `json:"winner,omitempty"`
	Fields   map[string][]fieldCand `json:"fields,omitempty"`
	Delete   *deleteMark            `json:"delete,omitempty"`
}

// marshalState serializes s as compact JSON; equal states give equal bytes
// (map keys are sorted, candidates kept sorted by source). A nil state is
// "null". It fails only on a field value that is not JSON, which Apply and
// UnmarshalState never hold (they normalize every value).
func marshalState(s *State) ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	b, err := json.Marshal(stateWire{Version: s.Version, Strategy: s.strategy, Winner: s.win, Fields: s.fields, Delete: s.del})
	if err != nil {
		return nil, fmt.Errorf("datasync: resolution state does not encode: %w", err)
	}
	return b, nil
}

// UnmarshalState decodes a state written by [marshalState] ("null": nil).
// Its errors never quote the input.
func UnmarshalState(b []byte) (*State, error) {
	var w *stateWire
	if err := json.Unmarshal(b, &w); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("resolution state is not JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("resolution state has a %s where a %s belongs (at byte %d)", typ.Value, typ.Type, typ.Offset)
		}
		return nil, errors.New("resolution state does not decode")
	}
	if w == nil {
		return nil, nil
	}
	s := &State{Version: w.Version, strategy: w.Strategy, win: w.Winner, fields: w.Fields, del: w.Delete}
	switch w.Strategy {
	case LastWriterWins:
		if w.Fields != nil || w.Delete != nil {
			return nil, errors.New("resolution state under last-writer-wins holds per-field values")
		}
		if s.win != nil && !s.win.Deleted && s.win.Fields == nil {
			s.win.Fields = Fields{}
		}
	case Survivorship, FieldMerge:
		if w.Winner != nil {
			return nil, fmt.Errorf("resolution state under %s holds a whole-record winner", w.Strategy)
		}
		if s.fields == nil {
			s.fields = map[string][]fieldCand{}
		}
		for f, cs := range s.fields {
			if len(cs) == 0 {
				delete(s.fields, f)
				continue
			}
			slices.SortFunc(cs, func(a, b fieldCand) int { return strings.Compare(a.Source, b.Source) })
		}
	default:
		return nil, errors.New("resolution state has an unknown strategy")
	}
	return s, nil
}

// normalValue is a copy of v compacted, or the JSON string of its bytes
// when it is not JSON.
func normalValue(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		q, _ := json.Marshal(string(v))
		return q
	}
	return b.Bytes()
}
