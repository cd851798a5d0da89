package datasync

import (
	"encoding/json"
	"fmt"

	"github.com/bytedance/sonic"
)

// Entity is a canonical entity type. It names the topics of its stream:
// canonical.<entity>.change, canonical.<entity>.validated,
// reconciliation.<entity>.completed and reconciliation.<entity>.overdue.
type Entity string

const (
	Patient      Entity = "patient"
	Encounter    Entity = "encounter"
	Observation  Entity = "observation"
	Prescription Entity = "prescription"
)

// Entities are the canonical entity types, in a stable order.
var entities = [...]Entity{Patient, Encounter, Observation, Prescription}

// Entities returns the canonical entity types.
func Entities() []Entity { return entities[:] }

// Operation is what a change does to its entity. It travels in the
// operation-type header and the event's operation field.
type Operation string

const (
	// OpUpsert: a source record without an explicit operation (the seed's
	// default).
	OpUpsert Operation = "upsert"
	OpCreate Operation = "create"
	OpUpdate Operation = "update"
	// OpSnapshot: a row read by a CDC snapshot (Debezium op "r").
	OpSnapshot Operation = "snapshot"
	// OpDelete: a delete or a tombstone. A delete carries no fields.
	OpDelete Operation = "delete"
)

// Fields are an entity's data fields: field name (the canonical JSON and
// Avro name) to its value as compact JSON. A field that is absent was not
// provided by the source; null values are never held. The system fields
// (id, sourceId, lastUpdated, version, sourceSystem) are not in Fields:
// they live in [Change].
type Fields map[string]json.RawMessage

// Change is one canonical change of one entity: what the CDC stage publishes
// and the validation stage resolves.
type Change struct {
	Entity Entity
	ID     string
	Op     Operation
	// Source is the system the change came from (ehr, pharmacy, ...).
	Source string
	// SourceTime is the source's own timestamp of the change, ms since the
	// epoch: the order of last-writer-wins, never our clock.
	SourceTime int64
	// SourceVersion is the source's version of the record (1 when it gave
	// none); for a Debezium change, its position in the database's log
	// (see debezium.go), which orders changes within one millisecond.
	SourceVersion int64
	// Fields is nil for a delete.
	Fields Fields
}

// Identifier is a business identifier of a patient: the system that issued
// it and the value.
type Identifier struct {
	System string `json:"system" avro:"system"`
	Value  string `json:"value" avro:"value"`
}

// Address is a postal address.
type Address struct {
	Line       []string `json:"line" avro:"line"`
	City       *string  `json:"city,omitempty" avro:"city"`
	State      *string  `json:"state,omitempty" avro:"state"`
	PostalCode *string  `json:"postalCode,omitempty" avro:"postalCode"`
	Country    *string  `json:"country,omitempty" avro:"country"`
}

// Contact is how to reach a patient.
type Contact struct {
	Phone *string `json:"phone,omitempty" avro:"phone"`
	Email *string `json:"email,omitempty" avro:"email"`
}

// System are the fields every canonical entity carries besides its data
// fields.
type System struct {
	ID       string `json:"id" avro:"id"`
	SourceID string `json:"sourceId" avro:"sourceId"`
	// LastUpdated is the source timestamp (ms) of the newest change applied.
	LastUpdated int64 `json:"lastUpdated" avro:"lastUpdated"`
	// Version is the source's version of the newest change applied.
	Version      int64  `json:"version" avro:"version"`
	SourceSystem string `json:"sourceSystem" avro:"sourceSystem"`
}

// PatientRecord is the canonical patient.
type PatientRecord struct {
	System
	FirstName   *string      `json:"firstName,omitempty" avro:"firstName"`
	LastName    *string      `json:"lastName,omitempty" avro:"lastName"`
	DateOfBirth *string      `json:"dateOfBirth,omitempty" avro:"dateOfBirth"`
	Gender      *string      `json:"gender,omitempty" avro:"gender"`
	Identifiers []Identifier `json:"identifiers,omitempty" avro:"identifiers"`
	Address     *Address     `json:"address,omitempty" avro:"address"`
	Contact     *Contact     `json:"contact,omitempty" avro:"contact"`
}

// EncounterRecord is the canonical encounter.
type EncounterRecord struct {
	System
	PatientID      *string `json:"patientId,omitempty" avro:"patientId"`
	Status         *string `json:"status,omitempty" avro:"status"`
	Class          *string `json:"class,omitempty" avro:"class"`
	Type           *string `json:"type,omitempty" avro:"type"`
	Start          *string `json:"start,omitempty" avro:"start"`
	End            *string `json:"end,omitempty" avro:"end"`
	PractitionerID *string `json:"practitionerId,omitempty" avro:"practitionerId"`
	Location       *string `json:"location,omitempty" avro:"location"`
}

// ObservationRecord is the canonical observation.
type ObservationRecord struct {
	System
	PatientID         *string  `json:"patientId,omitempty" avro:"patientId"`
	EncounterID       *string  `json:"encounterId,omitempty" avro:"encounterId"`
	Code              *string  `json:"code,omitempty" avro:"code"`
	CodeSystem        *string  `json:"codeSystem,omitempty" avro:"codeSystem"`
	Display           *string  `json:"display,omitempty" avro:"display"`
	Value             *float64 `json:"value,omitempty" avro:"value"`
	ValueString       *string  `json:"valueString,omitempty" avro:"valueString"`
	Unit              *string  `json:"unit,omitempty" avro:"unit"`
	EffectiveDateTime *string  `json:"effectiveDateTime,omitempty" avro:"effectiveDateTime"`
	Status            *string  `json:"status,omitempty" avro:"status"`
}

// PrescriptionRecord is the canonical prescription.
type PrescriptionRecord struct {
	System
	PatientID      *string `json:"patientId,omitempty" avro:"patientId"`
	MedicationID   *string `json:"medicationId,omitempty" avro:"medicationId"`
	MedicationName *string `json:"medicationName,omitempty" avro:"medicationName"`
	Dosage         *string `json:"dosage,omitempty" avro:"dosage"`
	Frequency      *string `json:"frequency,omitempty" avro:"frequency"`
	Duration       *string `json:"duration,omitempty" avro:"duration"`
	PrescriberID   *string `json:"prescriberId,omitempty" avro:"prescriberId"`
	Status         *string `json:"status,omitempty" avro:"status"`
}

// Metadata is the event metadata of the seed's canonical messages.
type Metadata struct {
	EventID       string `json:"eventId" avro:"eventId"`
	EventType     string `json:"eventType" avro:"eventType"`
	EventSource   string `json:"eventSource" avro:"eventSource"`
	SourceSystem  string `json:"sourceSystem" avro:"sourceSystem"`
	CorrelationID string `json:"correlationId" avro:"correlationId"`
	// Timestamp is when carepipe produced the event, ms, from the injected
	// clock.
	Timestamp int64 `json:"timestamp" avro:"timestamp"`
	// ConflictResolution says whether resolving a conflict decided the
	// payload (validated events only).
	ConflictResolution bool `json:"conflictResolution" avro:"conflictResolution"`
}

// Resolution says how a conflict was decided: which fields of the change
// lost to a value held from another update, and which won over one.
type Resolution struct {
	Strategy string `json:"strategy" avro:"strategy"`
	// ConflictingSystems are the sources whose values competed, sorted.
	ConflictingSystems []string        `json:"conflictingSystems" avro:"conflictingSystems"`
	Fields             []FieldDecision `json:"fields" avro:"fields"`
}

// FieldDecision is the decision on one field (or, under last-writer-wins,
// on the whole record, field "*").
type FieldDecision struct {
	Field           string `json:"field" avro:"field"`
	Winner          string `json:"winner" avro:"winner"`
	WinnerTimestamp int64  `json:"winnerTimestamp" avro:"winnerTimestamp"`
	Loser           string `json:"loser" avro:"loser"`
	LoserTimestamp  int64  `json:"loserTimestamp" avro:"loserTimestamp"`
}

// Event is a message on canonical.<entity>.change or .validated, P the
// entity's record type. Version is 0 on change topics; on validated topics
// it is the entity's canonical version, counting the changes accepted for
// it (what target systems acknowledge).
type Event[P any] struct {
	Metadata   Metadata    `json:"metadata" avro:"metadata"`
	Operation  string      `json:"operation" avro:"operation"`
	Version    int64       `json:"version" avro:"version"`
	Payload    *P          `json:"payload" avro:"payload"`
	Resolution *Resolution `json:"resolution" avro:"resolution"`
}

// record is the canonical record of a change: its system fields and data
// fields, as the entity's record type (a *PatientRecord, ...). A delete's
// record has its system fields only: they say who deleted it and when.
func (c *Change) record() (any, error) {
	sys := System{ID: c.ID, SourceID: c.Source + ":" + c.ID, LastUpdated: c.SourceTime, Version: c.SourceVersion, SourceSystem: c.Source}
	switch c.Entity {
	case Patient:
		r := &PatientRecord{System: sys}
		return r, c.Fields.into(r)
	case Encounter:
		r := &EncounterRecord{System: sys}
		return r, c.Fields.into(r)
	case Observation:
		r := &ObservationRecord{System: sys}
		return r, c.Fields.into(r)
	case Prescription:
		r := &PrescriptionRecord{System: sys}
		return r, c.Fields.into(r)
	}
	return nil, fmt.Errorf("unknown entity type %q", c.Entity)
}

// into sets the data fields of the record r (a pointer to an entity record)
// from f. A field r does not have is an error: Fields come from our own
// mapping, so that is a bug, not bad input.
func (f Fields) into(r any) error {
	if len(f) == 0 {
		return nil
	}
	b, err := stdJSON.Marshal(f)
	if err != nil {
		return err
	}
	if err := strictJSON.Unmarshal(b, r); err != nil {
		// The decoder's message may quote the fields: not repeated.
		return fmt.Errorf("canonical fields do not fit the %T record", r)
	}
	return nil
}

// FieldsOf returns the data fields of an entity record (a pointer to one of
// the record types): everything but the system fields, nulls left out.
func FieldsOf(r any) (Fields, error) {
	b, err := stdJSON.Marshal(r)
	if err != nil {
		return nil, err
	}
	var f Fields
	if err := stdJSON.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	for _, k := range systemFields {
		delete(f, k)
	}
	for k, v := range f {
		if string(v) == "null" {
			delete(f, k)
		}
	}
	return f, nil
}

// stdJSON is encoding/json's behaviour (HTML escaping, sorted map keys), at
// sonic's speed: these round trips are a quarter of the stages' CPU with
// encoding/json. strictJSON also refuses unknown fields.
var (
	stdJSON    = sonic.ConfigStd
	strictJSON = sonic.Config{
		EscapeHTML: true, SortMapKeys: true, CompactMarshaler: true, CopyString: true,
		ValidateString: true, DisallowUnknownFields: true,
	}.Froze()
)

var systemFields = [...]string{"id", "sourceId", "lastUpdated", "version", "sourceSystem"}
