package datasync

import (
	"encoding/json"
	"fmt"
)

// Namespace is the Avro namespace of the canonical schemas.
const Namespace = "carepipe.canonical"

// optional is the Avro type of a field that may be null.
func optional(t any) []any { return []any{"null", t} }

func field(name string, t any) map[string]any {
	f := map[string]any{"name": name, "type": t}
	if u, ok := t.([]any); ok && len(u) > 0 && u[0] == "null" {
		f["default"] = nil
	}
	return f
}

func record(name string, fields ...map[string]any) map[string]any {
	return map[string]any{"type": "record", "name": name, "fields": fields}
}

func array(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

// payloadFields are the Avro fields of each entity's record, after the
// system fields. Their names are the JSON names of the record types.
func payloadFields(e Entity) []map[string]any {
	str := optional("string")
	switch e {
	case Patient:
		return []map[string]any{
			field("firstName", str), field("lastName", str), field("dateOfBirth", str), field("gender", str),
			{"name": "identifiers", "type": array(record("Identifier", field("system", "string"), field("value", "string"))), "default": []any{}},
			field("address", optional(record("Address",
				map[string]any{"name": "line", "type": array("string"), "default": []any{}},
				field("city", str), field("state", str), field("postalCode", str), field("country", str)))),
			field("contact", optional(record("Contact", field("phone", str), field("email", str)))),
		}
	case Encounter:
		return []map[string]any{
			field("patientId", str), field("status", str), field("class", str), field("type", str),
			field("start", str), field("end", str), field("practitionerId", str), field("location", str),
		}
	case Observation:
		return []map[string]any{
			field("patientId", str), field("encounterId", str), field("code", str), field("codeSystem", str),
			field("display", str), field("value", optional("double")), field("valueString", str),
			field("unit", str), field("effectiveDateTime", str), field("status", str),
		}
	case Prescription:
		return []map[string]any{
			field("patientId", str), field("medicationId", str), field("medicationName", str),
			field("dosage", str), field("frequency", str), field("duration", str),
			field("prescriberId", str), field("status", str),
		}
	}
	return nil
}

// recordName is the Avro name of an entity's record: "Patient", ...
func recordName(e Entity) string {
	return string(e[0]-'a'+'A') + string(e[1:])
}

// Schema is the Avro schema (JSON text) of canonical.<e>.change and
// canonical.<e>.validated: an [Event] with the entity's record as payload.
func Schema(e Entity) string {
	fields := []map[string]any{
		field("id", "string"), field("sourceId", "string"), field("lastUpdated", "long"),
		field("version", "long"), field("sourceSystem", "string"),
	}
	fields = append(fields, payloadFields(e)...)
	s := map[string]any{
		"type": "record", "name": recordName(e) + "Event", "namespace": Namespace,
		"fields": []map[string]any{
			field("metadata", record("Metadata",
				field("eventId", "string"), field("eventType", "string"), field("eventSource", "string"),
				field("sourceSystem", "string"), field("correlationId", "string"), field("timestamp", "long"),
				map[string]any{"name": "conflictResolution", "type": "boolean", "default": false})),
			field("operation", "string"),
			map[string]any{"name": "version", "type": "long", "default": 0},
			field("payload", optional(map[string]any{"type": "record", "name": recordName(e), "fields": fields})),
			field("resolution", optional(record("Resolution",
				field("strategy", "string"),
				field("conflictingSystems", array("string")),
				field("fields", array(record("FieldDecision",
					field("field", "string"), field("winner", "string"), field("winnerTimestamp", "long"),
					field("loser", "string"), field("loserTimestamp", "long"))))))),
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
func Subject(topic string) string    { return topic + "-value" }
