package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ---------------------------------------------------------------------------
// Source workload

func TestDataSyncRecordsDeterministic(t *testing.T) {
	tests := []struct {
		name string
		seed int64
		n    int
	}{
		{name: "one record", seed: 1, n: 1},
		{name: "cut mid script", seed: 7, n: 45},
		{name: "thousands", seed: 42, n: 3000},
		{name: "negative seed", seed: -3, n: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ta := DataSyncRecords(tt.seed, tt.n)
			b, tb := DataSyncRecords(tt.seed, tt.n)
			if len(a) != tt.n || len(b) != tt.n {
				t.Fatalf("got %d and %d records, want %d", len(a), len(b), tt.n)
			}
			for i := range a {
				if d := dsRecordDiff(a[i], b[i]); d != "" {
					t.Fatalf("record %d differs between calls: %s", i, d)
				}
			}
			if !dsTruthEqual(ta, tb) {
				t.Fatalf("truth differs between calls:\n%+v\n%+v", ta, tb)
			}
			// The feeder's form is the same stream.
			src, ids := DataSyncSource(tt.seed, tt.n)
			if len(src) != tt.n || len(ids) != tt.n {
				t.Fatalf("DataSyncSource gave %d records and %d ids, want %d", len(src), len(ids), tt.n)
			}
			for i := range a {
				if d := dsRecordDiff(a[i], src[i]); d != "" {
					t.Fatalf("DataSyncSource record %d differs from DataSyncRecords: %s", i, d)
				}
				if ids[i] != string(src[i].Key) {
					t.Fatalf("DataSyncSource id %d is %q, key %q", i, ids[i], src[i].Key)
				}
			}
			// Another seed gives other records, values included.
			other, _ := DataSyncRecords(tt.seed+1, tt.n)
			same := 0
			for i := range a {
				if bytes.Equal(a[i].Value, other[i].Value) {
					same++
				}
			}
			if same == tt.n {
				t.Fatalf("seeds %d and %d give the same values", tt.seed, tt.seed+1)
			}
		})
	}
	if recs, truth := DataSyncRecords(1, 0); len(recs) != 0 || truth.Total() != 0 {
		t.Fatalf("n=0 gave %d records, truth total %d", len(recs), truth.Total())
	}
}

// dsRecordDiff says how two records differ in topic, key, value, headers or
// timestamp; "" when they do not.
func dsRecordDiff(a, b *kgo.Record) string {
	switch {
	case a.Topic != b.Topic:
		return "topic"
	case !bytes.Equal(a.Key, b.Key):
		return "key"
	case !bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil):
		return "value"
	case !a.Timestamp.Equal(b.Timestamp):
		return "timestamp"
	case len(a.Headers) != len(b.Headers):
		return "header count"
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return "header " + a.Headers[i].Key
		}
	}
	return ""
}

func dsTruthEqual(a, b DataSyncTruth) bool {
	for _, p := range [][2]map[string]int{
		{a.Applied, b.Applied}, {a.ConflictResolved, b.ConflictResolved}, {a.Duplicates, b.Duplicates},
		{a.Stale, b.Stale}, {a.Invalid, b.Invalid}, {a.Undecodable, b.Undecodable}, {a.Tombstones, b.Tombstones},
	} {
		if !maps.Equal(p[0], p[1]) {
			return false
		}
	}
	return maps.EqualFunc(a.Versions, b.Versions, maps.Equal)
}

// dsEntityOfTopic maps a source topic to its entity type and the source
// system the topic implies.
var dsEntityOfTopic = map[string]struct{ entity, system string }{
	TopicDataSyncPatient:      {DataSyncPatient, "ehr"},
	TopicDataSyncEncounter:    {DataSyncEncounter, "ehr"},
	TopicDataSyncObservation:  {DataSyncObservation, "ehr"},
	TopicDataSyncPrescription: {DataSyncPrescription, "pharmacy"},
}

// dsClassify derives, from the records alone, what validation must make of
// each, independently of how the generator labelled them: per key, in
// stream order, a tombstone is no change; a value that is not JSON is
// undecodable; a byte-identical redelivery (value and headers) a duplicate;
// a value breaking a validation rule (a gender outside the FHIR value set,
// an encounter or prescription without its patient, an observation status
// outside FHIR's) is invalid; a record from another system than its
// topic's is conflict-resolved (the scripts make such a record win some
// fields and lose others); a record older than one already accepted from
// the same source is stale; the rest is applied.
func dsClassify(t *testing.T, recs []*kgo.Record) DataSyncTruth {
	t.Helper()
	truth := DataSyncTruth{
		Applied: map[string]int{}, ConflictResolved: map[string]int{}, Duplicates: map[string]int{},
		Stale: map[string]int{}, Invalid: map[string]int{}, Undecodable: map[string]int{}, Tombstones: map[string]int{},
		Versions: map[string]map[string]int{},
	}
	for _, e := range dataSyncEntities {
		for _, m := range []map[string]int{truth.Applied, truth.ConflictResolved, truth.Duplicates, truth.Stale, truth.Invalid, truth.Undecodable, truth.Tombstones} {
			m[e] = 0
		}
		truth.Versions[e] = map[string]int{}
	}
	type held struct {
		seen   []string         // recordString of every record so far
		newest map[string]int64 // source system -> newest accepted source time
	}
	keys := map[string]*held{}
	observationStatuses := []string{"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
	for i, r := range recs {
		src, ok := dsEntityOfTopic[r.Topic]
		if !ok {
			t.Fatalf("record %d on unexpected topic %q", i, r.Topic)
		}
		e := src.entity
		h := keys[string(r.Key)]
		if h == nil {
			h = &held{newest: map[string]int64{}}
			keys[string(r.Key)] = h
		}
		accept := func(m map[string]int, system string, at int64) {
			m[e]++
			truth.Versions[e][string(r.Key)]++
			h.newest[system] = max(h.newest[system], at)
		}
		rs := recordString(r)
		dup := slices.Contains(h.seen, rs)
		h.seen = append(h.seen, rs)
		if r.Value == nil {
			truth.Tombstones[e]++
			continue
		}
		var v map[string]any
		if json.Unmarshal(r.Value, &v) != nil {
			truth.Undecodable[e]++
			continue
		}
		if dup {
			truth.Duplicates[e]++
			continue
		}
		at, invalid := dsSourceTime(t, r, v), false
		switch e {
		case DataSyncPatient:
			g, ok := v["gender"]
			if !ok {
				g = v["sex"]
			}
			invalid = !slices.Contains([]any{"male", "female", "other", "unknown", "M", "F"}, g)
		case DataSyncEncounter:
			_, hasPatient := v["patientId"]
			invalid = v["operationType"] != "delete" && !hasPatient
		case DataSyncObservation:
			after, _ := v["after"].(map[string]any)
			status, _ := after["status"].(string)
			invalid = v["op"] != "d" && !slices.Contains(observationStatuses, status)
		case DataSyncPrescription:
			status, hasStatus := v["status"]
			invalid = hasStatus && status != "active"
		}
		system := src.system
		if s := headerValue(r, HeaderSourceSystem); s != "" {
			system = s
		}
		switch {
		case invalid:
			truth.Invalid[e]++
		case system != src.system:
			accept(truth.ConflictResolved, system, at)
		case at < h.newest[system]:
			truth.Stale[e]++
		default:
			accept(truth.Applied, system, at)
		}
	}
	return truth
}

// dsSourceTime is the source's own time of a change: lastUpdated (ms),
// updatedAt (RFC 3339) or a Debezium envelope's source.ts_ms.
func dsSourceTime(t *testing.T, r *kgo.Record, v map[string]any) int64 {
	t.Helper()
	if ms, ok := v["lastUpdated"].(float64); ok {
		return int64(ms)
	}
	if s, ok := v["updatedAt"].(string); ok {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%s %s: updatedAt: %v", r.Topic, r.Key, err)
		}
		return ts.UnixMilli()
	}
	if src, ok := v["source"].(map[string]any); ok {
		if ms, ok := src["ts_ms"].(float64); ok {
			return int64(ms)
		}
	}
	t.Fatalf("%s %s: no source time", r.Topic, r.Key)
	return 0
}

func TestDataSyncTruth(t *testing.T) {
	tests := []struct {
		name string
		seed int64
		n    int
	}{
		{name: "one record", seed: 5, n: 1},
		{name: "one patient cut short", seed: 5, n: 4},
		{name: "first group whole", seed: 5, n: 25},
		{name: "cut mid script", seed: 11, n: 101},
		{name: "five thousand", seed: 42, n: 5000},
		{name: "five thousand other seed", seed: 2026, n: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, truth := DataSyncRecords(tt.seed, tt.n)
			if len(recs) != tt.n || truth.Total() != tt.n {
				t.Fatalf("%d records, truth accounts for %d, want %d", len(recs), truth.Total(), tt.n)
			}
			perEntity := map[string]int{}
			for _, r := range recs {
				perEntity[dsEntityOfTopic[r.Topic].entity]++
			}
			for _, e := range dataSyncEntities {
				sum := truth.Applied[e] + truth.ConflictResolved[e] + truth.Duplicates[e] + truth.Stale[e] + truth.Invalid[e] + truth.Undecodable[e] + truth.Tombstones[e]
				if sum != perEntity[e] {
					t.Errorf("%s: truth accounts for %d records, stream has %d", e, sum, perEntity[e])
				}
				versions := 0
				for _, n := range truth.Versions[e] {
					versions += n
				}
				if want := truth.Applied[e] + truth.ConflictResolved[e]; versions != want {
					t.Errorf("%s: versions add up to %d, want applied+conflict-resolved %d", e, versions, want)
				}
				// The final state is there for every validated entity, at
				// its last version, fields exactly when not deleted.
				if len(truth.Final[e]) != len(truth.Versions[e]) {
					t.Errorf("%s: final state of %d entities, %d validated", e, len(truth.Final[e]), len(truth.Versions[e]))
				}
				for id, n := range truth.Versions[e] {
					f, ok := truth.Final[e][id]
					if !ok || f.Version != int64(n) || f.Deleted != (f.Fields == nil) {
						t.Errorf("%s %s: final %+v, want version %d and fields unless deleted", e, id, f, n)
					}
				}
			}
			derived := dsClassify(t, recs)
			if !dsTruthEqual(truth, derived) {
				t.Fatalf("truth does not match the records:\n got %+v\nwant %+v", truth, derived)
			}
			if tt.n < 5000 {
				return
			}
			// Every outcome a script of the entity type has occurs.
			has := map[string][]map[string]int{
				DataSyncPatient:      {truth.Applied, truth.ConflictResolved, truth.Duplicates, truth.Stale, truth.Invalid, truth.Undecodable},
				DataSyncEncounter:    {truth.Applied, truth.Duplicates, truth.Stale, truth.Invalid},
				DataSyncObservation:  {truth.Applied, truth.Duplicates, truth.Stale, truth.Invalid},
				DataSyncPrescription: {truth.Applied, truth.ConflictResolved, truth.Duplicates, truth.Stale, truth.Invalid},
			}
			for _, e := range dataSyncEntities {
				for k, m := range has[e] {
					if m[e] == 0 {
						t.Errorf("%s: outcome %d of its script never occurs", e, k)
					}
				}
				// About a quarter each.
				if share := float64(perEntity[e]) / float64(tt.n); share < 0.2 || share > 0.3 {
					t.Errorf("%s: %.2f of the records, want about 0.25", e, share)
				}
			}
		})
	}
}

// TestDataSyncStepOrder checks that each entity's records appear in the
// stream in script order, that scripts are interleaved, and the Kafka
// timestamps.
func TestDataSyncStepOrder(t *testing.T) {
	for _, n := range []int{30, 1000, 5000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			const seed = 9
			recs, _ := DataSyncRecords(seed, n)
			byKey := map[string][]*kgo.Record{}
			var order []string
			for _, r := range recs {
				k := string(r.Key)
				if byKey[k] == nil {
					order = append(order, k)
				}
				byKey[k] = append(byKey[k], r)
			}
			interleaved := false
			pos := map[string][]int{}
			for i, r := range recs {
				pos[string(r.Key)] = append(pos[string(r.Key)], i)
			}
			// Scripts 0..len(order)-1, each once; only the last may be
			// cut short.
			var indices []int
			for _, k := range order {
				indices = append(indices, dsScriptIndex(t, seed, k))
			}
			slices.Sort(indices)
			for idx, i := range indices {
				if i != idx {
					t.Fatalf("the stream's scripts are %v..., want 0..%d", indices[:idx+1], len(order)-1)
				}
			}
			for _, k := range order {
				i := dsScriptIndex(t, seed, k)
				script := dsScript(seed, i)
				got := byKey[k]
				if len(got) > len(script) {
					t.Fatalf("%s: %d records, its script has %d", k, len(got), len(script))
				}
				if len(got) < len(script) && i != len(order)-1 {
					t.Fatalf("%s: %d of %d steps, but only the last script may be cut short", k, len(got), len(script))
				}
				for s, r := range got {
					if d := dsRecordDiff(r, script[s].rec); d != "" {
						t.Fatalf("%s: record %d of the key is not step %d of its script (%s)", k, s, s+1, d)
					}
					base := dsBase + int64(i)*dsEntitySpacing
					want := base
					if r.Value == nil {
						want = base + 3000 + 60_000
					}
					if got := r.Timestamp.UnixMilli(); got != want {
						t.Fatalf("%s step %d: timestamp %d, want %d", k, s+1, got, want)
					}
				}
				p := pos[k]
				if p[len(p)-1]-p[0] != len(p)-1 {
					interleaved = true
				}
			}
			if !interleaved {
				t.Fatal("no entity's records are interleaved with another's")
			}
			// At most dsWindow scripts are started and unfinished at any
			// point of the stream.
			active := 0
			for i, r := range recs {
				p := pos[string(r.Key)]
				if p[0] == i {
					active++
				}
				if active > dsWindow {
					t.Fatalf("record %d: %d scripts under way, want at most %d", i, active, dsWindow)
				}
				if p[len(p)-1] == i {
					active--
				}
			}
		})
	}
}

// dsScriptIndex parses the script index out of an entity id
// "<prefix>-<seed>-<i>".
func dsScriptIndex(t *testing.T, seed int64, id string) int {
	t.Helper()
	parts := strings.Split(id, "-")
	if len(parts) != 3 || parts[1] != strconv.FormatInt(seed, 10) {
		t.Fatalf("entity id %q is not <prefix>-%d-<i>", id, seed)
	}
	i, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatalf("entity id %q: %v", id, err)
	}
	prefix := map[string]string{DataSyncPatient: "pat", DataSyncEncounter: "enc", DataSyncObservation: "obs", DataSyncPrescription: "rx"}
	if want := prefix[dataSyncEntities[i%4]]; parts[0] != want {
		t.Fatalf("entity id %q: script %d is a %s, want prefix %s", id, i, dataSyncEntities[i%4], want)
	}
	return i
}

func TestDataSyncJSON(t *testing.T) {
	recs, truth := DataSyncRecords(3, 2000)
	undecodable, tombstones := 0, 0
	for i, r := range recs {
		u := dsLabelledUndecodable(r)
		switch {
		case r.Value == nil:
			tombstones++
			if r.Topic != TopicDataSyncObservation {
				t.Errorf("record %d: tombstone on %s", i, r.Topic)
			}
		case u:
			undecodable++
			if json.Valid(r.Value) {
				t.Errorf("record %d: undecodable value is valid JSON", i)
			}
		default:
			if !json.Valid(r.Value) {
				t.Errorf("record %d (%s): value is not valid JSON", i, r.Topic)
			}
		}
	}
	want := 0
	for _, n := range truth.Undecodable {
		want += n
	}
	if undecodable != want || want == 0 {
		t.Errorf("%d undecodable records, truth says %d (want > 0)", undecodable, want)
	}
	if tombstones == 0 {
		t.Error("no tombstones")
	}
}

// dsLabelledUndecodable reports whether r is a step the generator labelled
// undecodable, by regenerating its script.
func dsLabelledUndecodable(r *kgo.Record) bool {
	if r.Value == nil {
		return false
	}
	parts := strings.Split(string(r.Key), "-")
	i, _ := strconv.Atoi(parts[len(parts)-1])
	seed, _ := strconv.ParseInt(strings.Join(parts[1:len(parts)-1], "-"), 10, 64)
	for _, st := range dsScript(seed, i) {
		if st.outcome == dsUndecodable && bytes.Equal(st.rec.Value, r.Value) {
			return true
		}
	}
	return false
}

// TestDataSyncScripts checks the values of each script against what its
// outcomes rest on: which fields change from step to step, and which stay.
func TestDataSyncScripts(t *testing.T) {
	const seed = 17
	decode := func(t *testing.T, r *kgo.Record) map[string]any {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("%s %s: %v", r.Topic, r.Key, err)
		}
		return v
	}
	variants := map[bool]int{}
	for i := range 80 {
		steps := dsScript(seed, i)
		e := dataSyncEntities[i%4]
		if len(steps) != dsScriptLen(e) {
			t.Fatalf("script %d: %d steps, want %d", i, len(steps), dsScriptLen(e))
		}
		base := dsBase + int64(i)*dsEntitySpacing
		for s, st := range steps {
			if st.entity != e || string(st.rec.Key) != string(steps[0].rec.Key) {
				t.Fatalf("script %d step %d: entity %s key %s", i, s+1, st.entity, st.rec.Key)
			}
		}
		if d := dsRecordDiff(steps[1].rec, steps[2].rec); d != "" {
			t.Fatalf("script %d: step 3 is not step 2 again (%s)", i, d)
		}
		switch e {
		case DataSyncPatient:
			v := make([]map[string]any, 6)
			for s := range 6 {
				v[s] = decode(t, steps[s].rec)
			}
			_, b := v[0]["patientId"]
			variants[b]++
			first, last, dob, gender, updated, addr := "firstName", "lastName", "dateOfBirth", "gender", "lastUpdated", "address"
			if b {
				for s := range v {
					name := v[s]["name"].(map[string]any)
					v[s]["given"], v[s]["family"] = name["given"], name["family"]
					delete(v[s], "name")
					ts, err := time.Parse(time.RFC3339Nano, v[s]["updatedAt"].(string))
					if err != nil {
						t.Fatal(err)
					}
					v[s]["updatedAt"] = float64(ts.UnixMilli())
				}
				first, last, dob, gender, updated, addr = "given", "family", "dob", "sex", "updatedAt", ""
			}
			wantTimes := []int64{0, 1000, 1000, 500, 1000, 2000}
			for s, at := range wantTimes {
				if got := int64(v[s][updated].(float64)); got != base+at {
					t.Errorf("patient %d step %d: time %d, want T+%d", i, s+1, got-base, at)
				}
			}
			same := func(s, ref int, fields ...string) {
				t.Helper()
				for _, f := range fields {
					if f != "" && !dsJSONEqual(v[s][f], v[ref][f]) {
						t.Errorf("patient %d: step %d %s differs from step %d", i, s+1, f, ref+1)
					}
				}
			}
			differ := func(s, ref int, f string) {
				t.Helper()
				if f != "" && dsJSONEqual(v[s][f], v[ref][f]) {
					t.Errorf("patient %d: step %d %s equals step %d", i, s+1, f, ref+1)
				}
			}
			same(1, 0, first, dob, gender, addr)
			differ(1, 0, last)
			same(3, 1, first, dob, gender, addr)
			differ(3, 0, last)
			differ(3, 1, last)
			same(4, 1, last, dob, gender)
			differ(4, 1, first)
			differ(4, 1, addr)
			same(5, 1, first, last, dob, addr)
			if headerValue(steps[4].rec, HeaderSourceSystem) != "registration" {
				t.Errorf("patient %d step 5: not from registration", i)
			}
			if v[5][gender] != "z" {
				t.Errorf("patient %d step 6: gender %v, want z", i, v[5][gender])
			}
			if json.Valid(steps[6].rec.Value) {
				t.Errorf("patient %d step 7: valid JSON", i)
			}
		case DataSyncEncounter:
			v := make([]map[string]any, 6)
			for s := range 6 {
				v[s] = decode(t, steps[s].rec)
			}
			for s, want := range []string{"in-progress", "finished", "finished", "arrived", "finished"} {
				if v[s]["status"] != want {
					t.Errorf("encounter %d step %d: status %v, want %s", i, s+1, v[s]["status"], want)
				}
			}
			if _, ok := v[4]["patientId"]; ok {
				t.Errorf("encounter %d step 5 has a patientId", i)
			}
			if v[5]["operationType"] != "delete" || int64(v[5]["lastUpdated"].(float64)) != base+3000 {
				t.Errorf("encounter %d step 6: %v, want a delete at T+3000", i, v[5])
			}
		case DataSyncObservation:
			v := make([]map[string]any, 5)
			for s := range 5 {
				v[s] = decode(t, steps[s].rec)
			}
			after := func(s int) map[string]any { return v[s]["after"].(map[string]any) }
			if v[0]["op"] != "c" || v[0]["before"] != nil {
				t.Errorf("observation %d step 1: op %v before %v", i, v[0]["op"], v[0]["before"])
			}
			vals := map[float64]bool{after(0)["value"].(float64): true, after(1)["value"].(float64): true, after(3)["value"].(float64): true}
			if len(vals) != 3 {
				t.Errorf("observation %d: values of steps 1, 2, 4 not all different", i)
			}
			if after(4)["status"] != "bogus" {
				t.Errorf("observation %d step 5: status %v", i, after(4)["status"])
			}
			for s, at := range []int64{0, 1000, 1000, 500, 2000} {
				src := v[s]["source"].(map[string]any)
				if int64(src["ts_ms"].(float64)) != base+at || int64(v[s]["ts_ms"].(float64)) != base+at+5 {
					t.Errorf("observation %d step %d: times %v %v, want T+%d", i, s+1, src["ts_ms"], v[s]["ts_ms"], at)
				}
			}
			if d := decode(t, steps[5].rec); d["op"] != "d" || d["after"] != nil || int64(d["source"].(map[string]any)["ts_ms"].(float64)) != base+3000 {
				t.Errorf("observation %d step 6: %v, want a Debezium delete at T+3000", i, d)
			}
			if steps[6].rec.Value != nil || steps[6].outcome != dsNone {
				t.Errorf("observation %d step 7 is not a tombstone without an outcome", i)
			}
		case DataSyncPrescription:
			v := make([]map[string]any, 6)
			for s := range 6 {
				v[s] = decode(t, steps[s].rec)
			}
			for s, want := range []string{"500 mg", "250 mg", "250 mg", "750 mg", "100 mg"} {
				if v[s]["dose"] != want {
					t.Errorf("prescription %d step %d: dose %v, want %s", i, s+1, v[s]["dose"], want)
				}
			}
			if _, ok := v[1]["frequency"]; ok {
				t.Errorf("prescription %d step 2 has a frequency", i)
			}
			if v[4]["frequency"] != "TID" || headerValue(steps[4].rec, HeaderSourceSystem) != "ehr" {
				t.Errorf("prescription %d step 5: frequency %v source %q", i, v[4]["frequency"], headerValue(steps[4].rec, HeaderSourceSystem))
			}
			if v[5]["status"] != "on-order" {
				t.Errorf("prescription %d step 6: status %v, want one outside the value set", i, v[5]["status"])
			}
			for s, at := range []int64{0, 2000, 2000, 1000, 1500, 2500} {
				if int64(v[s]["lastUpdated"].(float64)) != base+at {
					t.Errorf("prescription %d step %d: lastUpdated T+%v, want T+%d", i, s+1, int64(v[s]["lastUpdated"].(float64))-base, at)
				}
			}
		}
	}
	if variants[true] == 0 || variants[false] == 0 {
		t.Errorf("patient variants %v: want both", variants)
	}
}

func dsJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// ---------------------------------------------------------------------------
// Target systems

// dsTestRead reads the tests' validated records: key the entity id, value
// "<entity>/<version>"; anything else is skipped.
func dsTestRead(r *kgo.Record) (string, string, int64, bool) {
	entity, v, ok := strings.Cut(string(r.Value), "/")
	if !ok {
		return "", "", 0, false
	}
	version, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return entity, string(r.Key), version, true
}

func TestSyncTargetsConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SyncTargetsConfig
		wantErr bool
	}{
		{name: "read only", cfg: SyncTargetsConfig{Read: dsTestRead}},
		{name: "full", cfg: SyncTargetsConfig{Read: dsTestRead, Targets: []string{"a"}, Delay: time.Second, Fail: 1, Drop: 1, Group: "g"}},
		{name: "no read", cfg: SyncTargetsConfig{}, wantErr: true},
		{name: "fail above one", cfg: SyncTargetsConfig{Read: dsTestRead, Fail: 1.5}, wantErr: true},
		{name: "NaN drop", cfg: SyncTargetsConfig{Read: dsTestRead, Drop: math.NaN()}, wantErr: true},
		{name: "negative delay", cfg: SyncTargetsConfig{Read: dsTestRead, Delay: -time.Millisecond}, wantErr: true},
		{name: "empty target", cfg: SyncTargetsConfig{Read: dsTestRead, Targets: []string{"ehr", ""}}, wantErr: true},
		{name: "target twice", cfg: SyncTargetsConfig{Read: dsTestRead, Targets: []string{"ehr", "ehr"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	cfg := SyncTargetsConfig{Read: dsTestRead}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Targets, []string{"ehr", "pharmacy", "portal"}) || cfg.Group != "sim-sync-targets" || cfg.Now == nil {
		t.Errorf("defaults: targets %v group %q", cfg.Targets, cfg.Group)
	}
	if _, err := StartSyncTargets(nil, SyncTargetsConfig{Read: dsTestRead}); err == nil {
		t.Error("StartSyncTargets(nil cluster) succeeded")
	}
}

func TestSyncTargetsDecisions(t *testing.T) {
	tests := []struct {
		name       string
		fail, drop float64
	}{
		{name: "none", fail: 0, drop: 0},
		{name: "all dropped", fail: 0.5, drop: 1},
		{name: "all failed first", fail: 1, drop: 0},
		{name: "mixed", fail: 0.5, drop: 0.2},
	}
	const n = 20_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := SyncTargetsConfig{Seed: 3, Fail: tt.fail, Drop: tt.drop, Delay: 100 * time.Millisecond}
			drops, fails := 0, 0
			for i := range n {
				id := "id-" + strconv.Itoa(i/3)
				target, version := DefaultSyncTargets()[i%3], int64(i%7)
				d, f := cfg.Drops(target, id, version), cfg.Fails(target, id, version)
				if d != cfg.Drops(target, id, version) || f != cfg.Fails(target, id, version) {
					t.Fatal("decisions are not deterministic")
				}
				if d && f {
					t.Fatalf("%s %s v%d both dropped and failed", target, id, version)
				}
				if d {
					drops++
				}
				if f {
					fails++
				}
				for attempt := 1; attempt <= 2; attempt++ {
					if dl := cfg.delay(target, id, version, attempt); dl < cfg.Delay/2 || dl > 3*cfg.Delay/2 {
						t.Fatalf("delay %v outside [%v, %v]", dl, cfg.Delay/2, 3*cfg.Delay/2)
					}
				}
			}
			if got := float64(drops) / n; math.Abs(got-tt.drop) > 0.02 {
				t.Errorf("drop share %.3f, want %.2f", got, tt.drop)
			}
			if kept := n - drops; kept > 0 {
				if got := float64(fails) / float64(kept); math.Abs(got-tt.fail) > 0.02 {
					t.Errorf("fail share of the acknowledged %.3f, want %.2f", got, tt.fail)
				}
			}
			other := cfg
			other.Seed++
			differ := false
			for i := range 200 {
				id := "id-" + strconv.Itoa(i)
				differ = differ || other.Drops("ehr", id, 1) != cfg.Drops("ehr", id, 1) || other.Fails("ehr", id, 1) != cfg.Fails("ehr", id, 1)
			}
			if tt.name == "mixed" && !differ {
				t.Error("another seed decides the same")
			}
		})
	}
}

// syncAckOf is one ack read back.
type syncAckOf struct {
	rec *kgo.Record
	ack syncAck
}

type syncKey struct {
	target, id string
	version    int64
}

func TestSyncTargetsAcknowledge(t *testing.T) {
	c := newCluster(t)
	targets := DefaultSyncTargets()
	var targetTopics []string
	for _, tg := range targets {
		targetTopics = append(targetTopics, SyncTargetTopic(tg))
	}
	createTopics(t, c, 3, nil, DataSyncValidatedTopics()...)
	createTopics(t, c, 2, nil, targetTopics...)

	// Six entities per type, two versions each; every other version has a
	// correlation-id. Plus records Read skips.
	type input struct {
		entity, id string
		version    int64
		corr       string
	}
	var (
		in   []input
		recs []*kgo.Record
	)
	for ei, e := range dataSyncEntities {
		for j := range 6 {
			id := fmt.Sprintf("%s-%d", e, j)
			for v := int64(1); v <= 2; v++ {
				x := input{entity: e, id: id, version: v}
				r := &kgo.Record{Topic: DataSyncValidatedTopics()[ei], Key: []byte(id), Value: []byte(e + "/" + strconv.FormatInt(v, 10))}
				if (j+int(v))%2 == 0 {
					x.corr = "corr-" + id + "-" + strconv.FormatInt(v, 10)
					r.Headers = []kgo.RecordHeader{{Key: "other", Value: []byte("y")}, {Key: HeaderCorrelationID, Value: []byte(x.corr)}}
				}
				in = append(in, x)
				recs = append(recs, r)
			}
		}
		recs = append(recs, &kgo.Record{Topic: DataSyncValidatedTopics()[ei], Key: []byte("skip"), Value: []byte("not a validated record")})
	}
	ctx := newCtx(t)
	if err := Produce(ctx, newClient(t, c), recs); err != nil {
		t.Fatalf("produce: %v", err)
	}

	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	cfg := SyncTargetsConfig{
		Seed: 7, Delay: 10 * time.Millisecond, Fail: 0.5, Drop: 0.2,
		Read: dsTestRead, Group: "sim-sync-targets-test",
		Now: func() time.Time { return now },
	}
	tg, err := StartSyncTargets(c, cfg)
	if err != nil {
		t.Fatalf("StartSyncTargets: %v", err)
	}
	t.Cleanup(tg.Close)

	// What the decisions predict, per (target, id, version).
	want := map[syncKey][]string{}
	corrOf := map[syncKey]string{}
	var total, wantDrops, wantFails, wantPlain int
	for _, x := range in {
		for _, target := range targets {
			k := syncKey{target, x.id, x.version}
			corrOf[k] = x.corr
			switch {
			case cfg.Drops(target, x.id, x.version):
				wantDrops++
				want[k] = nil
			case cfg.Fails(target, x.id, x.version):
				wantFails++
				want[k] = []string{SyncStatusFailed, SyncStatusSuccess}
			default:
				wantPlain++
				want[k] = []string{SyncStatusSuccess}
			}
			total += len(want[k])
		}
	}
	if wantDrops == 0 || wantFails == 0 || wantPlain == 0 {
		t.Fatalf("the inputs do not exercise every case: %d dropped, %d failed first, %d plain", wantDrops, wantFails, wantPlain)
	}

	acks := readSyncAcks(t, ctx, c, total, targetTopics)
	got := map[syncKey][]syncAckOf{}
	entityOf := map[string]string{}
	for _, x := range in {
		entityOf[x.id] = x.entity
	}
	for _, a := range acks {
		k := syncKey{a.ack.SyncDetails.Target, a.ack.EntityID, a.ack.Version}
		if SyncTargetTopic(k.target) != a.rec.Topic {
			t.Errorf("ack of target %q on %s", k.target, a.rec.Topic)
		}
		if string(a.rec.Key) != a.ack.EntityID || a.ack.EntityType != entityOf[a.ack.EntityID] {
			t.Errorf("%s: key %q, entity %s %s", a.rec.Topic, a.rec.Key, a.ack.EntityType, a.ack.EntityID)
		}
		if a.ack.SyncTimestamp != now.UnixMilli() {
			t.Errorf("%v: syncTimestamp %d, want the targets' clock %d", k, a.ack.SyncTimestamp, now.UnixMilli())
		}
		if got, want := headerValue(a.rec, HeaderCorrelationID), corrOf[k]; got != want {
			t.Errorf("%v: correlation-id %q, want %q", k, got, want)
		}
		wantHeaders := 0 // only the correlation-id, when the record had one
		if corrOf[k] != "" {
			wantHeaders = 1
		}
		if len(a.rec.Headers) != wantHeaders {
			t.Errorf("%v: %d headers, want %d", k, len(a.rec.Headers), wantHeaders)
		}
		got[k] = append(got[k], a)
	}
	for _, k := range slices.SortedFunc(maps.Keys(want), func(a, b syncKey) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	}) {
		var statuses []string
		for i, a := range got[k] {
			statuses = append(statuses, a.ack.SyncStatus)
			if a.ack.SyncDetails.Attempt != i+1 {
				t.Errorf("%v: ack %d has attempt %d", k, i+1, a.ack.SyncDetails.Attempt)
			}
		}
		if !slices.Equal(statuses, want[k]) {
			t.Errorf("%v: acks %v, want %v (drops %v, fails %v)", k, statuses, want[k], cfg.Drops(k.target, k.id, k.version), cfg.Fails(k.target, k.id, k.version))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("ack for %v, which was never validated", k)
		}
	}

	wantStats := SyncTargetsStats{Seen: int64(len(in)), Acked: int64(wantFails + wantPlain), Failed: int64(wantFails), Dropped: int64(wantDrops)}
	waitFor(t, ctx, "stats", func() bool { return tg.Stats() == wantStats }, func() string { return fmt.Sprintf("%+v, want %+v", tg.Stats(), wantStats) })

	// Offsets are committed for everything scheduled, skipped records
	// included.
	adm := kadm.NewClient(newClient(t, c))
	ends, err := adm.ListEndOffsets(ctx, DataSyncValidatedTopics()...)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	waitFor(t, ctx, "committed offsets", func() bool {
		offs, err := adm.FetchOffsets(ctx, cfg.Group)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			c, ok := offs.Lookup(o.Topic, o.Partition)
			done = done && ok && c.At == o.Offset
		})
		return done
	}, func() string { return "not every validated record committed" })
}

// readSyncAcks reads n acks from topics, then polls a little longer to see
// that no more arrive.
func readSyncAcks(t *testing.T, ctx context.Context, c *Cluster, n int, topics []string) []syncAckOf {
	t.Helper()
	cl := newClient(t, c,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	var out []syncAckOf
	add := func(fs kgo.Fetches) {
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		for _, r := range fs.Records() {
			var a syncAck
			mustUnmarshal(t, r, &a)
			out = append(out, syncAckOf{rec: r, ack: a})
		}
	}
	for len(out) < n {
		add(cl.PollFetches(ctx))
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d acks before: %v", len(out), n, err)
		}
	}
	// Grace: the dropped must stay dropped, and nothing else may come. A
	// few times the longest delay a failed-then-successful ack takes.
	grace, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for grace.Err() == nil {
		fs := cl.PollFetches(grace)
		if grace.Err() != nil {
			break
		}
		add(fs)
	}
	if len(out) != n {
		t.Fatalf("read %d acks, want exactly %d", len(out), n)
	}
	return out
}

// waitFor polls cond until it holds, failing the test with what() when ctx
// ends first.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool, state func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s: %v", what, state(), ctx.Err())
		case <-tick.C:
		}
	}
}

// TestSyncTargetsClosePending closes targets holding acks for an hour:
// Close returns at once and nothing is written.
func TestSyncTargetsClosePending(t *testing.T) {
	c := newCluster(t)
	createTopics(t, c, 1, nil, DataSyncValidatedTopics()...)
	createTopics(t, c, 1, nil, SyncTargetTopic("ehr"))
	ctx := newCtx(t)
	rec := &kgo.Record{Topic: DataSyncValidatedTopics()[0], Key: []byte("p-1"), Value: []byte("patient/1")}
	if err := Produce(ctx, newClient(t, c), []*kgo.Record{rec}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	tg, err := StartSyncTargets(c, SyncTargetsConfig{Read: dsTestRead, Targets: []string{"ehr"}, Delay: time.Hour})
	if err != nil {
		t.Fatalf("StartSyncTargets: %v", err)
	}
	t.Cleanup(tg.Close)
	waitFor(t, ctx, "seen", func() bool { return tg.Stats().Seen == 1 }, func() string { return fmt.Sprintf("%+v", tg.Stats()) })

	closesWithin(t, "Close with an ack pending", tg.Close, 10*time.Second)
	tg.Close()
	if s := tg.Stats(); s.Acked != 0 || s.Failed != 0 {
		t.Errorf("Stats() = %+v, want nothing acknowledged", s)
	}
	if n := endOffsetsSum(t, c, SyncTargetTopic("ehr")); n != 0 {
		t.Errorf("%d acks written, want none", n)
	}
}
