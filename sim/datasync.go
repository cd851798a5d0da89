package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The outside world of healthcare data synchronization (DESIGN.md, "Data
// synchronization"): the source systems whose change streams feed the CDC
// stage ([DataSyncRecords], [DataSyncSource]) and the target systems that
// acknowledge validated records ([StartSyncTargets]). The pipelines
// themselves are not here: sim does not import them.

// Topics of the data synchronization pipelines that the world writes or
// reads.
const (
	TopicDataSyncPatient      = "source.ehr.patient"
	TopicDataSyncEncounter    = "source.ehr.encounter"
	TopicDataSyncObservation  = "source.ehr.observation"
	TopicDataSyncPrescription = "source.pharmacy.prescription"
)

// Entity types of the data synchronization workload, as the canonical
// topics name them.
const (
	DataSyncPatient      = "patient"
	DataSyncEncounter    = "encounter"
	DataSyncObservation  = "observation"
	DataSyncPrescription = "prescription"
)

// dataSyncEntities are the entity types in the order scripts cycle through
// them.
var dataSyncEntities = [...]string{DataSyncPatient, DataSyncEncounter, DataSyncObservation, DataSyncPrescription}

// DataSyncEntities returns the entity types of the workload, in a stable
// order.
func DataSyncEntities() []string { return slices.Clone(dataSyncEntities[:]) }

// DataSyncSourceTopics returns the source topics [DataSyncRecords] writes
// to, in entity order.
func DataSyncSourceTopics() []string {
	return []string{TopicDataSyncPatient, TopicDataSyncEncounter, TopicDataSyncObservation, TopicDataSyncPrescription}
}

// DataSyncValidatedTopics returns the canonical.<entity>.validated topics
// [SyncTargets] consume, in entity order.
func DataSyncValidatedTopics() []string {
	out := make([]string, len(dataSyncEntities))
	for i, e := range dataSyncEntities {
		out[i] = "canonical." + e + ".validated"
	}
	return out
}

// SyncTargetTopic is the topic on which target system t acknowledges:
// target.<t>.sync.completed.
func SyncTargetTopic(t string) string { return "target." + t + ".sync.completed" }

// DefaultSyncTargets are the target systems when SyncTargetsConfig.Targets
// is empty.
func DefaultSyncTargets() []string { return []string{"ehr", "pharmacy", "portal"} }

// HeaderSourceSystem names the system a source record comes from when it is
// not the one its topic implies (source.<system>.<entity>).
const HeaderSourceSystem = "source-system"

// ---------------------------------------------------------------------------
// Source workload

// DataSyncTruth is what a stream from DataSyncRecords must yield, by construction.
//
// Every map has the four entity types as keys, zero counts included. Per
// entity type the seven counts add up to the records of that type; over all
// types to n.
type DataSyncTruth struct {
	// Per entity type ("patient", "encounter", "observation", "prescription"):
	Applied          map[string]int // validated records with conflict-resolved=false
	ConflictResolved map[string]int // validated records with conflict-resolved=true
	Duplicates       map[string]int // exact redeliveries: no output at all
	Stale            map[string]int // error records of class "conflict"
	Invalid          map[string]int // error records of class "invalid" (fail validation)
	Undecodable      map[string]int // error records of class "decode" (not JSON)
	Tombstones       map[string]int // tombstones: no change, no output at all
	// Versions: entity type -> entity id -> number of validated records for it
	// (the last validated version of the entity).
	Versions map[string]map[string]int
	// Final: entity type -> entity id -> what the validation stage must
	// hold for the entity once it has read the whole stream, for every
	// entity with a validated record.
	Final map[string]map[string]DataSyncEntity
}

// DataSyncEntity is an entity as the validation stage must hold it at the
// end of a stream, worked out from the scripts (their values and the
// default resolution policies), not by running any resolution code.
type DataSyncEntity struct {
	// Version is the number of validated records of the entity.
	Version int64
	// Deleted: its last accepted change deleted it.
	Deleted bool
	// Fields are the canonical fields (DESIGN.md §3) of the entity, the
	// system fields (id, sourceId, lastUpdated, version, sourceSystem)
	// left out, as encoding/json decodes JSON into an any: strings,
	// float64, []any, map[string]any. Nil when deleted.
	Fields map[string]any
}

// StateModel is the truth's Final as one map, keyed "<entity type>/<id>"
// as the validation stage's entities store keys its records, each value
// {"version": Version, "deleted": Deleted, "fields": Fields}: the model
// a check of that store (check.States) compares it with.
func (t DataSyncTruth) StateModel() map[string]any {
	m := make(map[string]any)
	for e, ids := range t.Final {
		for id, f := range ids {
			m[e+"/"+id] = map[string]any{"version": f.Version, "deleted": f.Deleted, "fields": f.Fields}
		}
	}
	return m
}

// Total is the number of records the truth accounts for: the sum of all six
// counts over all entity types.
func (t DataSyncTruth) Total() int {
	n := 0
	for _, m := range []map[string]int{t.Applied, t.ConflictResolved, t.Duplicates, t.Stale, t.Invalid, t.Undecodable, t.Tombstones} {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// DataSyncRecords returns n seeded source records of the data
// synchronization workload and what the pipelines must make of them.
//
// The stream is made of per-entity scripts, each a few changes of one
// entity that are built to end in a known outcome at validation: applied,
// conflict-resolved, duplicate (a byte-identical redelivery), stale (older
// than what the entity holds), invalid, undecodable. Script i is of entity
// type patient, encounter, observation, prescription for i mod 4 = 0, 1, 2,
// 3; its entity id is "pat-<seed>-<i>", "enc-<seed>-<i>", "obs-<seed>-<i>"
// or "rx-<seed>-<i>", and every record of it is keyed by that id. The
// encounter, observation and prescription of scripts 4k+1..4k+3 belong to
// the patient of script 4k. Scripts are added until they hold n records; the
// last one is cut short to fit (every step's outcome depends only on the
// earlier steps of its own script, so a prefix keeps its truth).
//
// The scripts are interleaved: a seeded source repeatedly picks one of at
// most 16 started, unfinished scripts (the next script starts when one
// finishes) and emits its next step, so each entity's records keep their
// order in the stream, and records of one key land in one partition in that
// order. Script i's time base T is 2026-01-01T00:00:00Z plus i*10 s; the
// source timestamps inside the records are T plus each step's offset, and
// the Kafka timestamp of every record is T, except a tombstone's, which is
// a minute after its delete (a lagging connector): a tombstone is no change. Headers are set only where a record comes from another
// system than its topic's ([HeaderSourceSystem]); no correlation-id.
//
// The scripts (step: source time offset, outcome):
//
//   - patient (source.ehr.patient; survivorship, ehr above registration,
//     address preferring registration), in one of two field variants
//     chosen per entity: {id, firstName, lastName, dateOfBirth, gender,
//     address, lastUpdated, version} or {patientId, name{given, family},
//     dob, sex, updatedAt, versionId}. 1: +0 applied. 2: +1000, another
//     lastName, applied. 3: step 2 again, duplicate. 4: +500, a third
//     lastName, stale. 5: from registration, +1000, another firstName and
//     address, conflict-resolved. 6: +2000, gender "z" (sex "z"), invalid.
//     7: truncated JSON, undecodable.
//   - encounter (source.ehr.encounter; last-writer-wins): 1: +0
//     in-progress, applied. 2: +1000 finished, applied. 3: duplicate. 4:
//     +500 arrived, stale. 5: +2000 without patientId, invalid. 6: +3000
//     {"id", "operationType": "delete", "lastUpdated"}, applied (a delete).
//   - observation (source.ehr.observation; last-writer-wins), Debezium
//     envelopes: 1: op c at +0, applied. 2: op u at +1000, applied. 3:
//     duplicate. 4: op u at +500, stale. 5: op u at +2000 with status
//     "bogus", invalid. 6: op d at +3000, applied (a delete). 7: its
//     tombstone, no outcome at all.
//   - prescription (source.pharmacy.prescription; field merge, pharmacy
//     above ehr at equal times): 1: +0 full, applied. 2: +2000 partial
//     (dose), applied. 3: duplicate. 4: +1000 partial, stale. 5: from ehr,
//     +1500, dose and frequency, conflict-resolved (its frequency wins, its
//     dose loses). 6: +2500 with a status outside the FHIR value set, invalid.
//
// Deterministic in (seed, n): the same arguments give byte-identical
// records (topic, key, value, headers, timestamp), and the scripts
// themselves depend on (seed, i) only. n <= 0 gives no records.
func DataSyncRecords(seed int64, n int) ([]*kgo.Record, DataSyncTruth) {
	truth := DataSyncTruth{
		Applied:          make(map[string]int),
		ConflictResolved: make(map[string]int),
		Duplicates:       make(map[string]int),
		Stale:            make(map[string]int),
		Invalid:          make(map[string]int),
		Undecodable:      make(map[string]int),
		Tombstones:       make(map[string]int),
		Versions:         make(map[string]map[string]int),
		Final:            make(map[string]map[string]DataSyncEntity),
	}
	for _, e := range dataSyncEntities {
		for _, m := range []map[string]int{truth.Applied, truth.ConflictResolved, truth.Duplicates, truth.Stale, truth.Invalid, truth.Undecodable, truth.Tombstones} {
			m[e] = 0
		}
		truth.Versions[e] = make(map[string]int)
		truth.Final[e] = make(map[string]DataSyncEntity)
	}
	steps := dsStream(seed, n)
	recs := make([]*kgo.Record, len(steps))
	for i, s := range steps {
		recs[i] = s.rec
		switch s.outcome {
		case dsApplied:
			truth.Applied[s.entity]++
		case dsResolved:
			truth.ConflictResolved[s.entity]++
		case dsDuplicate:
			truth.Duplicates[s.entity]++
		case dsStale:
			truth.Stale[s.entity]++
		case dsInvalid:
			truth.Invalid[s.entity]++
		case dsUndecodable:
			truth.Undecodable[s.entity]++
		case dsNone:
			truth.Tombstones[s.entity]++
		}
		if s.outcome.validated() {
			id := string(s.rec.Key)
			truth.Versions[s.entity][id]++
			truth.Final[s.entity][id] = DataSyncEntity{
				Version: int64(truth.Versions[s.entity][id]),
				Deleted: s.after == nil,
				Fields:  s.after,
			}
		}
	}
	return recs, truth
}

// DataSyncSource is the same stream as a generator for a demo feeder:
// the records of [DataSyncRecords] and the entity id (the key) of each.
func DataSyncSource(seed int64, n int) ([]*kgo.Record, []string) {
	steps := dsStream(seed, n)
	recs := make([]*kgo.Record, len(steps))
	ids := make([]string, len(steps))
	for i, s := range steps {
		recs[i] = s.rec
		ids[i] = string(s.rec.Key)
	}
	return recs, ids
}

// Workload shape.
const (
	streamDataSyncScript     uint64 = 0x50 // PCG stream of a script's values
	streamDataSyncInterleave uint64 = 0x51 // PCG stream of the interleaving
	// dsWindow bounds the scripts started and unfinished at any point of
	// the stream, so an entity's changes stay close together.
	dsWindow = 16
	// dsEntitySpacing is how far apart the time bases of two scripts are.
	dsEntitySpacing = 10_000 // ms
)

// dsBase is the time base of script 0.
var dsBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// dsOutcome is what validation must make of a step.
type dsOutcome int

const (
	dsApplied dsOutcome = iota
	dsResolved
	dsDuplicate
	dsStale
	dsInvalid
	dsUndecodable
	// dsNone: no change at all (a tombstone): nothing validated, no error.
	dsNone
)

func (o dsOutcome) validated() bool { return o == dsApplied || o == dsResolved }

func (o dsOutcome) String() string {
	switch o {
	case dsApplied:
		return "applied"
	case dsResolved:
		return "conflict-resolved"
	case dsDuplicate:
		return "duplicate"
	case dsStale:
		return "stale"
	case dsInvalid:
		return "invalid"
	case dsUndecodable:
		return "undecodable"
	case dsNone:
		return "none"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// dsStep is one record of a script and its outcome.
type dsStep struct {
	entity  string
	rec     *kgo.Record
	outcome dsOutcome
	// after, for a validated step, is the entity's canonical fields
	// once it is applied (see DataSyncEntity.Fields); nil: deleted.
	after map[string]any
}

// dsScriptLen is the number of steps of a full script of entity type e.
func dsScriptLen(e string) int {
	if e == DataSyncPatient || e == DataSyncObservation {
		return 7
	}
	return 6
}

// dsStream builds the interleaved stream of n steps.
func dsStream(seed int64, n int) []dsStep {
	if n <= 0 {
		return nil
	}
	// The scripts' lengths, the last one cut to make n.
	var lens []int
	for total := 0; total < n; {
		l := min(dsScriptLen(dataSyncEntities[len(lens)%len(dataSyncEntities)]), n-total)
		lens = append(lens, l)
		total += l
	}
	type running struct {
		steps []dsStep
		next  int
	}
	var (
		out    = make([]dsStep, 0, n)
		active []*running
		start  int
		r      = paRand(seed, streamDataSyncInterleave, 0)
	)
	for len(out) < n {
		for len(active) < dsWindow && start < len(lens) {
			active = append(active, &running{steps: dsScript(seed, start)[:lens[start]]})
			start++
		}
		k := r.IntN(len(active))
		s := active[k]
		out = append(out, s.steps[s.next])
		s.next++
		if s.next == len(s.steps) {
			active = slices.Delete(active, k, k+1)
		}
	}
	return out
}

// dsScript returns script i of a seed, whole: a pure function of (seed, i).
func dsScript(seed int64, i int) []dsStep {
	g := &dsGen{
		seed: seed,
		i:    i,
		t:    dsBase + int64(i)*dsEntitySpacing,
		r:    paRand(seed, streamDataSyncScript, int64(i)),
	}
	g.patientID = dsID("pat", seed, i-i%len(dataSyncEntities))
	switch e := dataSyncEntities[i%len(dataSyncEntities)]; e {
	case DataSyncPatient:
		return g.patient()
	case DataSyncEncounter:
		return g.encounter()
	case DataSyncObservation:
		return g.observation()
	default:
		return g.prescription()
	}
}

func dsID(prefix string, seed int64, i int) string {
	return prefix + "-" + strconv.FormatInt(seed, 10) + "-" + strconv.Itoa(i)
}

// dsGen builds one script.
type dsGen struct {
	seed      int64
	i         int
	t         int64 // the script's time base T, ms
	r         *rand.Rand
	patientID string // the patient of the script's group
}

// record is a step's record: keyed by id, Kafka timestamp T.
func (g *dsGen) record(topic, id string, value []byte, hdrs ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(id), Value: value, Headers: hdrs, Timestamp: time.UnixMilli(g.t).UTC()}
}

// redeliver is a byte-identical copy of r (no shared slices).
func redeliver(r *kgo.Record) *kgo.Record {
	c := &kgo.Record{Topic: r.Topic, Key: slices.Clone(r.Key), Value: slices.Clone(r.Value), Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, kgo.RecordHeader{Key: h.Key, Value: slices.Clone(h.Value)})
	}
	return c
}

// other picks an index in [0, n) other than every index in not (which must
// leave at least one).
func (g *dsGen) other(n int, not ...int) int {
	for {
		if k := g.r.IntN(n); !slices.Contains(not, k) {
			return k
		}
	}
}

// Values the scripts draw from. Names are the obviously synthetic ones of
// the alerts workload ([givenNames], [familyNames]).
var (
	dsStreets     = []string{"1 Sample Street", "22 Fixture Lane", "303 Placeholder Road", "4 Mockingbird Way", "55 Example Avenue", "6 Testbed Close"}
	dsCities      = []string{"Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Oakdale"}
	dsPostalCodes = []string{"10001", "20002", "30003", "40004", "50005", "60006"}
)

// dsRFC3339Milli formats ms since the epoch as RFC 3339 in UTC with
// milliseconds.
func dsRFC3339Milli(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// ---------------------------------------------------------------------------
// Patient

type (
	dsAddress struct {
		Line       []string `json:"line"`
		City       string   `json:"city"`
		PostalCode string   `json:"postalCode"`
	}
	// dsPatientA is the seed's camelCase patient.
	dsPatientA struct {
		ID          string     `json:"id"`
		FirstName   string     `json:"firstName"`
		LastName    string     `json:"lastName"`
		DateOfBirth string     `json:"dateOfBirth"`
		Gender      string     `json:"gender"`
		Address     *dsAddress `json:"address"`
		LastUpdated int64      `json:"lastUpdated"`
		Version     int64      `json:"version"`
	}
	dsName struct {
		Given  string `json:"given"`
		Family string `json:"family"`
	}
	// dsPatientB is the other patient variant.
	dsPatientB struct {
		PatientID string `json:"patientId"`
		Name      dsName `json:"name"`
		DOB       string `json:"dob"`
		Sex       string `json:"sex"`
		UpdatedAt string `json:"updatedAt"`
		VersionID int64  `json:"versionId"`
	}
)

// dsPatient is a patient's values, whatever the variant.
type dsPatient struct {
	first, last, dob, gender string // gender: male, female or an invalid code
	addr                     dsAddress
}

// address draws an address whose street is not dsStreets[not...].
func (g *dsGen) address(not ...int) (dsAddress, int) {
	k := g.other(len(dsStreets), not...)
	return dsAddress{
		Line:       []string{dsStreets[k]},
		City:       dsCities[g.r.IntN(len(dsCities))],
		PostalCode: dsPostalCodes[g.r.IntN(len(dsPostalCodes))],
	}, k
}

// patient is the patient script. The ehr's versions follow its source
// times (+0: 1, +500: 2, +1000: 3, +2000: 4), so the stale step is a
// late delivery of version 2 after version 3; registration's change is its
// own version 1.
func (g *dsGen) patient() []dsStep {
	id := dsID("pat", g.seed, g.i)
	// Every draw in a fixed order, whatever the variant.
	variantB := g.r.IntN(2) == 1
	first := g.r.IntN(len(givenNames))
	last1 := g.r.IntN(len(familyNames))
	last2 := g.other(len(familyNames), last1)
	last4 := g.other(len(familyNames), last1, last2)
	first5 := g.other(len(givenNames), first)
	year := 1930 + g.r.IntN(2010-1930+1)
	dob := fmt.Sprintf("%04d-%02d-%02d", year, 1+g.r.IntN(12), 1+g.r.IntN(28))
	gender := [...]string{"male", "female"}[g.r.IntN(2)]
	addr, street := g.address()
	addr5, _ := g.address(street)

	value := func(p dsPatient, at, version int64) []byte {
		if variantB {
			sex := p.gender
			switch sex {
			case "male":
				sex = "M"
			case "female":
				sex = "F"
			}
			return mustMarshal(dsPatientB{
				PatientID: id,
				Name:      dsName{Given: p.first, Family: p.last},
				DOB:       p.dob,
				Sex:       sex,
				UpdatedAt: dsRFC3339Milli(g.t + at),
				VersionID: version,
			})
		}
		a := p.addr
		return mustMarshal(dsPatientA{
			ID:          id,
			FirstName:   p.first,
			LastName:    p.last,
			DateOfBirth: p.dob,
			Gender:      p.gender,
			Address:     &a,
			LastUpdated: g.t + at,
			Version:     version,
		})
	}
	p1 := dsPatient{first: givenNames[first], last: familyNames[last1], dob: dob, gender: gender, addr: addr}
	p2 := p1
	p2.last = familyNames[last2]
	p4 := p2
	p4.last = familyNames[last4]
	p5 := p2
	p5.first, p5.addr = givenNames[first5], addr5
	p6 := p2
	// Not "x": HL7 v2 table 0001's Non-binary, which maps to "other".
	p6.gender = "z"

	// The canonical entity: single-letter sexes spelt out, and each
	// source's own {system, id} among the identifiers (the one field
	// merged across sources, sorted by system).
	canonical := func(p dsPatient, systems ...string) map[string]any {
		f := map[string]any{"firstName": p.first, "lastName": p.last, "dateOfBirth": p.dob, "gender": p.gender}
		if !variantB {
			f["address"] = map[string]any{"line": []any{p.addr.Line[0]}, "city": p.addr.City, "postalCode": p.addr.PostalCode}
		}
		ids := make([]any, len(systems))
		for i, s := range systems {
			ids[i] = map[string]any{"system": s, "value": id}
		}
		f["identifiers"] = ids
		return f
	}
	// Survivorship after registration's change: ehr keeps every field
	// but the address, which registration's wins.
	resolved := p2
	resolved.addr = addr5

	s2 := g.record(TopicDataSyncPatient, id, value(p2, 1000, 3))
	return []dsStep{
		{DataSyncPatient, g.record(TopicDataSyncPatient, id, value(p1, 0, 1)), dsApplied, canonical(p1, "ehr")},
		{DataSyncPatient, s2, dsApplied, canonical(p2, "ehr")},
		{DataSyncPatient, redeliver(s2), dsDuplicate, nil},
		{DataSyncPatient, g.record(TopicDataSyncPatient, id, value(p4, 500, 2)), dsStale, nil},
		{DataSyncPatient, g.record(TopicDataSyncPatient, id, value(p5, 1000, 1),
			kgo.RecordHeader{Key: HeaderSourceSystem, Value: []byte("registration")}), dsResolved, canonical(resolved, "ehr", "registration")},
		{DataSyncPatient, g.record(TopicDataSyncPatient, id, value(p6, 2000, 4)), dsInvalid, nil},
		{DataSyncPatient, g.record(TopicDataSyncPatient, id, []byte(`{"id": "`+id+`", "firstName": `)), dsUndecodable, nil},
	}
}

// ---------------------------------------------------------------------------
// Encounter

type (
	dsEncounter struct {
		ID          string `json:"id"`
		PatientID   string `json:"patientId,omitempty"`
		Status      string `json:"status"`
		Class       string `json:"class"`
		Start       string `json:"start"`
		End         string `json:"end,omitempty"`
		LastUpdated int64  `json:"lastUpdated"`
	}
	dsDelete struct {
		ID            string `json:"id"`
		OperationType string `json:"operationType"`
		LastUpdated   int64  `json:"lastUpdated"`
	}
)

var dsEncounterClasses = []string{"AMB", "EMER", "IMP"}

func (g *dsGen) encounter() []dsStep {
	id := dsID("enc", g.seed, g.i)
	class := dsEncounterClasses[g.r.IntN(len(dsEncounterClasses))]
	day := time.UnixMilli(g.t).UTC().Truncate(24 * time.Hour)
	begin := day.Add(time.Duration(8+g.r.IntN(8)) * time.Hour)
	start := begin.Format(time.RFC3339)
	end := begin.Add(time.Duration(1+g.r.IntN(4)) * 30 * time.Minute).Format(time.RFC3339)

	e1 := dsEncounter{ID: id, PatientID: g.patientID, Status: "in-progress", Class: class, Start: start, LastUpdated: g.t}
	e2 := e1
	e2.Status, e2.End, e2.LastUpdated = "finished", end, g.t+1000
	e4 := e1
	e4.Status, e4.LastUpdated = "arrived", g.t+500
	e5 := e2
	e5.PatientID, e5.LastUpdated = "", g.t+2000

	canonical := func(e dsEncounter) map[string]any {
		f := map[string]any{"patientId": e.PatientID, "status": e.Status, "class": e.Class, "start": e.Start}
		if e.End != "" {
			f["end"] = e.End
		}
		return f
	}

	s2 := g.record(TopicDataSyncEncounter, id, mustMarshal(e2))
	return []dsStep{
		{DataSyncEncounter, g.record(TopicDataSyncEncounter, id, mustMarshal(e1)), dsApplied, canonical(e1)},
		{DataSyncEncounter, s2, dsApplied, canonical(e2)},
		{DataSyncEncounter, redeliver(s2), dsDuplicate, nil},
		{DataSyncEncounter, g.record(TopicDataSyncEncounter, id, mustMarshal(e4)), dsStale, nil},
		{DataSyncEncounter, g.record(TopicDataSyncEncounter, id, mustMarshal(e5)), dsInvalid, nil},
		{DataSyncEncounter, g.record(TopicDataSyncEncounter, id, mustMarshal(dsDelete{ID: id, OperationType: "delete", LastUpdated: g.t + 3000})), dsApplied, nil},
	}
}

// ---------------------------------------------------------------------------
// Observation

type (
	// dsObservationRow is the source database's observation row.
	dsObservationRow struct {
		ID                string  `json:"id"`
		PatientID         string  `json:"patient_id"`
		Code              string  `json:"code"`
		CodeSystem        string  `json:"code_system"`
		Value             float64 `json:"value"`
		Unit              string  `json:"unit"`
		Status            string  `json:"status"`
		EffectiveDateTime string  `json:"effective_date_time"`
	}
	dsDebeziumSource struct {
		TsMs  int64  `json:"ts_ms"`
		Name  string `json:"name"`
		Table string `json:"table"`
	}
	dsDebezium struct {
		Before *dsObservationRow `json:"before"`
		After  *dsObservationRow `json:"after"`
		Op     string            `json:"op"`
		TsMs   int64             `json:"ts_ms"`
		Source dsDebeziumSource  `json:"source"`
	}
)

func (g *dsGen) observation() []dsStep {
	id := dsID("obs", g.seed, g.i)
	// Heart rates, all three different.
	v1 := 55 + g.r.IntN(50)
	v2 := 55 + g.other(50, v1-55)
	v4 := 55 + g.other(50, v1-55, v2-55)
	effective := time.UnixMilli(g.t).UTC().Add(-time.Duration(1+g.r.IntN(60)) * time.Minute).Format(time.RFC3339)

	row := func(v int, status string) *dsObservationRow {
		return &dsObservationRow{
			ID: id, PatientID: g.patientID, Code: "8867-4", CodeSystem: "http://loinc.org",
			Value: float64(v), Unit: "/min", Status: status, EffectiveDateTime: effective,
		}
	}
	change := func(op string, before, after *dsObservationRow, at int64) []byte {
		return mustMarshal(dsDebezium{
			Before: before, After: after, Op: op, TsMs: g.t + at + 5,
			Source: dsDebeziumSource{TsMs: g.t + at, Name: "ehr-db", Table: "observation"},
		})
	}
	r1, r2, r4, r5 := row(v1, "final"), row(v2, "final"), row(v4, "final"), row(v2, "bogus")

	canonical := func(r *dsObservationRow) map[string]any {
		return map[string]any{
			"patientId": r.PatientID, "code": r.Code, "codeSystem": r.CodeSystem, "value": r.Value,
			"unit": r.Unit, "status": r.Status, "effectiveDateTime": r.EffectiveDateTime,
		}
	}

	s2 := g.record(TopicDataSyncObservation, id, change("u", r1, r2, 1000))
	tomb := g.record(TopicDataSyncObservation, id, nil)
	tomb.Timestamp = time.UnixMilli(g.t + 3000 + 60_000).UTC()
	return []dsStep{
		{DataSyncObservation, g.record(TopicDataSyncObservation, id, change("c", nil, r1, 0)), dsApplied, canonical(r1)},
		{DataSyncObservation, s2, dsApplied, canonical(r2)},
		{DataSyncObservation, redeliver(s2), dsDuplicate, nil},
		{DataSyncObservation, g.record(TopicDataSyncObservation, id, change("u", r1, r4, 500)), dsStale, nil},
		{DataSyncObservation, g.record(TopicDataSyncObservation, id, change("u", r2, r5, 2000)), dsInvalid, nil},
		{DataSyncObservation, g.record(TopicDataSyncObservation, id, change("d", r2, nil, 3000)), dsApplied, nil},
		{DataSyncObservation, tomb, dsNone, nil},
	}
}

// ---------------------------------------------------------------------------
// Prescription

type (
	dsRef struct {
		ID string `json:"id"`
	}
	dsMedication struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name"`
	}
	dsPrescription struct {
		PrescriptionID string       `json:"prescriptionId"`
		Patient        *dsRef       `json:"patient,omitempty"`
		Medication     dsMedication `json:"medication"`
		Dose           string       `json:"dose,omitempty"`
		Frequency      string       `json:"frequency,omitempty"`
		Status         string       `json:"status,omitempty"`
		LastUpdated    int64        `json:"lastUpdated"`
	}
)

func (g *dsGen) prescription() []dsStep {
	id := dsID("rx", g.seed, g.i)
	cat := paFormulary[g.r.IntN(len(paFormulary))]
	med := cat.meds[g.r.IntN(len(cat.meds))]
	patient := &dsRef{ID: g.patientID}
	name := dsMedication{Name: med.Name}

	p1 := dsPrescription{PrescriptionID: id, Patient: patient, Medication: dsMedication{ID: med.Code, Name: med.Name}, Dose: "500 mg", Frequency: "BID", LastUpdated: g.t}
	p2 := dsPrescription{PrescriptionID: id, Patient: patient, Medication: name, Dose: "250 mg", LastUpdated: g.t + 2000}
	p4 := dsPrescription{PrescriptionID: id, Patient: patient, Medication: name, Dose: "750 mg", LastUpdated: g.t + 1000}
	p5 := dsPrescription{PrescriptionID: id, Patient: patient, Medication: name, Dose: "100 mg", Frequency: "TID", LastUpdated: g.t + 1500}
	// Under field merge a partial update is judged with the fields held,
	// so the invalid step breaks a rule no held field can mend: its status
	// is not a FHIR MedicationRequest status.
	p6 := dsPrescription{PrescriptionID: id, Patient: patient, Medication: name, Dose: "1000 mg", Status: "on-order", LastUpdated: g.t + 2500}

	// Field merge: each field's latest value; medicationId only the
	// first change has.
	after1 := map[string]any{"patientId": g.patientID, "medicationId": med.Code, "medicationName": med.Name, "dosage": p1.Dose, "frequency": p1.Frequency}
	after2 := maps.Clone(after1)
	after2["dosage"] = p2.Dose
	after5 := maps.Clone(after2)
	after5["frequency"] = p5.Frequency

	s2 := g.record(TopicDataSyncPrescription, id, mustMarshal(p2))
	return []dsStep{
		{DataSyncPrescription, g.record(TopicDataSyncPrescription, id, mustMarshal(p1)), dsApplied, after1},
		{DataSyncPrescription, s2, dsApplied, after2},
		{DataSyncPrescription, redeliver(s2), dsDuplicate, nil},
		{DataSyncPrescription, g.record(TopicDataSyncPrescription, id, mustMarshal(p4)), dsStale, nil},
		{DataSyncPrescription, g.record(TopicDataSyncPrescription, id, mustMarshal(p5),
			kgo.RecordHeader{Key: HeaderSourceSystem, Value: []byte("ehr")}), dsResolved, after5},
		{DataSyncPrescription, g.record(TopicDataSyncPrescription, id, mustMarshal(p6)), dsInvalid, nil},
	}
}

// ---------------------------------------------------------------------------
// Target systems

// Ack statuses the targets send (syncStatus).
const (
	SyncStatusSuccess = "success"
	SyncStatusFailed  = "failed"
)

const (
	// syncDefaultGroup is SyncTargetsConfig.Group's default.
	syncDefaultGroup = "sim-sync-targets"
	// syncQueue is the hand-off between the poll loop and the scheduler;
	// when it is full the poll loop stops polling.
	syncQueue = 256
	// syncMaxPending bounds the acknowledgements the scheduler holds back
	// (Delay); beyond it it stops taking records, the hand-off fills and
	// the poll loop stops polling.
	syncMaxPending = 50_000
)

// SyncTargetsConfig configures [StartSyncTargets]. Read is required; the
// rest of the zero value is valid (every target acknowledges every version
// at once, successfully).
type SyncTargetsConfig struct {
	// Seed selects the delays and the fail and drop decisions.
	Seed int64
	// Targets are the target systems, each acknowledging on
	// target.<t>.sync.completed (default ehr, pharmacy, portal). Names must
	// be non-empty and distinct.
	Targets []string
	// Delay is the mean acknowledgement delay (wall clock); each ack waits
	// uniform [Delay/2, 3*Delay/2], decided by hash. 0 answers at once.
	// Must not be negative.
	Delay time.Duration
	// Fail is the fraction of acknowledged (target, entity, version) first
	// acknowledged with syncStatus "failed", then "success" after another
	// delay. In [0, 1].
	Fail float64
	// Drop is the fraction of (target, entity, version) never
	// acknowledged. In [0, 1].
	Drop float64
	// Read extracts from a validated record its entity type, id and
	// version; the caller supplies it (sim does not decode the canonical
	// Avro itself). ok false: skip the record. It is called from one
	// goroutine.
	Read func(r *kgo.Record) (entity, id string, version int64, ok bool)
	// Group is the targets' consumer group (default "sim-sync-targets").
	Group string
	// Now is the targets' own clock, for syncTimestamp (default
	// time.Now). It is called from one goroutine.
	Now func() time.Time
}

func (cfg *SyncTargetsConfig) validate() error {
	if cfg.Read == nil {
		return errors.New("sim: sync targets: Read is nil")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Fail", cfg.Fail}, {"Drop", cfg.Drop}} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return fmt.Errorf("sim: sync targets: %s %v is outside [0, 1]", f.name, f.v)
		}
	}
	if cfg.Delay < 0 {
		return fmt.Errorf("sim: sync targets: Delay %v is negative", cfg.Delay)
	}
	if len(cfg.Targets) == 0 {
		cfg.Targets = DefaultSyncTargets()
	}
	cfg.Targets = slices.Clone(cfg.Targets)
	for i, t := range cfg.Targets {
		if t == "" {
			return fmt.Errorf("sim: sync targets: target %d has no name", i)
		}
		if slices.Contains(cfg.Targets[:i], t) {
			return fmt.Errorf("sim: sync targets: target %q given twice", t)
		}
	}
	if cfg.Group == "" {
		cfg.Group = syncDefaultGroup
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// Drops reports whether target never acknowledges version of entity id:
// a pure function of Seed, Drop and its arguments.
func (c SyncTargetsConfig) Drops(target, id string, version int64) bool {
	return unitFloat(paHash(c.Seed, "sync-drop", target, id, strconv.FormatInt(version, 10))) < c.Drop
}

// Fails reports whether target first acknowledges version of entity id
// with syncStatus "failed" (then "success"): a pure function of Seed, Fail,
// Drop and its arguments, false where [SyncTargetsConfig.Drops] is true.
// The fail draw is independent of the drop draw, so Fail is the share of
// failed-first among the acknowledged.
func (c SyncTargetsConfig) Fails(target, id string, version int64) bool {
	return !c.Drops(target, id, version) &&
		unitFloat(paHash(c.Seed, "sync-fail", target, id, strconv.FormatInt(version, 10))) < c.Fail
}

// delay is how long attempt (1, or 2 after a failure) of target's ack of
// version of id waits: uniform [Delay/2, 3*Delay/2] from a hash.
func (c SyncTargetsConfig) delay(target, id string, version int64, attempt int) time.Duration {
	if c.Delay <= 0 {
		return 0
	}
	u := unitFloat(paHash(c.Seed, "sync-delay", target, id, strconv.FormatInt(version, 10), strconv.Itoa(attempt)))
	return c.Delay/2 + time.Duration(u*float64(c.Delay))
}

// SyncTargets are simulated target systems that acknowledge the validated
// records of the data synchronization pipelines.
//
// They consume canonical.<entity>.validated of the four entity types
// (read_committed, from the start, in consumer group Group). For each
// record Read accepts and each target t, unless t drops it
// ([SyncTargetsConfig.Drops]), they produce after the delay a JSON ack to
// target.<t>.sync.completed keyed by the entity id:
//
//	{"entityType":…, "entityId":…, "version":…, "syncTimestamp": <ms, Now>,
//	 "syncStatus": "success"|"failed", "syncDetails": {"target": t, "attempt": n}}
//
// with the validated record's correlation-id header when it has one. A
// failed-first one ([SyncTargetsConfig.Fails]) is acknowledged "failed"
// (attempt 1), then, another delay after that ack is written, "success"
// (attempt 2). Acks of one key are written in the order they fall due; two
// acks due at once keep the order their records were read in.
//
// Offsets are committed once a polled batch is handed to the scheduler,
// before its acks are written: acknowledgement is at most once across a
// restart, as with a target that loses its outbox (acks pending at Close
// are never written, as if dropped). Acks that fail to produce (a topic not
// created yet) are retried with backoff until they succeed or Close, and a
// retried ack may be written twice. The targets create no topics.
type SyncTargets struct {
	cfg    SyncTargetsConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	seen, acked, failed, dropped atomic.Int64
}

// SyncTargetsStats counts what the targets did.
type SyncTargetsStats struct {
	// Seen counts validated records Read accepted.
	Seen int64
	// Acked counts "success" acks written (acknowledged by the cluster),
	// Failed "failed" ones.
	Acked, Failed int64
	// Dropped counts (record, target) pairs never to be acknowledged.
	Dropped int64
}

// StartSyncTargets starts the target systems on c, one client in consumer
// group cfg.Group, until Close. It validates cfg. It returns once started,
// not once the group is joined: records produced before or after are
// acknowledged alike. Close the targets before their cluster.
func StartSyncTargets(c *Cluster, cfg SyncTargetsConfig) (*SyncTargets, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("sim: sync targets: nil cluster")
	}
	cl, err := kgo.NewClient(append(c.ClientOpts(),
		kgo.ClientID(cfg.Group),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(DataSyncValidatedTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("sim: sync targets: client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &SyncTargets{cfg: cfg, cancel: cancel}
	t.wg.Go(func() {
		// The client closes (leaving the group) only once both loops
		// are done with it.
		defer cl.Close()
		items := make(chan syncItem, syncQueue)
		var loops sync.WaitGroup
		defer loops.Wait()
		loops.Go(func() { t.poll(ctx, cl, items) })
		t.schedule(ctx, cl, items)
	})
	return t, nil
}

// Close stops the targets and waits for them, their client closed. Acks
// not yet written are abandoned. Safe to call more than once and
// concurrently.
func (t *SyncTargets) Close() {
	t.once.Do(func() {
		t.cancel()
		t.wg.Wait()
	})
}

// Stats returns the targets' counters. Safe to call at any time, also after
// Close.
func (t *SyncTargets) Stats() SyncTargetsStats {
	return SyncTargetsStats{
		Seen:    t.seen.Load(),
		Acked:   t.acked.Load(),
		Failed:  t.failed.Load(),
		Dropped: t.dropped.Load(),
	}
}

// syncItem is one validated record to acknowledge.
type syncItem struct {
	entity, id string
	version    int64
	hdrs       []kgo.RecordHeader // the correlation-id, if any
}

// syncTask is one ack, held in a delayQueue until due.
type syncTask struct {
	it      *syncItem
	target  string
	attempt int
	status  string
}

// poll reads validated records, hands what Read accepts to the scheduler
// and commits each batch once handed over.
func (t *SyncTargets) poll(ctx context.Context, cl *kgo.Client, items chan<- syncItem) {
	for {
		fs := cl.PollRecords(ctx, paMaxPollRecords)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		// Fetch errors (a topic not created yet) are kgo's to retry.
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		for _, r := range recs {
			entity, id, version, ok := t.cfg.Read(r)
			if !ok {
				continue
			}
			t.seen.Add(1)
			it := syncItem{entity: entity, id: id, version: version}
			for _, h := range r.Headers {
				if h.Key == HeaderCorrelationID {
					it.hdrs = []kgo.RecordHeader{{Key: HeaderCorrelationID, Value: slices.Clone(h.Value)}}
					break
				}
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
		}
		// A failed commit (a rebalance) only means acks sent twice by a
		// later member.
		_ = cl.CommitRecords(ctx, recs...)
	}
}

// schedule owns the pending acks: it takes records from the poll loop,
// holds their acks until due and writes them.
func (t *SyncTargets) schedule(ctx context.Context, cl *kgo.Client, items <-chan syncItem) {
	var tasks delayQueue[syncTask]
	push := func(it *syncItem, target string, attempt int, status string) {
		due := time.Now().Add(t.cfg.delay(target, it.id, it.version, attempt))
		tasks.push(due, syncTask{it: it, target: target, attempt: attempt, status: status})
	}
	accept := func(it syncItem) {
		for _, target := range t.cfg.Targets {
			switch {
			case t.cfg.Drops(target, it.id, it.version):
				t.dropped.Add(1)
			case t.cfg.Fails(target, it.id, it.version):
				push(&it, target, 1, SyncStatusFailed)
			default:
				push(&it, target, 1, SyncStatusSuccess)
			}
		}
	}
	fire := func(due []syncTask) error {
		if len(due) == 0 {
			return nil
		}
		recs := make([]*kgo.Record, len(due))
		for i, task := range due {
			recs[i] = t.ack(task)
		}
		if err := produceAll(ctx, cl, recs); err != nil {
			return err // ctx ended
		}
		for _, task := range due {
			if task.status == SyncStatusFailed {
				t.failed.Add(1)
				// The retry waits another delay, after the failed
				// ack is written.
				push(task.it, task.target, task.attempt+1, SyncStatusSuccess)
			} else {
				t.acked.Add(1)
			}
		}
		return nil
	}
	runDelayQueue(ctx, items, &tasks, syncMaxPending, paMaxPollRecords, accept, fire)
}

// syncAck is the target.<t>.sync.completed payload; field order is
// encoding order.
type syncAck struct {
	EntityType    string         `json:"entityType"`
	EntityID      string         `json:"entityId"`
	Version       int64          `json:"version"`
	SyncTimestamp int64          `json:"syncTimestamp"`
	SyncStatus    string         `json:"syncStatus"`
	SyncDetails   syncAckDetails `json:"syncDetails"`
}

type syncAckDetails struct {
	Target  string `json:"target"`
	Attempt int    `json:"attempt"`
}

func (t *SyncTargets) ack(task syncTask) *kgo.Record {
	return &kgo.Record{
		Topic: SyncTargetTopic(task.target),
		Key:   []byte(task.it.id),
		Value: mustMarshal(syncAck{
			EntityType:    task.it.entity,
			EntityID:      task.it.id,
			Version:       task.it.version,
			SyncTimestamp: t.cfg.Now().UnixMilli(),
			SyncStatus:    task.status,
			SyncDetails:   syncAckDetails{Target: task.target, Attempt: task.attempt},
		}),
		Headers: task.it.hdrs,
	}
}
