package datasync

import (
	"encoding/json"
	"fmt"
)

// namespace is the Avro namespace of the canonical schemas.
const namespace = "carepipe.canonical"

// optional is the Avro type of a field that may be null.
func optional(t any) []any { return []any{"null", t} }

// millis is a long counting milliseconds since the Unix epoch, UTC: Avro's
// timestamp-millis. The logical type changes nothing on the wire (the
// records carepipe wrote before it decode the same, see
// TestTimestampMillisKeepsTheWire); a reader that knows it gets a timestamp
// where it got a number.
var millis = map[string]any{"type": "long", "logicalType": "timestamp-millis"}

// field is a field of a canonical record with the doc that says what it
// holds. A field that may be null defaults to null.
func field(name string, t any, doc string) map[string]any {
	f := map[string]any{"name": name, "type": t, "doc": doc}
	if u, ok := t.([]any); ok && len(u) > 0 && u[0] == "null" {
		f["default"] = nil
	}
	return f
}

func record(name, doc string, fields ...map[string]any) map[string]any {
	return map[string]any{"type": "record", "name": name, "doc": doc, "fields": fields}
}

func array(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

// Dates, times and codes stay strings, each with its format in its doc,
// rather than becoming Avro dates and enums in a new schema version: a FHIR
// date of birth may be just a year or a year and month, which an Avro date
// cannot hold without inventing a day; the change topics carry values as
// the source wrote them, before validation, so an enum would make a record
// with an unknown status unwritable instead of sending it to the error
// topic; and a reader with an enum fails on a symbol added later. Either
// change is also not backward compatible, so it would need a new subject.

// payloadFields are the Avro fields of each entity's record, after the
// system fields. Their names are the JSON names of the record types.
func payloadFields(e Entity) []map[string]any {
	str := optional("string")
	switch e {
	case Patient:
		return []map[string]any{
			field("firstName", str, "Given name, as the source wrote it."),
			field("lastName", str, "Family name, as the source wrote it."),
			field("dateOfBirth", str, "Date of birth, a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, no time zone (validated on the validated topic)."),
			field("gender", str, "Administrative gender, FHIR AdministrativeGender: male, female, other or unknown on the validated topic; a source code mapped to those (or kept lower-cased) on the change topic."),
			{"name": "identifiers", "type": array(record("Identifier", "An identifier of the patient in some system.",
				field("system", "string", "The system that issued the identifier (a URI or the source's name)."),
				field("value", "string", "The identifier within that system."))),
				"default": []any{}, "doc": "The patient's identifiers (medical record numbers and the like); empty when none."},
			field("address", optional(record("Address", "A postal address.",
				map[string]any{"name": "line", "type": array("string"), "default": []any{}, "doc": "Street lines, in order."},
				field("city", str, "City or town."),
				field("state", str, "State, province or region."),
				field("postalCode", str, "Postal code."),
				field("country", str, "Country, as the source wrote it."))), "Home address; null when the source has none."),
			field("contact", optional(record("Contact", "How to reach the patient.",
				field("phone", str, "Telephone number, as the source wrote it."),
				field("email", str, "E-mail address."))), "Contact details; null when the source has none."),
		}
	case Encounter:
		return []map[string]any{
			field("patientId", str, "Canonical id of the patient the encounter is for."),
			field("status", str, "FHIR EncounterStatus: planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error or unknown (validated on the validated topic)."),
			field("class", str, "Encounter class (inpatient, outpatient, emergency, ...), as the source wrote it."),
			field("type", str, "Encounter type, as the source wrote it."),
			field("start", str, "Start, a FHIR dateTime: a date (YYYY, YYYY-MM, YYYY-MM-DD) or an RFC 3339 date and time with its offset."),
			field("end", str, "End, a FHIR dateTime as start; not before start on the validated topic."),
			field("practitionerId", str, "Id of the attending practitioner in the source."),
			field("location", str, "Where the encounter takes place, as the source wrote it."),
		}
	case Observation:
		return []map[string]any{
			field("patientId", str, "Canonical id of the patient observed."),
			field("encounterId", str, "Canonical id of the encounter, when the source gave one."),
			field("code", str, "What was observed: a code in codeSystem (a LOINC code for vital signs and labs)."),
			field("codeSystem", str, "The code system of code (for LOINC, http://loinc.org)."),
			field("display", str, "Human-readable name of code."),
			field("value", optional("double"), "Numeric result, in unit; null for a result that is not a number (see valueString)."),
			field("valueString", str, "Result that is not a number, as text."),
			field("unit", str, "Unit of value (UCUM where the source uses it)."),
			field("effectiveDateTime", str, "When the observation was made, a FHIR dateTime (a date, or an RFC 3339 date and time with its offset)."),
			field("status", str, "FHIR ObservationStatus: registered, preliminary, final, amended, corrected, cancelled, entered-in-error or unknown (validated on the validated topic)."),
		}
	case Prescription:
		return []map[string]any{
			field("patientId", str, "Canonical id of the patient the prescription is for."),
			field("medicationId", str, "Code of the medication in the pharmacy source."),
			field("medicationName", str, "Name of the medication."),
			field("dosage", str, "Dose per administration, as the prescriber wrote it."),
			field("frequency", str, "How often, as the prescriber wrote it."),
			field("duration", str, "For how long, as the prescriber wrote it."),
			field("prescriberId", str, "Id of the prescriber in the source."),
			field("status", str, "FHIR MedicationRequest status: active, on-hold, cancelled, completed, entered-in-error, stopped, draft or unknown (validated on the validated topic)."),
		}
	}
	return nil
}

// recordName is the Avro name of an entity's record: "Patient", ...
func recordName(e Entity) string {
	return string(e[0]-'a'+'A') + string(e[1:])
}

// schema is the Avro schema (JSON text) of canonical.<e>.change and
// canonical.<e>.validated: an [Event] with the entity's record as payload.
func schema(e Entity) string {
	fields := []map[string]any{
		field("id", "string", "Canonical id of the "+string(e)+", the record key on every datasync topic."),
		field("sourceId", "string", "The source system's name and its own id of the record, as system:id."),
		field("lastUpdated", millis, "The source's time of the newest change applied, milliseconds since the Unix epoch (UTC)."),
		field("version", "long", "The source's version of the newest change applied (its log position or row version; 1 when it gave none)."),
		field("sourceSystem", "string", "The source system of the newest change applied (ehr, pharmacy, registration, ...)."),
	}
	fields = append(fields, payloadFields(e)...)
	s := map[string]any{
		"type": "record", "name": recordName(e) + "Event", "namespace": namespace,
		"doc": "A change of a canonical " + string(e) + " (canonical." + string(e) + ".change) or one accepted by validation (canonical." + string(e) + ".validated). The record key is the " + string(e) + "'s canonical id, a UTF-8 string.",
		"fields": []map[string]any{
			field("metadata", record("Metadata", "Where and when the event was made.",
				field("eventId", "string", "Unique id of this event."),
				field("eventType", "string", "The topic the event was written to."),
				field("eventSource", "string", "The stage that wrote it: cdc-<source system>, data-validation or data-reconciliation."),
				field("sourceSystem", "string", "The source system of the change."),
				field("correlationId", "string", "Correlation id carried from the source record to everything derived from it."),
				field("timestamp", millis, "When carepipe wrote the event, milliseconds since the Unix epoch (UTC)."),
				map[string]any{"name": "conflictResolution", "type": "boolean", "default": false,
					"doc": "Whether resolving a conflict decided the payload (validated events only)."}), "Event metadata."),
			field("operation", "string", "What the change does: create, update, upsert (a source record without an operation), snapshot (a row read by a CDC snapshot) or delete."),
			map[string]any{"name": "version", "type": "long", "default": 0,
				"doc": "The entity's canonical version on the validated topic, counting the changes accepted for it (what target systems acknowledge); 0 on the change topic."},
			field("payload", optional(map[string]any{"type": "record", "name": recordName(e), "doc": "The canonical " + string(e) + ".", "fields": fields}),
				"The "+string(e)+" after the change; null for a delete."),
			field("resolution", optional(record("Resolution", "How a conflict with an earlier change was decided.",
				field("strategy", "string", "The entity type's strategy: last-writer-wins, survivorship or field-merge."),
				field("conflictingSystems", array("string"), "The sources whose values competed, sorted."),
				field("fields", array(record("FieldDecision", "The decision on one field.",
					field("field", "string", "The field decided; * for the whole record under last-writer-wins."),
					field("winner", "string", "The source whose value was kept."),
					field("winnerTimestamp", millis, "The winner's source time, milliseconds since the Unix epoch (UTC)."),
					field("loser", "string", "The source whose value was dropped."),
					field("loserTimestamp", millis, "The loser's source time, milliseconds since the Unix epoch (UTC)."))),
					"Each field decided."))), "How a conflict was resolved (validated events only); null when there was none."),
		},
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("canonical schema of %s: %v", e, err))
	}
	return string(b)
}

// Topic names of an entity's stream.
func ChangeTopic(e Entity) string    { return "canonical." + string(e) + ".change" }
func ValidatedTopic(e Entity) string { return "canonical." + string(e) + ".validated" }
func CompletedTopic(e Entity) string { return "reconciliation." + string(e) + ".completed" }
func OverdueTopic(e Entity) string   { return "reconciliation." + string(e) + ".overdue" }
func subject(topic string) string    { return topic + "-value" }
