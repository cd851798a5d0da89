package datasync

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Sources say which topics the CDC stage reads, which source system's
// entity each carries, and where each canonical field is found in its rows
// (a layout: canonical field to columns). They are configuration: the
// built-in sources ([DefaultSources], sources.yaml) are the seed's four
// topics and field variants; a sources file ([LoadSources]) attaches other
// topics, a Debezium <prefix>.<schema>.<table> topic say, with their own
// column names. A Sources is immutable once built.
type Sources struct {
	byTopic map[string]*source
	topics  []string // in the file's order
}

// source is one configured topic.
type source struct {
	system string
	entity Entity
	layout layout
}

// layout is where each canonical field of an entity is found: field name to
// the columns tried in order.
type layout map[string]*fieldColumns

// fieldColumns are a field's columns, and their paths (all, and by kind)
// computed once: the mapping reads them for every record.
type fieldColumns struct {
	cols   []column
	paths  []string
	byKind map[columnKind][]string
}

func newFieldColumns(cols []column) *fieldColumns {
	f := &fieldColumns{cols: cols, paths: make([]string, len(cols)), byKind: make(map[columnKind][]string)}
	for i, c := range cols {
		f.paths[i] = c.path
		f.byKind[c.kind] = append(f.byKind[c.kind], c.path)
	}
	return f
}

// column is one place in a row: a path, and how its value is read.
type column struct {
	path string
	// kind is plainColumn, or referenceColumn (a FHIR reference whose id
	// is taken) or numberColumn (a number, never text).
	kind columnKind
}

type columnKind int

const (
	plainColumn columnKind = iota
	referenceColumn
	numberColumn
)

// columns are a field's columns, in order.
func (l layout) columns(field string) []column {
	if f := l[field]; f != nil {
		return f.cols
	}
	return nil
}

// paths are the paths of a field's columns, in order. Read only.
func (l layout) paths(field string) []string {
	if f := l[field]; f != nil {
		return f.paths
	}
	return nil
}

// pathsOf are the paths of a field's columns of kind k. Read only.
func (l layout) pathsOf(field string, k columnKind) []string {
	if f := l[field]; f != nil {
		return f.byKind[k]
	}
	return nil
}

// canonicalFields are the fields a layout may name, per entity, and the
// column kinds each takes besides plain columns. "address" and "contact"
// are object columns (read with their own sub-layout, see sources.yaml);
// "address.*" and "contact.*" are flat columns read without one.
var canonicalFields = map[Entity]map[string][]columnKind{
	Patient: {
		"id": nil, "firstName": nil, "lastName": nil, "dateOfBirth": nil, "gender": nil, "identifiers": nil,
		"address": nil, "address.line": nil, "address.city": nil, "address.state": nil, "address.postalCode": nil, "address.country": nil,
		"contact": nil, "contact.phone": nil, "contact.email": nil,
	},
	Encounter: {
		"id": nil, "patientId": {referenceColumn}, "status": nil, "class": nil, "type": nil, "start": nil, "end": nil,
		"practitionerId": nil, "location": nil,
	},
	Observation: {
		"id": nil, "patientId": {referenceColumn}, "encounterId": {referenceColumn}, "code": nil, "codeSystem": nil,
		"display": nil, "value": {numberColumn}, "valueString": nil, "unit": nil, "effectiveDateTime": nil, "status": nil,
	},
	Prescription: {
		"id": nil, "patientId": {referenceColumn}, "medicationId": nil, "medicationName": nil, "dosage": nil,
		"frequency": nil, "duration": nil, "prescriberId": nil, "status": nil,
	},
}

//go:embed sources.yaml
var defaultSourcesYAML []byte

// defaultFile is sources.yaml decoded; defaultSources is it built. Both are
// read only.
var (
	defaultFile = sync.OnceValue(func() *sourcesFile {
		f, err := decodeSourcesFile(defaultSourcesYAML)
		if err != nil {
			panic("datasync: the built-in sources.yaml does not decode: " + err.Error())
		}
		return f
	})
	defaultSources = sync.OnceValue(func() *Sources {
		s, err := defaultFile().build()
		if err != nil {
			panic("datasync: the built-in sources.yaml is invalid: " + err.Error())
		}
		return s
	})
)

// DefaultSources are the built-in sources: source.ehr.patient,
// source.ehr.encounter, source.ehr.observation and
// source.pharmacy.prescription, in the seed's field variants.
func DefaultSources() *Sources { return defaultSources() }

// LoadSources reads a sources file over the built-in sources: each layout
// field it names replaces the built-in columns of that field, and its
// sources list, when it has one, replaces the built-in list. Every problem
// is reported, each with its key (sources[2].entity,
// layouts.patient.gender[1]): an unknown entity or canonical field, a
// duplicate topic, an empty or malformed column path, a missing system.
func LoadSources(path string) (*Sources, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	s, err := ParseSources(b)
	if err != nil {
		return nil, fmt.Errorf("sources %s: %w", path, err)
	}
	return s, nil
}

// ParseSources is [LoadSources] of a file's content.
func ParseSources(b []byte) (*Sources, error) {
	f, err := decodeSourcesFile(b)
	if err != nil {
		return nil, err
	}
	return defaultFile().overlay(f).build()
}

// topicNames are the configured topics, in the file's order: the CDC stage's
// inputs.
func (s *Sources) topicNames() []string { return slices.Clone(s.topics) }

// lookup is the source system and entity a topic carries; ok is false for a
// topic that is not configured.
func (s *Sources) lookup(topic string) (system string, e Entity, ok bool) {
	src, ok := s.byTopic[topic]
	if !ok {
		return "", "", false
	}
	return src.system, src.entity, true
}

// WithSources sets the topics the CDC stage reads and how it maps them.
// Default [DefaultSources].
func WithSources(s *Sources) Option { return func(o *options) { o.sources = s } }

// sourcesFile is the YAML form of Sources.
type sourcesFile struct {
	Layouts map[string]map[string][]columnSpec `yaml:"layouts"`
	Sources []sourceSpec                       `yaml:"sources"`
}

type sourceSpec struct {
	Topic   string                  `yaml:"topic"`
	System  string                  `yaml:"system"`
	Entity  string                  `yaml:"entity"`
	Columns map[string][]columnSpec `yaml:"columns"`
}

// columnSpec is a column as written: a path, {reference: path} or
// {number: path}.
type columnSpec struct {
	Path string
	Kind columnKind
}

func (c *columnSpec) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Decode(&c.Path)
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fmt.Errorf("line %d: a column is a path, {reference: path} or {number: path}", n.Line)
		}
		switch n.Content[0].Value {
		case "reference":
			c.Kind = referenceColumn
		case "number":
			c.Kind = numberColumn
		default:
			return fmt.Errorf("line %d: unknown column kind %q (reference, number)", n.Line, n.Content[0].Value)
		}
		if n.Content[1].Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: a column's path is a string", n.Line)
		}
		return n.Content[1].Decode(&c.Path)
	}
	return fmt.Errorf("line %d: a column is a path, {reference: path} or {number: path}", n.Line)
}

func decodeSourcesFile(b []byte) (*sourcesFile, error) {
	var f sourcesFile
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra any
	if err := d.Decode(&extra); err == nil {
		return nil, errors.New("more than one YAML document")
	}
	return &f, nil
}

// overlay is f read over d: d's layouts with the fields f names replaced,
// and f's sources if it has any, else d's.
func (d *sourcesFile) overlay(f *sourcesFile) *sourcesFile {
	out := &sourcesFile{Layouts: make(map[string]map[string][]columnSpec), Sources: d.Sources}
	for e, l := range d.Layouts {
		out.Layouts[e] = maps.Clone(l)
	}
	for e, l := range f.Layouts {
		if out.Layouts[e] == nil {
			out.Layouts[e] = make(map[string][]columnSpec)
		}
		maps.Copy(out.Layouts[e], l)
	}
	if f.Sources != nil {
		out.Sources = f.Sources
	}
	return out
}

// build checks f and builds its Sources. Every problem is reported, in the
// file's order, each with its key.
func (f *sourcesFile) build() (*Sources, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	layouts := make(map[Entity]layout)
	for _, name := range slices.Sorted(maps.Keys(f.Layouts)) {
		e, ok := entityNamed(name)
		if !ok {
			bad("layouts."+name, "unknown entity %q (%s)", name, entityNames())
			continue
		}
		layouts[e] = checkLayout(e, "layouts."+name, f.Layouts[name], bad)
	}
	s := &Sources{byTopic: make(map[string]*source)}
	if len(f.Sources) == 0 {
		bad("sources", "no sources: the CDC stage would read nothing")
	}
	first := make(map[string]int)
	for i, spec := range f.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		ok := true
		switch j, dup := first[spec.Topic]; {
		case spec.Topic == "":
			bad(key+".topic", "missing")
			ok = false
		case !validTopicName(spec.Topic):
			bad(key+".topic", "%q is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", spec.Topic)
			ok = false
		case dup:
			bad(key+".topic", "duplicate topic %q: sources[%d] has it already", spec.Topic, j)
			ok = false
		case isDataSyncTopic(spec.Topic):
			bad(key+".topic", "%q is one of datasync's own topics, not a source", spec.Topic)
			ok = false
		default:
			first[spec.Topic] = i
		}
		if strings.TrimSpace(spec.System) == "" {
			bad(key+".system", "missing: the source system the topic's changes come from")
			ok = false
		}
		e, known := entityNamed(spec.Entity)
		if !known {
			bad(key+".entity", "unknown entity %q (%s)", spec.Entity, entityNames())
			continue
		}
		l := maps.Clone(layouts[e])
		if l == nil {
			l = make(layout)
		}
		maps.Copy(l, checkLayout(e, key+".columns", spec.Columns, bad))
		if len(l.paths("id")) == 0 {
			bad(key, "no id column for %s: set layouts.%s.id or %s.columns.id", e, e, key)
			ok = false
		}
		if ok {
			s.byTopic[spec.Topic] = &source{system: spec.System, entity: e, layout: l}
			s.topics = append(s.topics, spec.Topic)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// checkLayout checks the fields and columns of one layout of entity e at
// key, reporting each problem through bad, and returns the good fields.
func checkLayout(e Entity, key string, fields map[string][]columnSpec, bad func(key, format string, args ...any)) layout {
	known := canonicalFields[e]
	l := make(layout)
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		kinds, ok := known[name]
		if !ok {
			bad(key+"."+name, "unknown canonical field of %s (%s)", e, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			continue
		}
		cols := make([]column, 0, len(fields[name]))
		good := true
		for j, c := range fields[name] {
			ck := fmt.Sprintf("%s.%s[%d]", key, name, j)
			if c.Kind != plainColumn && !slices.Contains(kinds, c.Kind) {
				bad(ck, "%s %s takes no %s column", e, name, kindName(c.Kind))
				good = false
				continue
			}
			if err := checkColumnPath(c.Path); err != nil {
				bad(ck, "%v", err)
				good = false
				continue
			}
			cols = append(cols, column{path: c.Path, kind: c.Kind})
		}
		if good {
			l[name] = newFieldColumns(cols)
		}
	}
	return l
}

func kindName(k columnKind) string {
	switch k {
	case referenceColumn:
		return "reference"
	case numberColumn:
		return "number"
	}
	return "plain"
}

// checkColumnPath checks a path: keys joined by dots, none empty, a key may
// end with [n].
func checkColumnPath(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("empty column path")
	}
	for seg := range strings.SplitSeq(p, ".") {
		key := seg
		if i := strings.IndexByte(seg, '['); i >= 0 {
			n, err := strconv.Atoi(strings.TrimSuffix(seg[i+1:], "]"))
			if !strings.HasSuffix(seg, "]") || err != nil || n < 0 {
				return fmt.Errorf("column path %q: %q is not key[index]", p, seg)
			}
			key = seg[:i]
		}
		if key == "" {
			return fmt.Errorf("column path %q has an empty key", p)
		}
	}
	return nil
}

// isDataSyncTopic reports whether t is one the stages write or read
// besides the sources: reading it as a source would feed their output
// back to them.
func isDataSyncTopic(t string) bool {
	if t == TopicErrors || strings.HasPrefix(t, "reconciliation.") ||
		strings.HasPrefix(t, "target.") && strings.HasSuffix(t, ".sync.completed") {
		return true
	}
	for _, e := range entities {
		if t == ChangeTopic(e) || t == ValidatedTopic(e) {
			return true
		}
	}
	return false
}

// validTopicName is Kafka's rule for topic names.
func validTopicName(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func entityNamed(name string) (Entity, bool) {
	for _, e := range entities {
		if string(e) == name {
			return e, true
		}
	}
	return "", false
}

func entityNames() string {
	names := make([]string, len(entities))
	for i, e := range entities {
		names[i] = string(e)
	}
	return strings.Join(names, ", ")
}
