package datasync

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// wireMagic is the first byte of a value in the schema registry's wire
// format: 0, then the schema id (4 bytes, big-endian), then the Avro body.
// No JSON text starts with it.
const wireMagic = 0

// errSchemaUnavailable: a source record is in the schema registry's wire
// format, and the registry did not answer for its schema (unreachable, an
// error status, refused credentials). The record is not at fault: the CDC
// stage retries it in a new transaction ([pipeline.Transient]) and never
// sends it to the error topic. A schema the registry answers it does not
// have is the record's fault: that is [errUnreadable].
var errSchemaUnavailable = errors.New("the schema registry did not give the source record's schema")

// schemaFetchTimeout bounds one schema look-up; the stage retries after it.
const schemaFetchTimeout = 10 * time.Second

// WithSourceRegistry sets the schema registry the CDC stage reads the
// schemas of Avro source records from: Debezium's Avro converter writes
// the Confluent wire format, with the schema registered there. Default
// none: a source record in the wire format is unreadable.
func WithSourceRegistry(cl *sr.Client) Option { return func(o *options) { o.registry = cl } }

// avroSource decodes source records in the schema registry's wire format
// into what the JSON converter with schemas would have written for them,
// {"schema": <Connect schema>, "payload": <value>}, so that one mapping
// reads both (and Debezium's temporal types are read by their names in
// both). Schemas are fetched by id once and kept: a registry never changes
// what an id means, so the decoding is as deterministic as the JSON path.
type avroSource struct {
	cl *sr.Client

	mu      sync.Mutex
	schemas map[int]*sourceSchema // grows with the ids the registry knows, nothing else
}

type sourceSchema struct {
	schema avro.Schema
	// connect is the Connect schema (JSON converter form) of schema.
	connect map[string]any
}

func newAvroSource(cl *sr.Client) *avroSource {
	if cl == nil {
		return nil
	}
	return &avroSource{cl: cl, schemas: make(map[int]*sourceSchema)}
}

// decode decodes a wire-format value. A registry that does not answer is
// [errSchemaUnavailable]; anything wrong with the record is [errUnreadable].
func (a *avroSource) decode(b []byte) (any, error) {
	if len(b) < 5 {
		return nil, unreadablef("value starts with the wire format's magic byte but is %d bytes, shorter than its header", len(b))
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, err := a.schema(id)
	if err != nil {
		return nil, err
	}
	rd := avro.NewReader(nil, 0).Reset(b[5:])
	cr := &connectReader{rd: rd, items: len(b) - 5}
	payload := cr.read(s.schema)
	switch {
	case errors.Is(rd.Error, io.EOF) || errors.Is(rd.Error, io.ErrUnexpectedEOF):
		return nil, unreadablef("Avro body ends before its schema (id %d) does", id)
	case rd.Error != nil:
		// hamba's messages name schema types, never values.
		return nil, unreadablef("Avro body does not decode with its schema (id %d): %v", id, rd.Error)
	}
	if rd.Peek(); rd.Error == nil {
		return nil, unreadablef("bytes follow the Avro body of schema id %d", id)
	}
	return map[string]any{"schema": s.connect, "payload": payload}, nil
}

// recordAtFault reports whether a schema registry's status for a schema id
// look-up is the record's fault: a client error about the id (404 not
// found, 400 or 422 a malformed id). A server error, a timeout (408), a
// rate limit (429) or a refused login (401, 403: a misconfiguration that
// an operator fixes) is the registry's or ours, and the record is tried
// again rather than sent to the error topic.
func recordAtFault(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status < 500
}

// schema is schema id, from the cache or the registry.
func (a *avroSource) schema(id int) (*sourceSchema, error) {
	a.mu.Lock()
	s, ok := a.schemas[id]
	a.mu.Unlock()
	if ok {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), schemaFetchTimeout)
	defer cancel()
	got, err := a.cl.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && recordAtFault(re.StatusCode) {
			// The registry answered, and its answer is about this id: no
			// retry will change it, and retrying would stall the
			// partition behind the record for good.
			return nil, unreadablef("schema id %d: the schema registry answered %d", id, re.StatusCode)
		}
		return nil, fmt.Errorf("%w: schema id %d: %w", errSchemaUnavailable, id, err)
	}
	if got.Type != sr.TypeAvro {
		return nil, unreadablef("schema id %d is a %s schema, not Avro", id, got.Type)
	}
	if len(got.References) > 0 {
		return nil, unreadablef("schema id %d has references, which source records may not use", id)
	}
	parsed, err := parse(got.Schema)
	if err != nil {
		return nil, unreadablef("schema id %d is not a valid Avro schema: %v", id, err)
	}
	s = &sourceSchema{schema: parsed, connect: connectSchema(parsed, false)}
	a.mu.Lock()
	a.schemas[id] = s
	a.mu.Unlock()
	return s, nil
}

// connectReader reads one Avro body into Connect values.
type connectReader struct {
	rd *avro.Reader
	// items is how many more array items and map entries the body may
	// hold: no more than it has bytes. A block count is the body's to
	// choose, and one of 2^62 must not be believed.
	items int
}

// read reads one value of schema s as the JSON converter writes a Connect
// value: numbers as [json.Number], bytes and fixed as base64, a union as
// its branch's value, and logical types (date, time-millis,
// timestamp-millis, timestamp-micros, decimal) as their underlying number
// or bytes, which the Connect schema names (see [connectSchema]), never as
// a time the decoder chose a zone for.
func (cr *connectReader) read(s avro.Schema) any {
	rd := cr.rd
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		return rd.ReadBool()
	case avro.Int:
		return json.Number(strconv.FormatInt(int64(rd.ReadInt()), 10))
	case avro.Long:
		return json.Number(strconv.FormatInt(rd.ReadLong(), 10))
	case avro.Float:
		return floatNumber(float64(rd.ReadFloat()), 32)
	case avro.Double:
		return floatNumber(rd.ReadDouble(), 64)
	case avro.String:
		return rd.ReadString()
	case avro.Bytes:
		return base64.StdEncoding.EncodeToString(rd.ReadBytes())
	case avro.Fixed:
		b := make([]byte, s.(*avro.FixedSchema).Size())
		rd.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	case avro.Enum:
		symbols := s.(*avro.EnumSchema).Symbols()
		i := int(rd.ReadInt())
		if i < 0 || i >= len(symbols) {
			rd.ReportError("read", "enum index out of range")
			return nil
		}
		return symbols[i]
	case avro.Record:
		fields := s.(*avro.RecordSchema).Fields()
		obj := make(map[string]any, len(fields))
		for _, f := range fields {
			obj[f.Name()] = cr.read(f.Type())
			if rd.Error != nil {
				return nil
			}
		}
		return obj
	case avro.Ref:
		return cr.read(s.(*avro.RefSchema).Schema())
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		arr := []any{}
		for n := cr.block(); n > 0; n = cr.block() {
			for range n {
				v := cr.read(items)
				if rd.Error != nil {
					return nil
				}
				arr = append(arr, v)
			}
		}
		return arr
	case avro.Map:
		values := s.(*avro.MapSchema).Values()
		obj := map[string]any{}
		for n := cr.block(); n > 0; n = cr.block() {
			for range n {
				k := rd.ReadString()
				v := cr.read(values)
				if rd.Error != nil {
					return nil
				}
				obj[k] = v
			}
		}
		return obj
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		i := int(rd.ReadLong())
		if i < 0 || i >= len(types) {
			rd.ReportError("read", "union index out of range")
			return nil
		}
		return cr.read(types[i])
	}
	rd.ReportError("read", "unexpected schema type "+string(s.Type()))
	return nil
}

// block reads an array's or map's block header: its count of items, 0 at
// the end (or on an error, or a count the body cannot hold).
func (cr *connectReader) block() int64 {
	n, _ := cr.rd.ReadBlockHeader()
	switch {
	case cr.rd.Error != nil:
		return 0
	case n < 0 || n > int64(cr.items):
		cr.rd.ReportError("read", "a block counts more items than the body has bytes")
		return 0
	}
	cr.items -= int(n)
	return n
}

// floatNumber is x as the JSON converter writes it; NaN and the infinities,
// which JSON has no number for, as the text Java gives them, for the
// mapping to refuse as not finite.
func floatNumber(x float64, bits int) json.Number {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	return json.Number(strconv.FormatFloat(x, 'g', -1, bits))
}

// connectDecimal is the name of Connect's decimal logical type, which the
// JSON converter writes in a schema's "name" (the temporal ones are in
// temporal.go).
const connectDecimal = "org.apache.kafka.connect.data.Decimal"

// connectSchema is the Connect schema of an Avro schema, in the JSON
// converter's form ({"type":"struct","fields":[...],"optional":false,
// "name":...}), as Confluent's AvroData reads a schema the Avro converter
// wrote: a union of null and one type is that type, optional; the
// connect.name, connect.version, connect.parameters, connect.default and
// connect.type properties give the name, version, parameters, default and
// narrower integer type
// (Debezium's io.debezium.time.* names come this way). An Avro logical
// type without a connect.name is named as Connect names it (date, time-
// millis, timestamp-millis, decimal); timestamp-micros and time-micros,
// which Connect lacks, take Debezium's names for the same numbers
// (io.debezium.time.MicroTimestamp, io.debezium.time.MicroTime).
func connectSchema(s avro.Schema, optional bool) map[string]any {
	out := map[string]any{"optional": optional}
	if ps, ok := s.(avro.PropertySchema); ok {
		if v, ok := ps.Prop("connect.name").(string); ok {
			out["name"] = v
		}
		if v := ps.Prop("connect.version"); v != nil {
			out["version"] = v
		}
		if v := ps.Prop("connect.parameters"); v != nil {
			out["parameters"] = v
		}
		if v := ps.Prop("connect.default"); v != nil {
			out["default"] = v
		}
	}
	typ := ""
	switch s.Type() {
	case avro.Boolean:
		typ = "boolean"
	case avro.Int:
		typ = "int32"
	case avro.Long:
		typ = "int64"
	case avro.Float:
		typ = "float"
	case avro.Double:
		typ = "double"
	case avro.String, avro.Enum:
		typ = "string"
	case avro.Bytes, avro.Fixed:
		typ = "bytes"
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		typ = "struct"
		if _, ok := out["name"]; !ok {
			out["name"] = rs.FullName()
		}
		fields := make([]any, 0, len(rs.Fields()))
		for _, f := range rs.Fields() {
			fs := connectOf(f.Type())
			fs["field"] = f.Name()
			fields = append(fields, fs)
		}
		out["fields"] = fields
	case avro.Ref:
		return connectSchema(s.(*avro.RefSchema).Schema(), optional)
	case avro.Array:
		typ = "array"
		out["items"] = connectOf(s.(*avro.ArraySchema).Items())
	case avro.Map:
		typ = "map"
		out["keys"] = map[string]any{"type": "string", "optional": false}
		out["values"] = connectOf(s.(*avro.MapSchema).Values())
	case avro.Union:
		// Only a union with null reaches here through connectOf; others
		// have no Connect form that the mapping reads.
		typ = "struct"
		out["name"] = "io.confluent.connect.avro.Union"
	}
	if ct, ok := propString(s, "connect.type"); ok && (typ == "int32") {
		typ = ct // int8, int16
	}
	out["type"] = typ
	if _, named := out["name"]; !named {
		if lt, ok := s.(avro.LogicalTypeSchema); ok && lt.Logical() != nil {
			switch l := lt.Logical(); l.Type() {
			case avro.Date:
				out["name"] = connectDate
			case avro.TimeMillis:
				out["name"] = connectTime
			case avro.TimestampMillis:
				out["name"] = connectTimestamp
			case avro.TimestampMicros:
				out["name"] = "io.debezium.time.MicroTimestamp"
			case avro.TimeMicros:
				out["name"] = "io.debezium.time.MicroTime"
			case avro.Decimal:
				out["name"] = connectDecimal
				if d, ok := l.(*avro.DecimalLogicalSchema); ok {
					out["parameters"] = map[string]any{"scale": strconv.Itoa(d.Scale())}
				}
			}
		}
	}
	return out
}

// connectOf is connectSchema of a field's or item's type: a union of null
// and one type is that type, optional.
func connectOf(s avro.Schema) map[string]any {
	if u, ok := s.(*avro.UnionSchema); ok {
		var other []avro.Schema
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				other = append(other, t)
			}
		}
		if len(other) == 1 {
			return connectSchema(other[0], len(u.Types()) > 1)
		}
	}
	return connectSchema(s, false)
}

func propString(s avro.Schema, name string) (string, bool) {
	ps, ok := s.(avro.PropertySchema)
	if !ok {
		return "", false
	}
	v, ok := ps.Prop(name).(string)
	return v, ok
}
