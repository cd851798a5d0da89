package datasync

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Debezium's change events as its connectors and its ExtractNewRecordState
// transform write them (testdata/debezium/README.md cites the documentation
// each rule follows):
//
//   - the source time of a change is when the database committed it:
//     source.ts_ns, ts_us or ts_ms (each read in its own unit). A snapshot
//     row (op "r", a source.snapshot other than false, or a zero
//     source.ts_ms) takes the envelope's time (ts_ns, ts_us or ts_ms), when
//     Debezium read it. No delete ever takes the Kafka record's time: one
//     without a time of its own cannot be ordered and is an error.
//   - the source version of a change is its position in the database's log
//     where the event has one (PostgreSQL's lsn; MySQL's binlog file number
//     and position), else the row's version column, else 1. A delete and a
//     re-insert committed in the same millisecond are ordered by it.
//   - a tombstone (a record without a value) is no change at all: Debezium
//     writes one after each delete event for log compaction, with nothing in
//     it that orders it.

// envelopeTime is an envelope's (or a flattened row's) time of the change,
// ms. prefix is the path of the fields ("source." or "" in an envelope,
// "__source_" or "__" in a flattened row). ok is false when there is none;
// zero reports a zero ts_ms (a snapshot marker in MySQL's events).
func (f *rowReader) envelopeTime(prefix string) (ms int64, ok, zero bool) {
	ms, ok, zero = f.epochField(prefix+"ts_ms", 1)
	us, okUS, zeroUS := f.epochField(prefix+"ts_us", 1_000)
	ns, okNS, zeroNS := f.epochField(prefix+"ts_ns", 1_000_000)
	if f.err != nil {
		return 0, false, false
	}
	// The finer fields say the same instant: one that disagrees with ts_ms
	// means a field in the wrong unit, which must not order anything.
	for _, o := range []struct {
		v      int64
		ok     bool
		z      bool
		suffix string
	}{{us, okUS, zeroUS, "ts_us"}, {ns, okNS, zeroNS, "ts_ns"}} {
		if !o.ok && !o.z {
			continue
		}
		if (ok || zero) && (o.v != ms || o.z != zero) {
			f.fail("fields %q and %q disagree on the time of the change", prefix+"ts_ms", prefix+o.suffix)
			return 0, false, false
		}
		ms, ok, zero = o.v, o.ok, o.z
	}
	return ms, ok, zero
}

// Plausible epoch milliseconds of a change: 1973-03-03 to 5138-11-16. Below
// are seconds (or days); at or above, microseconds or nanoseconds. Nothing
// in between reads as another unit for any time after 1973.
const (
	minEpochMillis = 100_000_000_000
	maxEpochMillis = 100_000_000_000_000
)

// epochField reads an integer time at path in units of 1/per ms (per 1: ms,
// 1000: µs, 1e6: ns), a number or a string of one (the transform writes
// strings), and returns it in ms. zero reports a 0 (ok false). A value
// outside the plausible range of its unit is an error naming the unit it
// looks like, never read as another unit.
func (f *rowReader) epochField(path string, per int64) (ms int64, ok, zero bool) {
	v := f.get(path)
	if v == nil || f.err != nil {
		return 0, false, false
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		f.fail("field %q is %s, want an integer time", path, jsonKind(v))
		return 0, false, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.fail("field %q is not an integer time", path)
		return 0, false, false
	}
	if n == 0 {
		return 0, false, true
	}
	if n < minEpochMillis*per || n >= maxEpochMillis*per {
		f.fail("field %q is out of the range of %s since the epoch (%s)", path, unitName(per), magnitudeHint(n, per))
		return 0, false, false
	}
	return floorDiv(n, per), true, false
}

func unitName(per int64) string {
	switch per {
	case 1_000:
		return "microseconds"
	case 1_000_000:
		return "nanoseconds"
	}
	return "milliseconds"
}

// magnitudeHint says which unit a time out of range looks like, for the
// error: the number itself is not quoted.
func magnitudeHint(n, per int64) string {
	ms := n / per
	switch {
	case ms <= 0:
		return "not after the epoch"
	case ms < minEpochMillis:
		return "too small: seconds or days?"
	}
	return "too large: a finer unit?"
}

func floorDiv(n, d int64) int64 {
	q := n / d
	if n%d != 0 && (n < 0) != (d < 0) {
		q--
	}
	return q
}

// snapshotFlag reads a source.snapshot-like field: true for "true", "first",
// "last", "first_in_data_collection", "last_in_data_collection",
// "incremental" and a boolean true; false for absent, null, "false" and
// false.
func (f *rowReader) snapshotFlag(path string) bool {
	switch v := f.get(path).(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		s := strings.ToLower(strings.TrimSpace(v))
		return s != "" && s != "false"
	default:
		f.fail("field %q is %s, want a string or a boolean", path, jsonKind(v))
		return false
	}
}

// logPosition is the change's position in the source database's log, 0
// when the event has none: PostgreSQL's lsn, or MySQL's binlog file number
// (the file name's numeric suffix) and position within it, the file number
// in the high 32 bits. lsn, file and pos are the paths of the fields.
func (f *rowReader) logPosition(lsn, file, pos string) int64 {
	if f.get(lsn) != nil {
		return f.nonNegative(lsn)
	}
	fv, pv := f.get(file), f.get(pos)
	if fv == nil || pv == nil {
		return 0
	}
	name, ok := fv.(string)
	i := strings.LastIndexByte(name, '.')
	seq, err := strconv.ParseInt(name[i+1:], 10, 64)
	if !ok || err != nil || seq < 0 || seq >= 1<<31 {
		f.fail("field %q is not a binlog file name with a numeric suffix", file)
		return 0
	}
	p := f.nonNegative(pos)
	if p >= 1<<32 {
		f.fail("field %q is beyond a binlog file's size", pos)
		return 0
	}
	return seq<<32 | p
}

// nonNegative is the non-negative integer at path: a number or a string of
// one.
func (f *rowReader) nonNegative(path string) int64 {
	var s string
	switch v := f.get(path).(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		f.fail("field %q is %s, want an integer", path, jsonKind(v))
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		f.fail("field %q is not a non-negative integer", path)
		return 0
	}
	return n
}

// debeziumOp is the operation of a Debezium op code.
func debeziumOp(code string) (Operation, bool) {
	switch code {
	case "c":
		return OpCreate, true
	case "u":
		return OpUpdate, true
	case "r":
		return OpSnapshot, true
	case "d":
		return OpDelete, true
	}
	return "", false
}

// eventMeta is what an envelope or a flattened row says about its change
// besides the row.
type eventMeta struct {
	op       Operation
	time     int64 // ms; valid when haveTime
	haveTime bool
	position int64 // 0: none
}

// debezium maps a Debezium change envelope. schema is the JSON converter's
// schema of the value (nil without one).
func (m *mapping) debezium(env map[string]any, schema any, corr string) (mapped, error) {
	name, _ := env["op"].(string)
	op, ok := debeziumOp(name)
	if !ok {
		return mapped{}, unmappablef("%s: Debezium op is not one of c, u, r, d", m.entity)
	}
	image := "after"
	if op == OpDelete {
		image = "before"
	}
	r, isObj := env[image].(map[string]any)
	switch {
	case env[image] != nil && !isObj:
		return mapped{}, unmappablef("%s: Debezium %s is %s, not an object", m.entity, image, jsonKind(env[image]))
	case r == nil && op != OpDelete:
		return mapped{}, unmappablef("%s: Debezium op %q has no after row", m.entity, name)
	}
	e := &rowReader{entity: m.entity, r: env}
	meta := eventMeta{op: op}
	src, haveSrc, zero := e.envelopeTime("source.")
	snapshot := op == OpSnapshot || e.snapshotFlag("source.snapshot") || zero
	at, haveEnv, _ := e.envelopeTime("")
	meta.position = e.logPosition("source.lsn", "source.file", "source.pos")
	if e.err != nil {
		return mapped{}, e.err
	}
	switch {
	case snapshot && haveEnv:
		meta.time, meta.haveTime = at, true
	case haveSrc:
		meta.time, meta.haveTime = src, true
	case haveEnv:
		meta.time, meta.haveTime = at, true
	}
	if r == nil {
		// A delete without its before image: the key names the row.
		if !meta.haveTime {
			return mapped{}, unmappablef("%s: Debezium delete without a time (source.ts_ms or ts_ms): it cannot be ordered", m.entity)
		}
		id, err := m.keyID()
		if err != nil {
			return mapped{}, err
		}
		return mapped{Change: m.change(id, OpDelete, meta.time, max(meta.position, 1)), CorrelationID: corr}, nil
	}
	if err := convertTemporal(m.entity, r, rowSchema(schema, image)); err != nil {
		return mapped{}, err
	}
	c, err := m.mapRow(&rowReader{entity: m.entity, r: r}, meta, schema != nil)
	if err != nil {
		return mapped{}, err
	}
	return mapped{Change: c, CorrelationID: corr}, nil
}

// The fields ExtractNewRecordState adds to a flattened row, with its
// default prefix "__": __deleted by delete.handling.mode=rewrite (or
// delete.tombstone.handling.mode=rewrite), the others by add.fields (a
// field of the source block is prefixed "source_").
const smtPrefix = "__"

// isFlattened says whether a row carries the transform's fields.
func isFlattened(r map[string]any) bool {
	for _, k := range []string{"__deleted", "__op", "__source_ts_ms", "__source_ts_us", "__source_ts_ns", "__ts_ms", "__ts_us", "__ts_ns", "__lsn", "__source_lsn"} {
		if hasKey(r, k) {
			return true
		}
	}
	return false
}

// flattened reads the transform's fields of a flattened row and strips
// them; the row is then mapped as a row.
func (m *mapping) flattened(r map[string]any, schema any, corr string) (mapped, error) {
	f := &rowReader{entity: m.entity, r: r}
	meta := eventMeta{op: OpUpsert}
	if v := f.get("__op"); v != nil {
		code, _ := v.(string)
		op, ok := debeziumOp(code)
		if !ok {
			return mapped{}, unmappablef("%s: field %q is not one of c, u, r, d", m.entity, "__op")
		}
		meta.op = op
	}
	switch v := f.get("__deleted").(type) {
	case nil:
	case bool:
		if v {
			meta.op = OpDelete
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			meta.op = OpDelete
		case "false", "":
		default:
			return mapped{}, unmappablef("%s: field %q is not true or false", m.entity, "__deleted")
		}
	default:
		return mapped{}, unmappablef("%s: field %q is %s, want true or false", m.entity, "__deleted", jsonKind(v))
	}
	src, haveSrc, zero := f.envelopeTime("__source_")
	snapshot := meta.op == OpSnapshot || zero || f.snapshotFlag("__source_snapshot") || f.snapshotFlag("__snapshot")
	env, haveEnv, _ := f.envelopeTime("__")
	pos := f.logPosition("__source_lsn", "__source_file", "__source_pos")
	if pos == 0 {
		pos = f.logPosition("__lsn", "__file", "__pos")
	}
	if f.err != nil {
		return mapped{}, f.err
	}
	meta.position = pos
	switch {
	case snapshot && haveEnv:
		meta.time, meta.haveTime = env, true
	case haveSrc:
		meta.time, meta.haveTime = src, true
	case haveEnv:
		meta.time, meta.haveTime = env, true
	}
	row := make(map[string]any, len(r))
	for k, v := range r {
		if !strings.HasPrefix(k, smtPrefix) {
			row[k] = v
		}
	}
	if err := convertTemporal(m.entity, row, schema); err != nil {
		return mapped{}, err
	}
	c, err := m.mapRow(&rowReader{entity: m.entity, r: row}, meta, schema != nil)
	if err != nil {
		return mapped{}, err
	}
	return mapped{Change: c, CorrelationID: corr}, nil
}
