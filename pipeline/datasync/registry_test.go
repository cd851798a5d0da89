package datasync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// v1Schema is entity e's canonical schema as carepipe registered it before
// timestamp-millis and docs (testdata/schemas/README.md).
func v1Schema(t *testing.T, e Entity) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "schemas", "v1", string(e)+".avsc"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Today's schemas are registered as a new version over the ones carepipe
// registered before; the registry's compatibility check passes (srfake says
// "compatible" to anything, so hamba's check says it here); a record that
// an old carepipe wrote decodes under the new codec; and the new codec
// writes the very bytes the old schema did.
func TestTimestampMillisKeepsTheWire(t *testing.T) {
	ctx := context.Background()
	cl := newRegistry(t)
	oldIDs := map[Entity]int{}
	for _, e := range entities {
		ss, err := cl.CreateSchema(ctx, subject(ChangeTopic(e)), sr.Schema{Schema: v1Schema(t, e), Type: sr.TypeAvro})
		if err != nil {
			t.Fatal(err)
		}
		oldIDs[e] = ss.ID
		if v1Schema(t, e) == schema(e) {
			t.Fatalf("%s: today's schema is the v1 text", e)
		}
		if err := checkBackward(schema(e), v1Schema(t, e)); err != nil {
			t.Fatalf("%s: today's schema is not backward compatible with v1: %v", e, err)
		}
		if !strings.Contains(schema(e), `"logicalType":"timestamp-millis"`) {
			t.Fatalf("%s: no timestamp-millis in today's schema", e)
		}
	}
	plan, err := PlanSchemas(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, ch := range plan {
		if strings.HasSuffix(ch.Subject, ".change-value") {
			latest += ch.Latest
		}
	}
	if latest != len(entities) {
		t.Fatalf("plan %v: want each change subject's version 1 as the latest", plan)
	}
	c, err := Register(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entities {
		vs, err := cl.Schemas(ctx, subject(ChangeTopic(e)))
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 || c.ids[ChangeTopic(e)] == oldIDs[e] {
			t.Fatalf("%s: %d versions, id %d (v1 %d); want today's schema as version 2", e, len(vs), c.ids[ChangeTopic(e)], oldIDs[e])
		}
	}

	in := &Event[ObservationRecord]{
		Metadata:  Metadata{EventID: "e1", EventType: ChangeTopic(Observation), EventSource: "cdc-ehr", SourceSystem: "ehr", CorrelationID: "c1", Timestamp: 1764979200123},
		Operation: string(OpUpdate),
		Payload: &ObservationRecord{System: System{ID: "o1", SourceID: "ehr:o1", LastUpdated: 1764979199000, Version: 7, SourceSystem: "ehr"},
			Code: ptr("8867-4"), Value: ptr(72.0), Unit: ptr("/min"), EffectiveDateTime: ptr("2025-12-06T00:00:00Z")},
		Resolution: &Resolution{Strategy: "last-writer-wins", ConflictingSystems: []string{"ehr", "portal"},
			Fields: []FieldDecision{{Field: "*", Winner: "ehr", WinnerTimestamp: 1764979199000, Loser: "portal", LoserTimestamp: 1764979100000}}},
	}
	old, err := parse(v1Schema(t, Observation))
	if err != nil {
		t.Fatal(err)
	}
	oldBody, err := c.api.Marshal(old, in)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.header.AppendEncode(nil, oldIDs[Observation], nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Event[ObservationRecord]
	if err := c.Decode(append(wire, oldBody...), Observation, &got); err != nil {
		t.Fatalf("a v1 record does not decode under today's schema: %v", err)
	}
	if !reflect.DeepEqual(in, &got) {
		t.Fatalf("v1 record decoded as\n %+v\nwant %+v", got, *in)
	}
	b, err := c.Encode(nil, ChangeTopic(Observation), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, body, _ := c.header.DecodeID(b); !bytes.Equal(body, oldBody) {
		t.Fatal("today's schema writes other bytes than v1 did")
	}
}

// Every field of every canonical record says what it holds.
func TestSchemasDocumentEveryField(t *testing.T) {
	for _, e := range entities {
		var walk func(path string, f any)
		walk = func(path string, f any) {
			fs, _ := f.([]any)
			for _, f := range fs {
				m := f.(map[string]any)
				if d, _ := m["doc"].(string); d == "" {
					t.Errorf("%s: field %s%v has no doc", e, path, m["name"])
				}
				for _, sub := range nested(m["type"]) {
					walk(path+m["name"].(string)+".", sub)
				}
			}
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(schema(e)), &raw); err != nil {
			t.Fatal(err)
		}
		walk("", raw["fields"])
	}
}

// nested is the field lists of the records in an Avro type: a record, an
// array of records, or a union with one.
func nested(t any) []any {
	switch t := t.(type) {
	case map[string]any:
		if t["type"] == "record" {
			return []any{t["fields"]}
		}
		if t["type"] == "array" {
			return nested(t["items"])
		}
	case []any:
		var out []any
		for _, u := range t {
			out = append(out, nested(u)...)
		}
		return out
	}
	return nil
}

func TestAtLeastAsStrict(t *testing.T) {
	const (
		none = sr.CompatNone
		bw   = sr.CompatBackward
		bwt  = sr.CompatBackwardTransitive
		fw   = sr.CompatForward
		fwt  = sr.CompatForwardTransitive
		full = sr.CompatFull
		fult = sr.CompatFullTransitive
	)
	for _, tc := range []struct {
		a, b sr.CompatibilityLevel
		want bool
	}{
		{none, none, true},
		{bw, none, true},
		{none, bw, false},
		{fw, none, true},
		{bw, bw, true},
		{bw, fw, false}, // incomparable both ways
		{fw, bw, false},
		{bwt, bw, true}, // transitive is stricter
		{bw, bwt, false},
		{fwt, fw, true},
		{fw, fwt, false},
		{full, bw, true},
		{full, fw, true},
		{bw, full, false},
		{full, bwt, false}, // FULL checks only the latest version
		{bwt, full, false},
		{fult, full, true},
		{fult, bwt, true},
		{fult, fwt, true},
		{full, fult, false},
		{none, fult, false},
	} {
		if got := atLeastAsStrict(tc.a, tc.b); got != tc.want {
			t.Errorf("AtLeastAsStrict(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A subject carepipe creates gets BACKWARD only where that is stricter than
// the registry's global level; otherwise it inherits the global one, and
// the plan says which.
func TestRegisterKeepsAStricterGlobalLevel(t *testing.T) {
	for _, tc := range []struct {
		global sr.CompatibilityLevel
		set    bool
	}{
		{sr.CompatNone, true},
		{sr.CompatBackward, false}, // the same level: inherited, not pinned
		{sr.CompatBackwardTransitive, false},
		{sr.CompatForward, false}, // not comparable: the global one stays
		{sr.CompatForwardTransitive, false},
		{sr.CompatFull, false},
		{sr.CompatFullTransitive, false},
	} {
		t.Run(tc.global.String(), func(t *testing.T) {
			ctx := context.Background()
			reg := srfake.New()
			t.Cleanup(reg.Close)
			cl, err := sr.NewClient(sr.URLs(reg.URL()))
			if err != nil {
				t.Fatal(err)
			}
			if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: tc.global}); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
			plan, err := PlanSchemas(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			want := "compatibility " + tc.global.String() + " from the registry's global level"
			if tc.set {
				want = "compatibility BACKWARD set on the subject, stricter than the registry's NONE"
			}
			if len(plan) == 0 || !strings.Contains(plan[0].String(), want) {
				t.Fatalf("plan %v: want %q", plan, want)
			}
			if _, err := Register(ctx, cl); err != nil {
				t.Fatal(err)
			}
			for _, topic := range canonicalTopics() {
				level, ok := ownLevel(t, reg.URL(), subject(topic))
				switch {
				case tc.set && (!ok || level != "BACKWARD"):
					t.Fatalf("%s: own level %q (%v), want BACKWARD", topic, level, ok)
				case !tc.set && ok:
					t.Fatalf("%s: own level %s, want none (the global %s)", topic, level, tc.global)
				}
			}
		})
	}
}

// ownLevel is subject's own compatibility level, without falling back to
// the global one (a GET the sr client cannot ask for: its parameter only
// turns the fallback on).
func ownLevel(t *testing.T, url, subject string) (string, bool) {
	t.Helper()
	resp, err := http.Get(url + "/config/" + subject + "?defaultToGlobal=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", false
	}
	var body struct {
		Level string `json:"compatibilityLevel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Level, true
}

// With auto-registration off, start-up fails naming every subject that
// lacks carepipe's schema, writes nothing, and works once they are
// registered (by topics apply, say); a subject with only another version,
// even a compatible one, is as good as missing.
func TestLookupNeedsOurSchemaRegistered(t *testing.T) {
	ctx := context.Background()
	cl := newRegistry(t)
	// Another version, compatible, under one subject.
	if _, err := cl.CreateSchema(ctx, subject(ChangeTopic(Patient)), sr.Schema{Schema: v1Schema(t, Patient), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	_, err := Lookup(ctx, cl)
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("lookup with nothing registered: %v, want ErrNotRegistered", err)
	}
	for _, topic := range canonicalTopics() {
		if !strings.Contains(err.Error(), subject(topic)) {
			t.Fatalf("error does not name %s: %v", subject(topic), err)
		}
	}
	if subjects, err := cl.Subjects(ctx); err != nil || len(subjects) != 1 {
		t.Fatalf("lookup wrote to the registry: subjects %v, %v", subjects, err)
	}

	reg, err := Register(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Lookup(ctx, cl)
	if err != nil {
		t.Fatalf("lookup with every schema registered: %v", err)
	}
	if !reflect.DeepEqual(c.ids, reg.ids) {
		t.Fatalf("lookup found ids %v, registration made %v", c.ids, reg.ids)
	}
	// It reads what the older version wrote, as Register's codec does.
	if len(c.readers) != len(reg.readers) {
		t.Fatalf("lookup reads %d schema ids, registration %d", len(c.readers), len(reg.readers))
	}
}

// A registered version that differs from carepipe's schema only in a doc is
// not carepipe's schema (the registry registers ours as a new version), so
// the plan lists it; a fingerprint of the canonical form, which drops docs,
// would call it done.
func TestPlanSeesADocOnlyChange(t *testing.T) {
	ctx := context.Background()
	cl := newRegistry(t)
	var s map[string]any
	if err := json.Unmarshal([]byte(schema(Patient)), &s); err != nil {
		t.Fatal(err)
	}
	s["doc"] = "An older wording."
	older, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	subject := subject(ChangeTopic(Patient))
	if _, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: string(older), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanSchemas(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != len(canonicalTopics()) || plan[0].Subject != subject || plan[0].Latest != 1 {
		t.Fatalf("plan %v: want %s's new version planned over version 1", plan, subject)
	}
	if _, err := Register(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if plan, err := PlanSchemas(ctx, cl); err != nil || len(plan) != 0 {
		t.Fatalf("plan after register: %v, %v", plan, err)
	}
}
