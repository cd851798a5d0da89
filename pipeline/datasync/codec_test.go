package datasync

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func newRegistry(t *testing.T) *sr.Client {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func ptr[T any](v T) *T { return &v }

func TestCodecRoundTrip(t *testing.T) {
	cl := newRegistry(t)
	c, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	in := &Event[PatientRecord]{
		Metadata:  Metadata{EventID: "e1", EventType: ValidatedTopic(Patient), EventSource: "data-validation", SourceSystem: "ehr", CorrelationID: "c1", Timestamp: 42, ConflictResolution: true},
		Operation: string(OpUpdate),
		Version:   3,
		Payload: &PatientRecord{
			System:      System{ID: "p1", SourceID: "ehr:p1", LastUpdated: 1000, Version: 2, SourceSystem: "ehr"},
			FirstName:   ptr("Ann"),
			Identifiers: []Identifier{{System: "ehr", Value: "p1"}},
			Address:     &Address{Line: []string{"1 Main St"}, City: ptr("Leeds")},
		},
		Resolution: &Resolution{Strategy: "field-merge", ConflictingSystems: []string{"ehr", "registration"},
			Fields: []FieldDecision{{Field: "firstName", Winner: "ehr", WinnerTimestamp: 1000, Loser: "registration", LoserTimestamp: 900}}},
	}
	b, err := c.Encode(nil, ValidatedTopic(Patient), in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 {
		t.Fatalf("magic byte %d, want 0", b[0])
	}
	var out Event[PatientRecord]
	if err := c.Decode(b, Patient, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, *in)
	}
	if err := c.Decode(b, Encounter, &Event[EncounterRecord]{}); err == nil {
		t.Fatal("a patient value decoded as an encounter")
	}
	// Registering again is idempotent: the same ids.
	c2, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.ids, c2.ids) {
		t.Fatalf("ids changed on a second registration: %v then %v", c.ids, c2.ids)
	}
	if ch, err := PlanSchemas(context.Background(), cl); err != nil || len(ch) != 0 {
		t.Fatalf("plan after register: %v, %v; want nothing to do", ch, err)
	}
}

// A value cut short anywhere, or with bytes after the record, is not a
// canonical record: the Avro library reads running out of bytes at a
// field's boundary as the end of the value, which would make a truncated
// value a record with its last fields empty.
func TestCodecRejectsTruncatedAndPaddedValues(t *testing.T) {
	c, err := Register(context.Background(), newRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	in := &Event[PatientRecord]{
		Metadata:  Metadata{EventID: "e1", EventType: ValidatedTopic(Patient), EventSource: "data-validation", CorrelationID: "c1", Timestamp: 42},
		Operation: string(OpUpdate),
		Version:   3,
		Payload: &PatientRecord{
			System:    System{ID: "p1", SourceID: "ehr:p1", LastUpdated: 1000, Version: 2, SourceSystem: "ehr"},
			FirstName: ptr("Ann"),
		},
	}
	b, err := c.Encode(nil, ValidatedTopic(Patient), in)
	if err != nil {
		t.Fatal(err)
	}
	const header = 5 // magic byte and schema id
	for n := header; n < len(b); n++ {
		var out Event[PatientRecord]
		err := c.Decode(b[:n], Patient, &out)
		if err == nil || !strings.Contains(err.Error(), "ends before the record does") {
			t.Errorf("cut to %d of %d bytes: error %v, want the value said to end early", n, len(b), err)
		}
	}
	var out Event[PatientRecord]
	if err := c.Decode(append(b[:len(b):len(b)], 0), Patient, &out); err == nil || !strings.Contains(err.Error(), "bytes follow the record") {
		t.Errorf("a byte after the record: error %v, want it named", err)
	}
	var whole Event[PatientRecord]
	if err := c.Decode(b, Patient, &whole); err != nil {
		t.Fatalf("the whole value: %v", err)
	}
	if again, err := c.Encode(nil, ValidatedTopic(Patient), &whole); err != nil || !bytes.Equal(again, b) {
		t.Fatalf("the whole value does not read back as written: %v", err)
	}
}

// An incompatible schema already registered under a subject makes carepipe
// refuse, naming the subject: srfake itself says "compatible" to anything.
func TestRegisterRefusesIncompatible(t *testing.T) {
	cl := newRegistry(t)
	// A version with a required field that carepipe's schema lacks a
	// default for... the reverse: carepipe's reader needs a field the
	// writer never wrote and has no default for.
	old := `{"type":"record","name":"PatientEvent","namespace":"carepipe.canonical","fields":[{"name":"operation","type":"int"}]}`
	subject := subject(ChangeTopic(Patient))
	if _, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: old, Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	_, err := Register(context.Background(), cl)
	if err == nil {
		t.Fatal("registered a schema incompatible with the subject's latest version")
	}
	if !strings.Contains(err.Error(), subject) || !strings.Contains(err.Error(), "not backward compatible") {
		t.Fatalf("error does not name the subject and the reason: %v", err)
	}
}

func TestCheckBackward(t *testing.T) {
	v1 := schema(Patient)
	// Adding an optional field with a default is backward compatible.
	v2 := editPayload(t, v1, func(fs []any) []any {
		return append(fs, map[string]any{"name": "pronouns", "type": []any{"null", "string"}, "default": nil})
	})
	if err := checkBackward(v2, v1); err != nil {
		t.Fatalf("adding an optional field: %v", err)
	}
	// Adding a required field without a default is not.
	v3 := editPayload(t, v1, func(fs []any) []any {
		return append(fs, map[string]any{"name": "nhsNumber", "type": "string"})
	})
	if err := checkBackward(v3, v1); err == nil {
		t.Fatal("a new required field without a default passed as backward compatible")
	}
}

// A value written with an older registered version of a subject's schema
// (one without carepipe's newer optional field) is read through carepipe's
// schema resolved against it: the missing field takes its default.
func TestCodecReadsOlderVersion(t *testing.T) {
	cl := newRegistry(t)
	old := editPayload(t, schema(Patient), func(fs []any) []any {
		return slices.DeleteFunc(fs, func(f any) bool { return f.(map[string]any)["name"] == "gender" })
	})
	subject := subject(ChangeTopic(Patient))
	ss, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Schema: old, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if c.ids[ChangeTopic(Patient)] == ss.ID {
		t.Fatal("carepipe's schema got the old version's id")
	}
	type oldPatient struct {
		System
		FirstName   *string      `avro:"firstName"`
		LastName    *string      `avro:"lastName"`
		DateOfBirth *string      `avro:"dateOfBirth"`
		Identifiers []Identifier `avro:"identifiers"`
		Address     *Address     `avro:"address"`
		Contact     *Contact     `avro:"contact"`
	}
	oldSchema, err := parse(old)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.api.Marshal(oldSchema, &Event[oldPatient]{
		Metadata:  Metadata{EventID: "e", EventType: ChangeTopic(Patient), EventSource: "cdc-ehr", SourceSystem: "ehr", CorrelationID: "c"},
		Operation: string(OpUpsert),
		Payload:   &oldPatient{System: System{ID: "p1", SourceID: "ehr:p1", LastUpdated: 5, Version: 1, SourceSystem: "ehr"}, LastName: ptr("Lee")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.header.AppendEncode(nil, ss.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Event[PatientRecord]
	if err := c.Decode(append(wire, body...), Patient, &got); err != nil {
		t.Fatal(err)
	}
	if got.Payload == nil || got.Payload.ID != "p1" || got.Payload.LastName == nil || *got.Payload.LastName != "Lee" || got.Payload.Gender != nil {
		t.Fatalf("decoded %+v", got.Payload)
	}
}

// editPayload returns schema (an event schema's JSON text) with the fields
// of its payload record replaced by edit's result; it fails the test when
// edit changes nothing.
func editPayload(t *testing.T, schema string, edit func([]any) []any) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		t.Fatal(err)
	}
	for _, f := range s["fields"].([]any) {
		f := f.(map[string]any)
		if f["name"] != "payload" {
			continue
		}
		rec := f["type"].([]any)[1].(map[string]any)
		before := len(rec["fields"].([]any))
		rec["fields"] = edit(rec["fields"].([]any))
		if len(rec["fields"].([]any)) == before {
			t.Fatal("test schema edit did not apply")
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
