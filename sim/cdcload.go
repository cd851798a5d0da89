package sim

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// An unbounded CDC patient workload for load generation (capacity
// planning). Unlike [DataSyncRecords], whose scripts are built to end in
// every outcome the validation stage knows, this stream is meant to be
// produced at a steady rate for as long as a run lasts, with the mix of
// outcomes set by the caller. It reuses the patient shape and value tables
// of the data synchronization workload so both exercise the same decoding.

// CDCKind is what the validation stage must make of a change of the
// [CDCLoadGen] stream.
type CDCKind string

const (
	// CDCValid: an ehr change that passes validation and is applied.
	CDCValid CDCKind = "valid"
	// CDCConflict: a change sent by the second source system
	// (registration). It is valid; the validation stage resolves it
	// against the fields another source already holds for the entity and
	// marks it conflict-resolved, but only when the entity already holds
	// another source's fields: registration's change to an entity that
	// no ehr change has reached yet is simply applied. CDCConflict thus
	// names the intent of the change, not a guaranteed outcome; with
	// Entities well below the number of changes sent nearly every one is
	// resolved.
	CDCConflict CDCKind = "conflict"
	// CDCInvalid: an ehr change that fails validation (gender "z", in
	// neither HL7 v2 table 0001 nor the FHIR administrative-gender value
	// set; "x" is table 0001's Non-binary, a valid "other").
	CDCInvalid CDCKind = "invalid"
)

// CDCLoad configures [NewCDCLoad]. The zero value is valid: 10,000
// entities, every change valid.
type CDCLoad struct {
	// Seed selects the entity and the values of every change, and is part
	// of the entity ids.
	Seed int64
	// Entities is the number of distinct patients changed, ids
	// "lp-<Seed>-<k>" for k in [0, Entities). 0 means 10,000; negative is
	// an error. Fewer entities mean more changes per entity, so more
	// conflicts to resolve and more contention on one key.
	Entities int
	// ConflictFraction is the share of changes sent by a second source
	// system, "registration" (named by the [HeaderSourceSystem] header),
	// instead of the topic's own, "ehr"; the validation stage must resolve
	// them against the other source's fields (see [CDCConflict]). In
	// [0, 1].
	ConflictFraction float64
	// InvalidFraction is the share of changes that fail validation (gender
	// "z"). In [0, 1]. ConflictFraction+InvalidFraction must not exceed 1
	// (give or take float rounding, 1e-9); what is left is the share of
	// valid ehr changes.
	InvalidFraction float64
}

// cdcDefaultEntities is CDCLoad.Entities' default.
const cdcDefaultEntities = 10_000

// streamCDCLoad is the PCG stream of a change's draws, apart from every
// other workload's so that the same seed never correlates them.
const streamCDCLoad uint64 = 0x60

// cdcSumSlack lets fractions meant to add up to 1 (0.7 and 0.3) do so
// despite binary rounding.
const cdcSumSlack = 1e-9

// cdcRegistration is the second source system's name.
const cdcRegistration = "registration"

// CDCLoadGen generates the changes of a [CDCLoad]. Record and Kind are pure
// functions of the configuration and the index; Next walks the indexes
// once each. Safe for concurrent use.
type CDCLoadGen struct {
	cfg CDCLoad
	// prefix is "lp-<Seed>-", so a key costs one append, not a format.
	prefix string
	next   atomic.Int64
}

// NewCDCLoad validates cfg, fills its defaults and returns its generator.
// Errors name the offending field.
func NewCDCLoad(cfg CDCLoad) (*CDCLoadGen, error) {
	if cfg.Entities < 0 {
		return nil, fmt.Errorf("sim: cdc load: Entities %d is negative", cfg.Entities)
	}
	if cfg.Entities == 0 {
		cfg.Entities = cdcDefaultEntities
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"ConflictFraction", cfg.ConflictFraction}, {"InvalidFraction", cfg.InvalidFraction}} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return nil, fmt.Errorf("sim: cdc load: %s %v is outside [0, 1]", f.name, f.v)
		}
	}
	if s := cfg.ConflictFraction + cfg.InvalidFraction; s > 1+cdcSumSlack {
		return nil, fmt.Errorf("sim: cdc load: ConflictFraction+InvalidFraction %v exceeds 1", s)
	}
	return &CDCLoadGen{cfg: cfg, prefix: "lp-" + strconv.FormatInt(cfg.Seed, 10) + "-"}, nil
}

// Config returns the generator's configuration, defaults filled in.
func (g *CDCLoadGen) Config() CDCLoad { return g.cfg }

// EntityID is the id of entity k: "lp-<Seed>-<k>".
func (g *CDCLoadGen) EntityID(k int) string { return g.prefix + strconv.Itoa(k) }

// Record returns change i, i >= 0 (a negative i panics: it is a caller's
// bug, and its lastUpdated would precede the stream's). It is a pure
// function of the configuration and i: a fresh record each call, sharing
// no memory with any other.
//
// The record is for topic [TopicDataSyncPatient], keyed by its entity's
// id, its value a camelCase patient {id, firstName, lastName, dateOfBirth,
// gender, address{line, city, postalCode}, lastUpdated, version}. Its
// entity and values are drawn from change i's own seeded source, so
// changes to one entity carry unrelated values, as a busy source's would.
// lastUpdated is 2026-01-01T00:00:00Z plus i ms and version is i+1: both
// grow with i over the whole stream, so no change is ever older than one
// already sent for its entity, whichever the source, and none is judged
// stale or a duplicate. A conflict change ([CDCLoadGen.Kind]) carries the
// header source-system: registration; others carry no header. The Kafka
// timestamp is left zero for the producer to stamp: a load run wants send
// times, not a replayed history.
func (g *CDCLoadGen) Record(i int64) *kgo.Record {
	if i < 0 {
		panic(fmt.Sprintf("sim: cdc load: change index %d is negative", i))
	}
	d := g.draw(i)
	key := strconv.AppendInt(append(make([]byte, 0, len(g.prefix)+8), g.prefix...), int64(d.entity), 10)
	gender := d.gender
	if d.kind == CDCInvalid {
		gender = "z"
	}
	rec := &kgo.Record{
		Topic: TopicDataSyncPatient,
		Key:   key,
		Value: mustMarshal(dsPatientA{
			ID:          string(key),
			FirstName:   d.first,
			LastName:    d.last,
			DateOfBirth: d.dob,
			Gender:      gender,
			Address:     &d.addr,
			LastUpdated: dsBase + i, // the data sync workload's epoch
			Version:     i + 1,
		}),
	}
	if d.kind == CDCConflict {
		// A header value of its own per record: a caller that edits one
		// record must not change another.
		rec.Headers = []kgo.RecordHeader{{Key: HeaderSourceSystem, Value: []byte(cdcRegistration)}}
	}
	return rec
}

// Kind reports what the validation stage must make of change i (see
// [CDCConflict] for what a conflict change's outcome depends on). A pure
// function of the configuration and i, cheaper than Record.
func (g *CDCLoadGen) Kind(i int64) CDCKind {
	return g.kindOf(paRand(g.cfg.Seed, streamCDCLoad, i).Float64())
}

// Next returns Record(n) for n = 0, 1, 2, ... in turn, each n once however
// many goroutines call it. Concurrent callers get their records in no
// particular order relative to one another.
func (g *CDCLoadGen) Next() *kgo.Record {
	return g.Record(g.next.Add(1) - 1)
}

func (g *CDCLoadGen) kindOf(u float64) CDCKind {
	switch {
	case u < g.cfg.ConflictFraction:
		return CDCConflict
	case u < g.cfg.ConflictFraction+g.cfg.InvalidFraction:
		return CDCInvalid
	default:
		return CDCValid
	}
}

// cdcDraw is change i's drawn contents.
type cdcDraw struct {
	kind                     CDCKind
	entity                   int
	first, last, dob, gender string
	addr                     dsAddress
}

// draw makes change i's draws. The kind comes first and the entity second,
// so a value added at the end never moves a change to another kind or
// entity, and the kind does not depend on Entities.
func (g *CDCLoadGen) draw(i int64) cdcDraw {
	r := paRand(g.cfg.Seed, streamCDCLoad, i)
	d := cdcDraw{kind: g.kindOf(r.Float64())}
	d.entity = r.IntN(g.cfg.Entities)
	d.first = givenNames[r.IntN(len(givenNames))]
	d.last = familyNames[r.IntN(len(familyNames))]
	year, month, day := 1930+r.IntN(2010-1930+1), 1+r.IntN(12), 1+r.IntN(28)
	d.dob = cdcDate(year, month, day)
	// Drawn for invalid changes too, so the draws after it stay put.
	d.gender = [...]string{"male", "female"}[r.IntN(2)]
	d.addr = dsAddress{
		Line:       []string{dsStreets[r.IntN(len(dsStreets))]},
		City:       dsCities[r.IntN(len(dsCities))],
		PostalCode: dsPostalCodes[r.IntN(len(dsPostalCodes))],
	}
	return d
}

// cdcDate formats a date YYYY-MM-DD for a four-digit year without fmt,
// which would cost the hot path an allocation per argument.
func cdcDate(year, month, day int) string {
	var b [10]byte
	b[0] = byte('0' + year/1000)
	b[1] = byte('0' + year/100%10)
	b[2] = byte('0' + year/10%10)
	b[3] = byte('0' + year%10)
	b[4] = '-'
	b[5] = byte('0' + month/10)
	b[6] = byte('0' + month%10)
	b[7] = '-'
	b[8] = byte('0' + day/10)
	b[9] = byte('0' + day%10)
	return string(b[:])
}
