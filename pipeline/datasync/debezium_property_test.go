package datasync

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// dbzStep is one committed change of a row in the source database.
type dbzStep struct {
	op    string // c, u, d
	ts    int64  // source.ts_ms
	lsn   int64
	value float64 // the row's value column (c, u)
}

// dbzRecord is one Kafka record of a row's history: a change event or its
// tombstone.
type dbzRecord struct {
	value     []byte // nil: a tombstone
	timestamp int64  // Kafka record time
	step      int    // the index of its change
}

// genRowHistory draws the changes of one row in commit order: it exists
// or not, so a create only when it does not, an update or a delete only
// when it does. Source times never go back and may repeat (several commits
// in one millisecond); log positions always grow.
func genRowHistory(t *rapid.T) []dbzStep {
	n := rapid.IntRange(1, 10).Draw(t, "changes")
	ts, lsn := int64(1_767_225_600_000), int64(24_023_128)
	exists := false
	var steps []dbzStep
	for i := range n {
		ts += rapid.SampledFrom([]int64{0, 1, 1000}).Draw(t, fmt.Sprintf("gap%d", i))
		lsn += rapid.Int64Range(1, 500).Draw(t, fmt.Sprintf("lsn%d", i))
		s := dbzStep{ts: ts, lsn: lsn}
		switch {
		case !exists:
			s.op = "c"
		case rapid.Bool().Draw(t, fmt.Sprintf("delete%d", i)):
			s.op = "d"
		default:
			s.op = "u"
		}
		if s.op != "d" {
			s.value = float64(rapid.IntRange(40, 180).Draw(t, fmt.Sprintf("value%d", i)))
		}
		exists = s.op != "d"
		steps = append(steps, s)
	}
	return steps
}

func dbzObservationRow(v float64) map[string]any {
	return map[string]any{
		"id": "obs-1", "patient_id": "p-1", "code": "8867-4", "code_system": "http://loinc.org",
		"value": v, "unit": "/min", "status": "final", "effective_date_time": "2026-01-01T00:00:00Z",
	}
}

// dbzRecords are the records a PostgreSQL connector writes for steps: each
// change event, and a tombstone after each delete. Kafka record times are
// drawn freely: a connector's lag is anything.
func dbzRecords(t *rapid.T, steps []dbzStep) []dbzRecord {
	var recs []dbzRecord
	var before map[string]any
	for i, s := range steps {
		ev := map[string]any{
			"op": s.op, "ts_ms": s.ts + 40,
			"source": map[string]any{"connector": "postgresql", "ts_ms": s.ts, "lsn": s.lsn, "snapshot": "false"},
		}
		after := map[string]any(nil)
		if s.op != "d" {
			after = dbzObservationRow(s.value)
		}
		ev["before"], ev["after"] = before, after
		if s.op == "d" && before == nil {
			ev["before"] = map[string]any{"id": "obs-1"}
		}
		before = after
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		lag := rapid.Int64Range(0, 3_600_000).Draw(t, fmt.Sprintf("lag%d", i))
		recs = append(recs, dbzRecord{value: b, timestamp: s.ts + lag, step: i})
		if s.op == "d" {
			lag := rapid.Int64Range(0, 3_600_000).Draw(t, fmt.Sprintf("tombstoneLag%d", i))
			recs = append(recs, dbzRecord{timestamp: s.ts + lag, step: i})
		}
	}
	return recs
}

// For any interleaving of one row's change events and tombstones, each
// delivered one to three times, what validation holds equals the row's last
// change by source time (and log position), under each strategy.
func TestPropertyDebeziumRowLastChangeWins(t *testing.T) {
	for _, name := range sortedKeys(propPolicies) {
		p := propPolicies[name]
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				steps := genRowHistory(t)
				recs := dbzRecords(t, steps)
				var idx []int
				for i := range recs {
					for range rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("copies%d", i)) {
						idx = append(idx, i)
					}
				}
				idx = rapid.Permutation(idx).Draw(t, "order")
				var st *State
				for _, i := range idx {
					m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.observation", Key: []byte(`{"id":"obs-1"}`), Value: recs[i].value, Timestamp: recs[i].timestamp})
					if err != nil {
						t.Fatalf("record %d: %v", i, err)
					}
					if m.Tombstone {
						continue
					}
					if probs := validateChange(&m.Change); len(probs) > 0 {
						t.Fatalf("record %d invalid: %v", i, probs)
					}
					st = p.apply(st, &m.Change).State
				}
				got := st.Materialize(Observation, "obs-1")
				// The last change, mapped on its own, is what must be held.
				lastRec := recs[slices.IndexFunc(recs, func(r dbzRecord) bool { return r.step == len(steps)-1 && r.value != nil })]
				m, err := mapBuiltIn(sourceRecord{Topic: "source.ehr.observation", Value: lastRec.value})
				if err != nil {
					t.Fatal(err)
				}
				want := m.Change
				want.Op, want.Fields = OpUpsert, normalFields(want.Fields)
				if want.SourceTime != steps[len(steps)-1].ts || want.SourceVersion != steps[len(steps)-1].lsn {
					t.Fatalf("the last change maps to %d v%d", want.SourceTime, want.SourceVersion)
				}
				if m.Change.Op == OpDelete {
					want.Op, want.Fields = OpDelete, nil
				}
				requireSameEntity(t, "held", want, got)
			})
		})
	}
}
