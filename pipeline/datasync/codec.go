package datasync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Codec encodes and decodes canonical events in the Confluent wire format
// (magic byte, schema id, Avro body), with the ids the schema registry gave
// carepipe's schemas. It is built once, at start-up, by [Register]: after
// that it makes no network calls, so processors stay pure.
type Codec struct {
	api  avro.API
	ours map[Entity]avro.Schema
	// ids: topic -> id of carepipe's schema under the topic's subject.
	ids map[string]int
	// readers: schema id -> how to read a body written with it (carepipe's
	// schema, or carepipe's resolved against an older registered version).
	readers map[int]reader
	header  sr.ConfluentHeader
}

type reader struct {
	entity Entity
	schema avro.Schema
}

// Topics with canonical Avro values: the change and validated topic of each
// entity.
func canonicalTopics() []string {
	var ts []string
	for _, e := range entities {
		ts = append(ts, ChangeTopic(e), ValidatedTopic(e))
	}
	return ts
}

func entityOfTopic(topic string) (Entity, bool) {
	for _, e := range entities {
		if topic == ChangeTopic(e) || topic == ValidatedTopic(e) {
			return e, true
		}
	}
	return "", false
}

// parse parses an Avro schema in a cache of its own: schemas of different
// versions share names, and a process-wide cache would mix them.
func parse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// checkBackward reports whether data written with the old schema can be read
// with the new one (the registry's BACKWARD rule), with the reason when not.
// carepipe checks this itself: not every registry does (srfake says
// "compatible" to everything).
func checkBackward(newSchema, oldSchema string) error {
	n, err := parse(newSchema)
	if err != nil {
		return fmt.Errorf("new schema: %w", err)
	}
	o, err := parse(oldSchema)
	if err != nil {
		return fmt.Errorf("registered schema: %w", err)
	}
	return avro.NewSchemaCompatibility().Compatible(n, o)
}

// SchemaChange is a schema carepipe would register: the subject, the
// latest version already there (0: none), and for a new subject the
// compatibility level it gets.
type SchemaChange struct {
	Subject string
	Latest  int
	Level   subjectLevel
}

func (c SchemaChange) String() string {
	if c.Latest == 0 {
		return "register schema " + c.Subject + " (new subject, " + c.Level.String() + ")"
	}
	return fmt.Sprintf("register schema %s (version %d is registered; the new one is backward compatible)", c.Subject, c.Latest)
}

// subjectState is what the registry holds for one subject.
type subjectState struct {
	versions []sr.SubjectSchema // sorted by version
}

func fetchSubject(ctx context.Context, cl *sr.Client, subject string) (subjectState, error) {
	var st subjectState
	vs, err := cl.Schemas(ctx, subject)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return st, nil
		}
		return st, fmt.Errorf("schema registry: reading subject %s: %w", subject, err)
	}
	slices.SortFunc(vs, func(a, b sr.SubjectSchema) int { return a.Version - b.Version })
	st.versions = vs
	return st, nil
}

// registered reports whether subject has a version that is carepipe's
// schema, by the registry's own equality (its lookup): the one that decides
// whether registering makes a new version, docs and logical types included.
func registered(ctx context.Context, cl *sr.Client, subject, ours string) (bool, error) {
	_, err := cl.LookupSchema(ctx, subject, sr.Schema{Schema: ours, Type: sr.TypeAvro})
	var re *sr.ResponseError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("schema registry: looking up carepipe's schema under %s: %w", subject, err)
}

// PlanSchemas lists the schemas carepipe would register, and fails, naming
// the subject and the reason, if one of them is not backward compatible
// with the latest version registered under its subject.
func PlanSchemas(ctx context.Context, cl *sr.Client) ([]SchemaChange, error) {
	var changes []SchemaChange
	for _, topic := range canonicalTopics() {
		e, _ := entityOfTopic(topic)
		subject := subject(topic)
		ok, err := registered(ctx, cl, subject, schema(e))
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		st, err := fetchSubject(ctx, cl, subject)
		if err != nil {
			return nil, err
		}
		ch := SchemaChange{Subject: subject}
		if n := len(st.versions); n > 0 {
			last := st.versions[n-1]
			ch.Latest = last.Version
			if err := checkBackward(schema(e), last.Schema.Schema); err != nil {
				return nil, fmt.Errorf("schema registry: carepipe's schema for subject %s is not backward compatible with registered version %d, refusing to register it: %w", subject, last.Version, err)
			}
		} else if ch.Level, err = readLevel(ctx, cl, subject); err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// Register registers carepipe's canonical schemas (those [PlanSchemas]
// lists, after the same compatibility check), as a Confluent serializer with
// auto.register.schemas=true does, and returns the codec for the registered
// ids. A subject it creates gets BACKWARD compatibility only where that is
// no looser than the registry's global level (compat.go). It is
// idempotent: a schema already registered keeps its id.
func Register(ctx context.Context, cl *sr.Client) (*Codec, error) {
	changes, err := PlanSchemas(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, ch := range changes {
		if ch.Latest == 0 && ch.Level.set {
			res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: ourCompatibility}, ch.Subject)
			for _, r := range res {
				if r.Err != nil {
					return nil, fmt.Errorf("schema registry: setting %s on %s: %w", ourCompatibility, ch.Subject, r.Err)
				}
			}
		}
	}
	c, err := newCodec()
	if err != nil {
		return nil, err
	}
	for _, topic := range canonicalTopics() {
		e, _ := entityOfTopic(topic)
		subject := subject(topic)
		id, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema(e), Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			return nil, fmt.Errorf("schema registry: registering %s: %w", subject, err)
		}
		if err := c.add(ctx, cl, topic, id); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ErrNotRegistered: with auto-registration off, a subject has no version
// whose schema is carepipe's.
var ErrNotRegistered = errors.New("carepipe's schema is not registered")

// Lookup returns the codec for carepipe's canonical schemas as registered
// by someone else, as a Confluent serializer with auto.register.schemas=false
// and use.latest.version=false does: it writes nothing to the registry, and
// asks it, for each subject, for the version whose schema equals carepipe's
// (the registry's lookup). A later version, even a compatible one, is not
// used: carepipe writes with the schema its code was built for. It fails
// with [ErrNotRegistered], naming every subject without that version.
func Lookup(ctx context.Context, cl *sr.Client) (*Codec, error) {
	c, err := newCodec()
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, topic := range canonicalTopics() {
		e, _ := entityOfTopic(topic)
		subject := subject(topic)
		ss, err := cl.LookupSchema(ctx, subject, sr.Schema{Schema: schema(e), Type: sr.TypeAvro})
		var re *sr.ResponseError
		switch {
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
			missing = append(missing, subject)
			continue
		case err != nil:
			return nil, fmt.Errorf("schema registry: looking up carepipe's schema under %s: %w", subject, err)
		}
		if err := c.add(ctx, cl, topic, ss.ID); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("schema registry: %w under subjects %s, and schema auto-registration is off: register them first (carepipe topics apply --schema-registry ... registers them), or turn auto-registration on (--schema-auto-register)",
			ErrNotRegistered, strings.Join(missing, ", "))
	}
	return c, nil
}

func newCodec() (*Codec, error) {
	c := &Codec{
		api:     avro.Config{}.Freeze(),
		ours:    make(map[Entity]avro.Schema),
		ids:     make(map[string]int),
		readers: make(map[int]reader),
	}
	for _, e := range entities {
		s, err := parse(schema(e))
		if err != nil {
			return nil, fmt.Errorf("canonical schema of %s: %w", e, err)
		}
		c.ours[e] = s
	}
	return c, nil
}

// add makes c write topic's values with schema id, carepipe's, and read
// those written with any version registered under topic's subject.
func (c *Codec) add(ctx context.Context, cl *sr.Client, topic string, id int) error {
	e, _ := entityOfTopic(topic)
	c.ids[topic] = id
	c.readers[id] = reader{entity: e, schema: c.ours[e]}
	st, err := fetchSubject(ctx, cl, subject(topic))
	if err != nil {
		return err
	}
	// Records written with an older version are read through carepipe's
	// schema resolved against it; one that cannot be resolved leaves its
	// records to the error topic.
	for _, v := range st.versions {
		if _, ok := c.readers[v.ID]; ok || v.Type != sr.TypeAvro {
			continue
		}
		w, err := parse(v.Schema.Schema)
		if err != nil {
			continue
		}
		if rs, err := avro.NewSchemaCompatibility().Resolve(c.ours[e], w); err == nil {
			c.readers[v.ID] = reader{entity: e, schema: rs}
		}
	}
	return nil
}

// ErrUnknownSchema: a value's schema id is not one of carepipe's canonical
// schemas (or an older version of one).
var ErrUnknownSchema = errors.New("value is not written with a known canonical schema")

// Encode appends to b the wire form of ev (an *Event[P] of the topic's
// entity) for topic.
func (c *Codec) Encode(b []byte, topic string, ev any) ([]byte, error) {
	id, ok := c.ids[topic]
	if !ok {
		return nil, fmt.Errorf("no canonical schema for topic %s", topic)
	}
	e, _ := entityOfTopic(topic)
	b, err := c.header.AppendEncode(b, id, nil)
	if err != nil {
		return nil, err
	}
	body, err := c.api.Marshal(c.ours[e], ev)
	if err != nil {
		return nil, fmt.Errorf("encoding a canonical %s: %w", e, err)
	}
	return append(b, body...), nil
}

// Decode decodes the wire form b into ev, an *Event[P] of entity e. A value
// of another entity's schema, or of an unknown schema, is an error.
func (c *Codec) Decode(b []byte, e Entity, ev any) error {
	id, body, err := c.header.DecodeID(b)
	if err != nil {
		return fmt.Errorf("value is not in the schema registry wire format: %w", err)
	}
	r, ok := c.readers[id]
	if !ok {
		return fmt.Errorf("%w (id %d)", ErrUnknownSchema, id)
	}
	if r.entity != e {
		return fmt.Errorf("value is written with the %s schema, not the %s one", r.entity, e)
	}
	// avro.API.Unmarshal takes running out of bytes for the end of the
	// value, so a value cut short at a field's boundary would decode as
	// a record with that field and the ones after it empty. A reader of
	// our own says so, and says what is left over.
	rd := avro.NewReader(nil, 0, avro.WithReaderConfig(c.api)).Reset(body)
	rd.ReadVal(r.schema, ev)
	switch {
	case errors.Is(rd.Error, io.EOF) || errors.Is(rd.Error, io.ErrUnexpectedEOF):
		return fmt.Errorf("value is not a valid canonical %s: it ends before the record does", e)
	case rd.Error != nil:
		return fmt.Errorf("value is not a valid canonical %s: %w", e, rd.Error)
	}
	if rd.Peek(); rd.Error == nil {
		return fmt.Errorf("value is not a valid canonical %s: bytes follow the record", e)
	}
	return nil
}

// EntityOfValidatedTopic is the entity type of canonical.<entity>.validated.
func EntityOfValidatedTopic(topic string) (Entity, bool) {
	for _, e := range entities {
		if topic == ValidatedTopic(e) {
			return e, true
		}
	}
	return "", false
}
