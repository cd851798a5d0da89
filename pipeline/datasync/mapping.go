package datasync

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sourceRecord is one record consumed from a source topic.
type sourceRecord struct {
	// Topic is source.<system>.<entity>, e.g. source.ehr.patient,
	// source.pharmacy.prescription.
	Topic string
	Key   []byte
	// Value is the record's value; nil or empty is a tombstone.
	Value []byte
	// System is the record's source-system header, "" when absent.
	System string
	// Timestamp is the Kafka record timestamp, ms.
	Timestamp int64
}

// mapped is a source record mapped to a canonical change.
type mapped struct {
	Change Change
	// CorrelationID is metadata.correlationId of an envelope input, ""
	// otherwise.
	CorrelationID string
	// Tombstone says the record has no value: no change at all (Change is
	// zero). Debezium writes one after each delete event, for log
	// compaction; the delete event itself carries the delete and its time.
	Tombstone bool
}

var (
	// errUnreadable: the value is not JSON, or not a JSON object of a known
	// shape. A decode error: the record is poison as it stands.
	errUnreadable = errors.New("source value is not a JSON object of a known shape")
	// errUnmappable: the value decodes but cannot be mapped to a canonical
	// change: an unknown topic, no entity id, an unknown operation, a field
	// of the wrong type or a timestamp or version that does not parse.
	errUnmappable = errors.New("source record cannot be mapped to a canonical change")
)

// unreadablef and unmappablef wrap the sentinels. Their arguments are field
// names, paths and shapes, never values from the record.
func unreadablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnreadable, fmt.Sprintf(format, args...))
}

func unmappablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnmappable, fmt.Sprintf(format, args...))
}

// EntityOfSourceTopic is the system and canonical entity of one of the
// built-in source topics ([DefaultSources]): "source.ehr.patient" is "ehr",
// [Patient]. ok is false for any other topic.
func EntityOfSourceTopic(topic string) (system string, e Entity, ok bool) {
	return DefaultSources().lookup(topic)
}

// mapRecord maps one source record to its canonical change, the record's topic
// telling its entity and layout. It is a pure function of s: no clock, no
// randomness, no map order. A value or key in the schema registry's wire
// format is unreadable here: the CDC stage reads those with the registry
// [WithSourceRegistry] gives it.
func (src *Sources) mapRecord(s sourceRecord) (mapped, error) { return src.mapSource(s, nil) }

// mapSource maps s, decoding a value or key in the schema registry's wire
// format with av (none: such a record is unreadable).
//
// The value is one of:
//   - empty: a tombstone, no change ([mapped.Tombstone]);
//   - a Debezium change envelope (an object with "op" and "after" or
//     "before"), bare or wrapped by the JSON converter as
//     {"schema":...,"payload":<envelope>}, whose schema converts the
//     temporal columns (see debezium.go and temporal.go);
//   - a row flattened by Debezium's ExtractNewRecordState transform, with
//     its __deleted, __op, __source_ts_ms, ... fields, bare or wrapped;
//   - the message envelope {"metadata":{...},"payload":{...}}, whose
//     metadata.correlationId becomes [mapped.CorrelationID];
//   - a bare row in the seed's field variants, with an optional
//     operationType.
//
// The change's source is s.System, else the topic's configured system. Its
// source time is the source's own (a delete's never the record's
// timestamp). Its id is the row's id field (the layout's id columns); a
// delete without one takes its id from the key: the key as text, or, where
// the key is a JSON string or a JSON object (Debezium's key struct), the
// string or the object's id field.
//
// Errors wrap exactly one of [errUnreadable] and [errUnmappable], or, for a
// wire-format record whose schema the registry could not give, are
// [errSchemaUnavailable]; they name fields but never quote the record's
// content.
func (src *Sources) mapSource(s sourceRecord, av *avroSource) (mapped, error) {
	topic, ok := src.byTopic[s.Topic]
	if !ok {
		return mapped{}, unmappablef("topic %q is not a configured source topic", s.Topic)
	}
	m := &mapping{entity: topic.entity, system: cmp.Or(s.System, topic.system), src: s, layout: topic.layout, avro: av}
	if len(s.Value) == 0 {
		return mapped{Tombstone: true}, nil
	}
	v, err := m.decode(s.Value)
	if err != nil {
		return mapped{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return mapped{}, unreadablef("value is %s, not an object", jsonKind(v))
	}
	return m.value(obj)
}

// mapping is the mapping of one source record.
type mapping struct {
	entity Entity
	system string
	src    sourceRecord
	layout layout
	avro   *avroSource
}

// decode decodes a value or key: the schema registry's wire format (Avro)
// when it starts with its magic byte 0, which no JSON text starts with;
// JSON otherwise.
func (m *mapping) decode(b []byte) (any, error) {
	if len(b) > 0 && b[0] == wireMagic {
		if m.avro == nil {
			return nil, unreadablef("value is in the schema registry wire format, and no schema registry is configured for source records")
		}
		return m.avro.decode(b)
	}
	return decodeSourceJSON(b)
}

func (m *mapping) change(id string, op Operation, t, version int64) Change {
	return Change{Entity: m.entity, ID: id, Op: op, Source: m.system, SourceTime: t, SourceVersion: version}
}

// value tells the shapes of a value apart and maps it.
func (m *mapping) value(obj map[string]any) (mapped, error) {
	switch {
	case isDebeziumEnvelope(obj):
		return m.debezium(obj, nil, "")
	case len(obj) == 2 && hasKey(obj, "schema") && hasKey(obj, "payload"):
		// The JSON converter with schemas enabled: {"schema":..,
		// "payload":..}, always exactly these two keys.
		p, ok := obj["payload"].(map[string]any)
		if !ok {
			if obj["payload"] == nil {
				// A null value under an optional schema: it carries no
				// row, no time and no position, so, like a tombstone, it
				// is no change.
				return mapped{Tombstone: true}, nil
			}
			return mapped{}, unreadablef("the payload of a schema/payload value is %s, not an object", jsonKind(obj["payload"]))
		}
		schema, _ := obj["schema"].(map[string]any)
		if isDebeziumEnvelope(p) {
			return m.debezium(p, schema, "")
		}
		if isFlattened(p) {
			return m.flattened(p, schema, "")
		}
		return m.row(p, "")
	case hasKey(obj, "metadata") && hasKey(obj, "payload"):
		md, ok := obj["metadata"].(map[string]any)
		if !ok && obj["metadata"] != nil {
			return mapped{}, unreadablef("envelope metadata is %s, not an object", jsonKind(obj["metadata"]))
		}
		p, ok := obj["payload"].(map[string]any)
		if !ok {
			return mapped{}, unreadablef("envelope payload is %s, not an object", jsonKind(obj["payload"]))
		}
		corr, _ := md["correlationId"].(string)
		if isDebeziumEnvelope(p) {
			return m.debezium(p, nil, corr)
		}
		return m.row(p, corr)
	case isFlattened(obj):
		return m.flattened(obj, nil, "")
	}
	return m.row(obj, "")
}

func hasKey(obj map[string]any, k string) bool {
	_, ok := obj[k]
	return ok
}

func isDebeziumEnvelope(obj map[string]any) bool {
	return hasKey(obj, "op") && (hasKey(obj, "after") || hasKey(obj, "before"))
}

// row maps a bare row (or an envelope's payload): the seed's shape.
func (m *mapping) row(r map[string]any, corr string) (mapped, error) {
	f := &rowReader{entity: m.entity, r: r}
	op := f.operation()
	if f.err != nil {
		return mapped{}, f.err
	}
	c, err := m.mapRow(f, eventMeta{op: op}, false)
	if err != nil {
		return mapped{}, err
	}
	return mapped{Change: c, CorrelationID: corr}, nil
}

// mapRow maps a row to a change with operation meta.op. The change's source
// time is meta's when it has one (from a Debezium envelope); otherwise the
// row's own timestamp field gives it, else, except for a delete, the
// record's timestamp. Its version is meta's log position, else the row's
// version. typed says whether the row came with the JSON converter's
// schema.
func (m *mapping) mapRow(f *rowReader, meta eventMeta, typed bool) (Change, error) {
	op := meta.op
	idPaths := m.layout.paths("id")
	id, _ := f.text(false, idPaths...)
	t, haveTime := meta.time, meta.haveTime
	if !haveTime {
		t, haveTime = f.sourceTime()
	}
	version := f.version()
	if meta.position > 0 {
		version = meta.position
	}
	if f.err != nil {
		return Change{}, f.err
	}
	if !haveTime {
		if op == OpDelete {
			// The record's timestamp is when it reached Kafka: a lagging
			// connector's delete would outlive the row's re-insert.
			return Change{}, unmappablef("%s delete without a source time: none of the envelope's times nor lastUpdated, updatedAt, last_updated, updated_at", m.entity)
		}
		t = m.src.Timestamp
	}
	if id == "" {
		if op != OpDelete {
			return Change{}, unmappablef("no %s id: none of %s", m.entity, strings.Join(idPaths, ", "))
		}
		var err error
		if id, err = m.keyID(); err != nil {
			return Change{}, err
		}
	}
	c := m.change(id, op, t, version)
	if op == OpDelete {
		return c, nil
	}
	rec := m.record(f, id)
	if f.err != nil {
		return Change{}, f.err
	}
	fields, err := FieldsOf(rec)
	if err != nil {
		// Not reachable: every value is a string, a finite number or a
		// struct of them. The JSON error is left out: it may quote a value.
		return Change{}, unmappablef("%s: the canonical fields do not encode as JSON", m.entity)
	}
	if err := m.bareTemporal(f.r, fields, id, typed); err != nil {
		return Change{}, err
	}
	c.Fields = fields
	return c, nil
}

// record is the canonical record of the row f reads.
func (m *mapping) record(f *rowReader, id string) any {
	switch m.entity {
	case Patient:
		return f.patient(m.layout, m.system, id)
	case Encounter:
		return f.encounter(m.layout)
	case Observation:
		return f.observation(m.layout)
	case Prescription:
		return f.prescription(m.layout)
	}
	return nil
}

// keyID is the entity id a record's key names, for a delete without an id
// in its value.
func (m *mapping) keyID() (string, error) {
	k := m.src.Key
	if len(k) == 0 {
		return "", unmappablef("%s delete without an id: the key is empty", m.entity)
	}
	if k[0] != '{' && k[0] != '"' && k[0] != wireMagic {
		return string(k), nil
	}
	v, err := m.decode(k)
	if err != nil && k[0] == wireMagic {
		// An Avro key that does not decode names no id; a registry
		// that does not answer is retried.
		return "", err
	}
	if err != nil {
		// Not JSON after all: the key is the id as it stands.
		return string(k), nil
	}
	if obj, ok := v.(map[string]any); ok && len(obj) == 2 && hasKey(obj, "schema") && hasKey(obj, "payload") {
		v = obj["payload"]
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", unmappablef("%s delete without an id: the key is an empty string", m.entity)
		}
		return v, nil
	case map[string]any:
		f := &rowReader{entity: m.entity, r: v}
		paths := m.layout.paths("id")
		id, _ := f.text(false, paths...)
		if f.err != nil {
			return "", unmappablef("%s delete: the key's id is not a string or number", m.entity)
		}
		if id == "" {
			return "", unmappablef("%s delete without an id: the key has none of %s", m.entity, strings.Join(paths, ", "))
		}
		return id, nil
	}
	return string(k), nil
}

// decodeSourceJSON decodes one JSON value, numbers as [json.Number]. The
// JSON package's syntax errors quote the input: only the offset is kept.
func decodeSourceJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			return nil, unreadablef("value is not JSON (syntax error at byte %d)", se.Offset)
		}
		return nil, unreadablef("value is not JSON (truncated)")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, unreadablef("value is not one JSON value (more follows at byte %d)", d.InputOffset())
	}
	return v, nil
}

// rowReader reads the fields of one source row. The first problem is kept
// in err, and every read after it is a no-op, so a record is read in one
// straight pass and checked once.
type rowReader struct {
	entity Entity
	r      map[string]any
	err    error
}

func (f *rowReader) fail(format string, args ...any) {
	if f.err == nil {
		f.err = unmappablef("%s: %s", f.entity, fmt.Sprintf(format, args...))
	}
}

// get is the value at a path: keys joined by dots, a key may end with an
// index: "code.coding[0].code". Absent, null and a path through something
// that is not an object or array are all nil.
func (f *rowReader) get(path string) any {
	var cur any = f.r
	for seg := range strings.SplitSeq(path, ".") {
		key, idx := seg, -1
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			n, err := strconv.Atoi(seg[i+1 : len(seg)-1])
			if err != nil {
				return nil
			}
			key, idx = seg[:i], n
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[key]
		if idx >= 0 {
			a, ok := cur.([]any)
			if !ok || idx >= len(a) {
				return nil
			}
			cur = a[idx]
		}
	}
	return cur
}

// pick is the first of paths with a value that is not null and not an empty
// string, and its path.
func (f *rowReader) pick(paths ...string) (any, string) {
	for _, p := range paths {
		switch v := f.get(p).(type) {
		case nil:
		case string:
			if v != "" {
				return v, p
			}
		default:
			return v, p
		}
	}
	return nil, ""
}

// text is the first of paths with a non-empty text, and its path. A number
// or boolean is its JSON text. An object or array is the wrong type, except
// where a later path descends into it ("code" before
// "code.coding[0].code"): then it is passed over. With join, an array of
// strings is joined with single spaces (FHIR's name.given).
func (f *rowReader) text(join bool, paths ...string) (string, string) {
	if f.err != nil {
		return "", ""
	}
	for i, p := range paths {
		v := f.get(p)
		if v == nil {
			continue
		}
		if s, ok := scalarText(v); ok {
			if s == "" {
				continue
			}
			return s, p
		}
		if a, ok := v.([]any); ok && join {
			parts := make([]string, 0, len(a))
			for j, el := range a {
				s, ok := scalarText(el)
				if !ok {
					f.fail("field %q[%d] is %s, want a string", p, j, jsonKind(el))
					return "", ""
				}
				if s != "" {
					parts = append(parts, s)
				}
			}
			if len(parts) == 0 {
				continue
			}
			return strings.Join(parts, " "), p
		}
		if descends(p, paths[i+1:]) {
			continue
		}
		f.fail("field %q is %s, want a string", p, jsonKind(v))
		return "", ""
	}
	return "", ""
}

// descends reports whether one of later is a path into p.
func descends(p string, later []string) bool {
	for _, q := range later {
		if strings.HasPrefix(q, p+".") || strings.HasPrefix(q, p+"[") {
			return true
		}
	}
	return false
}

func (f *rowReader) str(paths ...string) *string {
	s, _ := f.text(false, paths...)
	return optText(s)
}

func optText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// scalarText is the text of a string, number or boolean; ok is false for
// anything else.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// jsonKind names the JSON type of a decoded value, for errors that must not
// quote it.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "an unknown JSON value"
}

// operation is the row's operationType, case-insensitive, OpUpsert when it
// has none.
func (f *rowReader) operation() Operation {
	v := f.get("operationType")
	if v == nil {
		return OpUpsert
	}
	s, ok := v.(string)
	if !ok {
		f.fail("field %q is %s, want a string", "operationType", jsonKind(v))
		return ""
	}
	switch op := Operation(strings.ToLower(strings.TrimSpace(s))); op {
	case "":
		return OpUpsert
	case OpCreate, OpUpdate, OpUpsert, OpDelete, OpSnapshot:
		return op
	}
	f.fail("field %q is not one of create, update, upsert, delete, snapshot", "operationType")
	return ""
}

// sourceTime is the row's own timestamp of the change, ms: an integer of
// milliseconds or an RFC 3339 time; ok is false when the row has none. An
// integer outside the plausible range of milliseconds (see epochField) is an
// error: a microsecond time read as milliseconds would win every conflict.
func (f *rowReader) sourceTime() (ms int64, ok bool) {
	v, p := f.pick("lastUpdated", "updatedAt", "last_updated", "updated_at")
	switch v := v.(type) {
	case nil:
		return 0, false
	case json.Number:
		if _, err := strconv.ParseInt(v.String(), 10, 64); err != nil {
			f.fail("field %q is not an integer of milliseconds", p)
			return 0, false
		}
		ms, ok, zero := f.epochField(p, 1)
		if zero {
			f.fail("field %q is zero, not a time", p)
		}
		return ms, ok
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			f.fail("field %q is not an RFC 3339 time", p)
		}
		return t.UnixMilli(), true
	default:
		f.fail("field %q is %s, want milliseconds or an RFC 3339 time", p, jsonKind(v))
		return 0, false
	}
}

// version is the row's version: an integer, or a string of one; 1 when the
// row has none.
func (f *rowReader) version() int64 {
	v, p := f.pick("version", "versionId", "version_id")
	var s string
	switch v := v.(type) {
	case nil:
		return 1
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		f.fail("field %q is %s, want an integer", p, jsonKind(v))
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		f.fail("field %q is not a non-negative integer", p)
		return 0
	}
	return n
}

// ref is the id in the first of paths; where it came from one of refPaths,
// a reference ("Patient/p1", {"reference":"Patient/p1"}), the id is the
// reference's, which must be to a kind.
func (f *rowReader) ref(kind string, refPaths []string, paths ...string) *string {
	s, p := f.text(false, paths...)
	if s == "" || !slices.Contains(refPaths, p) {
		return optText(s)
	}
	id, ok := referenceID(s, kind)
	if !ok {
		f.fail("field %q is not a %s reference", p, kind)
		return nil
	}
	return &id
}

// referenceID is the id in a FHIR reference to kind: "Patient/p1",
// "https://fhir.example/Patient/p1/_history/2" and a bare "p1" are all "p1".
func referenceID(ref, kind string) (string, bool) {
	if !strings.Contains(ref, "/") {
		return ref, true
	}
	parts := strings.Split(ref, "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == kind && parts[i+1] != "" {
			return parts[i+1], true
		}
	}
	return "", false
}

// refField is a field of kind's id: its reference columns hold FHIR
// references, whose id is taken.
func (f *rowReader) refField(l layout, field, kind string) *string {
	return f.ref(kind, l.pathsOf(field, referenceColumn), l.paths(field)...)
}

func (f *rowReader) field(l layout, name string) *string {
	return f.str(l.paths(name)...)
}

func (f *rowReader) patient(l layout, system, id string) *PatientRecord {
	// given names may be FHIR's array: joined.
	first, _ := f.text(true, l.paths("firstName")...)
	return &PatientRecord{
		FirstName:   optText(first),
		LastName:    f.field(l, "lastName"),
		DateOfBirth: f.field(l, "dateOfBirth"),
		Gender:      f.gender(l),
		Identifiers: f.identifiers(l, system, id),
		Address:     f.address(l),
		Contact:     f.contact(l),
	}
}

// gender is the canonical code of the row's gender ([canonicalGender]).
func (f *rowReader) gender(l layout) *string {
	s, _ := f.text(false, l.paths("gender")...)
	return optText(canonicalGender(s))
}

// identifiers are the row's identifiers and the source system's own
// {system, id}, sorted by system and value, without duplicates.
func (f *rowReader) identifiers(l layout, system, id string) []Identifier {
	var ids []Identifier
	v, p := f.pick(l.paths("identifiers")...)
	switch v := v.(type) {
	case nil:
	case []any:
		for i, el := range v {
			p := fmt.Sprintf("%s[%d]", p, i)
			if _, ok := el.(map[string]any); !ok {
				f.fail("field %q is %s, want an object", p, jsonKind(el))
				return nil
			}
			sys, _ := f.text(false, p+".system")
			val, _ := f.text(false, p+".value")
			if f.err != nil {
				return nil
			}
			if sys == "" || val == "" {
				f.fail("field %q lacks a system or a value", p)
				return nil
			}
			ids = append(ids, Identifier{System: sys, Value: val})
		}
	default:
		f.fail("field %q is %s, want an array", p, jsonKind(v))
		return nil
	}
	ids = append(ids, Identifier{System: system, Value: id})
	slices.SortFunc(ids, func(a, b Identifier) int {
		return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.Value, b.Value))
	})
	return slices.Compact(ids)
}

// address is an address object, or a plain string as its one line, from
// the address columns; without one, the flat address.* columns. An address
// with nothing in it is none.
func (f *rowReader) address(l layout) *Address {
	v, p := f.pick(l.paths("address")...)
	var a *Address
	switch v := v.(type) {
	case nil:
		a = &Address{
			Line:       f.lines(l.paths("address.line")...),
			City:       f.field(l, "address.city"),
			State:      f.field(l, "address.state"),
			PostalCode: f.field(l, "address.postalCode"),
			Country:    f.field(l, "address.country"),
		}
	case map[string]any:
		a = &Address{
			Line:       f.lines(p+".line", p+".lines", p+".street"),
			City:       f.str(p + ".city"),
			State:      f.str(p + ".state"),
			PostalCode: f.str(p+".postalCode", p+".postal_code", p+".zip"),
			Country:    f.str(p + ".country"),
		}
	default:
		s, ok := scalarText(v)
		if !ok {
			f.fail("field %q is %s, want an object or a string", p, jsonKind(v))
			return nil
		}
		return &Address{Line: []string{s}}
	}
	if len(a.Line) == 0 && a.City == nil && a.State == nil && a.PostalCode == nil && a.Country == nil {
		return nil
	}
	return a
}

// lines are the address lines of the first of paths: a string or an array
// of strings. Never nil: line is a required array in the canonical schema.
func (f *rowReader) lines(paths ...string) []string {
	lines := []string{}
	if f.err != nil {
		return lines
	}
	for _, p := range paths {
		switch v := f.get(p).(type) {
		case nil:
		case []any:
			for i, el := range v {
				s, ok := scalarText(el)
				if !ok {
					f.fail("field %q[%d] is %s, want a string", p, i, jsonKind(el))
					return lines
				}
				if s != "" {
					lines = append(lines, s)
				}
			}
		default:
			s, ok := scalarText(v)
			if !ok {
				f.fail("field %q is %s, want a string or an array of strings", p, jsonKind(v))
				return lines
			}
			if s != "" {
				lines = append(lines, s)
			}
		}
		if len(lines) > 0 {
			return lines
		}
	}
	return lines
}

// contact is the row's contact object, or its flat contact.* columns when
// it has none.
func (f *rowReader) contact(l layout) *Contact {
	v, p := f.pick(l.paths("contact")...)
	var c Contact
	switch v.(type) {
	case nil:
		c = Contact{Phone: f.field(l, "contact.phone"), Email: f.field(l, "contact.email")}
	case map[string]any:
		c = Contact{Phone: f.str(p+".phone", p+".telephone", p+".phoneNumber", p+".phone_number"), Email: f.str(p + ".email")}
	default:
		f.fail("field %q is %s, want an object", p, jsonKind(v))
		return nil
	}
	if c.Phone == nil && c.Email == nil {
		return nil
	}
	return &c
}

func (f *rowReader) encounter(l layout) *EncounterRecord {
	return &EncounterRecord{
		PatientID:      f.refField(l, "patientId", "Patient"),
		Status:         f.field(l, "status"),
		Class:          f.field(l, "class"),
		Type:           f.field(l, "type"),
		Start:          f.field(l, "start"),
		End:            f.field(l, "end"),
		PractitionerID: f.field(l, "practitionerId"),
		Location:       f.field(l, "location"),
	}
}

func (f *rowReader) observation(l layout) *ObservationRecord {
	o := &ObservationRecord{
		PatientID:         f.refField(l, "patientId", "Patient"),
		EncounterID:       f.refField(l, "encounterId", "Encounter"),
		Code:              f.field(l, "code"),
		CodeSystem:        f.field(l, "codeSystem"),
		Display:           f.field(l, "display"),
		Unit:              f.field(l, "unit"),
		EffectiveDateTime: f.field(l, "effectiveDateTime"),
		Status:            f.field(l, "status"),
	}
	o.Value, o.ValueString = f.observationValue(l)
	return o
}

// observationValue is an observation's numeric value, from the first value
// column with a number or a numeric string, and its text value
// (valueString, else the first text that is not numeric in a plain value
// column). A number column holds a number or nothing.
func (f *rowReader) observationValue(l layout) (*float64, *string) {
	var loose string
	for _, c := range l.columns("value") {
		p := c.path
		switch v := f.get(p).(type) {
		case nil:
		case json.Number:
			if x := f.float(p, v.String()); x != nil {
				vs, _ := f.text(false, l.paths("valueString")...)
				return x, optText(cmp.Or(vs, loose))
			}
		case string:
			switch {
			case v == "" && c.kind == numberColumn:
			case isJSONNumber(v):
				if x := f.float(p, v); x != nil {
					vs, _ := f.text(false, l.paths("valueString")...)
					return x, optText(cmp.Or(vs, loose))
				}
			case c.kind == numberColumn:
				f.fail("field %q is not a number", p)
			case loose == "":
				loose = v
			}
		case bool:
			if c.kind == numberColumn {
				f.fail("field %q is %s, want a number", p, jsonKind(v))
			} else if loose == "" {
				loose = strconv.FormatBool(v)
			}
		default:
			if c.kind == numberColumn {
				f.fail("field %q is %s, want a number", p, jsonKind(v))
			} else {
				f.fail("field %q is %s, want a number or a string", p, jsonKind(v))
			}
		}
		if f.err != nil {
			return nil, nil
		}
	}
	vs, _ := f.text(false, l.paths("valueString")...)
	return nil, optText(cmp.Or(vs, loose))
}

// isJSONNumber reports whether s, trimmed, is a JSON number: what a numeric
// string may hold (not Go's "NaN", "Inf", hex or underscores).
func isJSONNumber(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

func (f *rowReader) float(p, s string) *float64 {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
		f.fail("field %q is not a finite number", p)
		return nil
	}
	return &x
}

func (f *rowReader) prescription(l layout) *PrescriptionRecord {
	return &PrescriptionRecord{
		PatientID:      f.refField(l, "patientId", "Patient"),
		MedicationID:   f.field(l, "medicationId"),
		MedicationName: f.field(l, "medicationName"),
		Dosage:         f.field(l, "dosage"),
		Frequency:      f.field(l, "frequency"),
		Duration:       f.field(l, "duration"),
		PrescriberID:   f.field(l, "prescriberId"),
		Status:         f.field(l, "status"),
	}
}
