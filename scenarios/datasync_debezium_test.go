package scenarios

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/sim/check"
)

// dbzChange is one committed change of a row, as the PostgreSQL connector
// writes it (debezium/debezium documentation/modules/ROOT/pages/connectors/
// postgresql.adoc, "_create_ events", "_delete_ events", "Tombstone
// events"): its op, source.ts_ms and lsn; a delete is followed by its
// tombstone.
type dbzChange struct {
	op    string // c, u, d; "" for the tombstone after a delete
	at    int64  // ms after the history's base time
	lsn   int64
	value float64
}

// dbzHistory is one row's changes in commit order and what the database
// holds after them.
type dbzHistory struct {
	name    string
	changes []dbzChange
	deleted bool    // the row is gone at the end
	value   float64 // else its value column
}

// The histories: a row deleted and re-inserted a second later; deleted and
// re-inserted in one millisecond (only the log position orders them); and
// updated then deleted for good.
var dbzHistories = []dbzHistory{
	{name: "reinsert", changes: []dbzChange{{"d", 1000, 20, 0}, {"", 1000, 20, 0}, {"c", 2000, 30, 72}}, value: 72},
	{name: "reinsert-same-ms", changes: []dbzChange{{"d", 1000, 20, 0}, {"", 1000, 20, 0}, {"c", 1000, 21, 75}}, value: 75},
	{name: "deleted", changes: []dbzChange{{"u", 1000, 20, 66}, {"d", 2000, 30, 0}, {"", 2000, 30, 0}}, deleted: true},
}

// dbzLags are how far behind the database the connector writes a record.
var dbzLags = []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour}

// permutations are every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// Issue 18: a row's create, its delete, the delete's tombstone and its
// re-insert (or an update and a final delete), in every order of arrival
// and with the connector lagging by up to a day, leave the
// validation store and the validated stream holding what the database
// holds: tombstones are no change, and no delete is ordered by the time its
// record reached Kafka. Tombstones never reach the error topic.
func TestDataSyncDebeziumDeleteTombstoneReinsert(t *testing.T) {
	w := newSyncWorld(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var recs []*kgo.Record
	model := map[string]any{}
	n := 0
	for _, h := range dbzHistories {
		// The create first in commit order, then the history's changes.
		all := append([]dbzChange{{"c", 0, 10, 58}}, h.changes...)
		// Each change's before image: the row as the change found it.
		before := make([]*dbzChange, len(all))
		var row *dbzChange
		for i := range all {
			before[i] = row
			switch all[i].op {
			case "c", "u":
				row = &all[i]
			case "d":
				row = nil
			}
		}
		for _, perm := range permutations(len(all)) {
			id := fmt.Sprintf("obs-%s-%d", h.name, n)
			for j, i := range perm {
				lag := dbzLags[(n+j)%len(dbzLags)]
				recs = append(recs, dbzRecord(t, id, base, all[i], before[i], lag))
			}
			key := string(datasync.Observation) + "/" + id
			if h.deleted {
				model[key] = map[string]any{"deleted": true}
			} else {
				model[key] = map[string]any{"deleted": false, "value": h.value}
			}
			n++
		}
	}
	w.start(w.cdcSpec(), "cdc-1")
	w.start(w.validationSpec(), "val-1")
	produceAll(t, w.prod, recs)
	w.waitCaughtUp(w.cdcSpec(), w.validationSpec())

	held := w.heldEntities(func(_ int64, deleted bool, fields datasync.Fields) any {
		return dbzState(t, deleted, fields)
	})
	if rep := check.States(model, held); rep.Problems() > 0 {
		t.Errorf("validation store against the database: %d missing, %d extra, %d mismatched of %d; %s",
			rep.Missing, rep.Extra, rep.Mismatched, len(model), strings.Join(rep.Examples, "; "))
	}
	published := map[string]any{}
	for _, r := range w.read(datasync.ValidatedTopic(datasync.Observation)) {
		_, op, _, rec, err := w.codec.DecodeValue(r.Value, datasync.Observation)
		if err != nil {
			t.Fatal(err)
		}
		var fields datasync.Fields
		if op != string(datasync.OpDelete) {
			if fields, err = datasync.FieldsOf(rec); err != nil {
				t.Fatal(err)
			}
		}
		published[string(datasync.Observation)+"/"+string(r.Key)] = dbzState(t, op == string(datasync.OpDelete), fields)
	}
	if rep := check.States(model, published); rep.Problems() > 0 {
		t.Errorf("last validated records against the database: %d missing, %d extra, %d mismatched of %d; %s",
			rep.Missing, rep.Extra, rep.Mismatched, len(model), strings.Join(rep.Examples, "; "))
	}
	for _, r := range w.read(datasync.TopicErrors) {
		h := headerMap(r)
		orig, err := datasync.OriginalValue(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		// Changes that arrive after newer ones are stale (class
		// conflict); nothing else may fail, a tombstone least of all.
		if len(orig) == 0 || h["error-type"] != "conflict" {
			t.Errorf("error record of class %s from %s@%s (%d bytes)", h["error-type"], h["source-topic"], h["source-offset"], len(orig))
		}
	}
}

// dbzRecord is the PostgreSQL connector's record of change c of row id:
// an envelope whose before image is prev's row, or c's tombstone. Its
// Kafka timestamp is the change's commit time plus the connector's lag.
func dbzRecord(t *testing.T, id string, base int64, c dbzChange, prev *dbzChange, lag time.Duration) *kgo.Record {
	t.Helper()
	key := `{"id":"` + id + `"}`
	at := time.UnixMilli(base + c.at).Add(lag)
	if c.op == "" {
		return &kgo.Record{Topic: "source.ehr.observation", Key: []byte(key), Timestamp: at}
	}
	row := func(v float64) map[string]any {
		return map[string]any{"id": id, "patient_id": "pat-1", "code": "8867-4", "code_system": "http://loinc.org",
			"value": v, "unit": "/min", "status": "final", "effective_date_time": "2025-12-31T23:00:00Z"}
	}
	ev := map[string]any{
		"op": c.op, "before": nil, "after": nil, "ts_ms": base + c.at + lag.Milliseconds(),
		"source": map[string]any{"connector": "postgresql", "name": "ehr", "ts_ms": base + c.at, "snapshot": "false",
			"db": "ehr", "schema": "public", "table": "observation", "lsn": c.lsn},
	}
	if prev != nil {
		ev["before"] = row(prev.value)
	}
	if c.op != "d" {
		ev["after"] = row(c.value)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "source.ehr.observation", Key: []byte(key), Value: b, Timestamp: at}
}

// dbzState is an observation as the database holds it: gone, or its value.
func dbzState(t *testing.T, deleted bool, fields datasync.Fields) map[string]any {
	t.Helper()
	if deleted {
		return map[string]any{"deleted": true}
	}
	var v float64
	if err := json.Unmarshal(fields["value"], &v); err != nil {
		t.Fatalf("value %s: %v", fields["value"], err)
	}
	return map[string]any{"deleted": false, "value": v}
}
