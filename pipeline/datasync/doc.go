// Package datasync is healthcare data synchronization (DESIGN.md, "Data
// synchronization"): three pipelines that take change events from source
// systems to validated canonical records that every target system has
// acknowledged.
//
//   - cdc (group healthcare-data-sync-cdc) maps each source's records, in the
//     seed's field variants, as Debezium change envelopes or as rows
//     flattened by Debezium's ExtractNewRecordState, JSON or Avro in the
//     schema registry's wire format, to canonical Patient, Encounter,
//     Observation and Prescription changes, Avro in the schema registry's
//     wire format, on canonical.<entity>.change. A tombstone is no change
//     (testdata/debezium/README.md says how Debezium's records are read).
//     Which topics it reads and where each canonical field is in their
//     rows is configuration ([Sources], sources.yaml built in).
//   - validation (healthcare-data-sync-validation) checks each change and
//     resolves it against the last accepted state of its entity, held in a
//     store: last-writer-wins on the source's own timestamp, survivorship by
//     source priority per field, or field-level merge, configured per entity
//     type. The outcome depends only on the changes, not on when or how often
//     they arrive. Valid changes go to canonical.<entity>.validated; invalid
//     and stale ones to data.sync.errors, whole.
//   - reconciliation (healthcare-data-sync-reconciliation) folds the validated
//     streams into per-entity aggregates (the patient read model served on
//     /api/patients/{id}) and the target systems' acknowledgements into
//     reconciliation.<entity>.completed, or .overdue when a version stays
//     unacknowledged past its deadline.
//
// # Serdes and the schema registry
//
// Values of canonical.<entity>.change and .validated are Avro in the schema
// registry's wire format under the subject <topic>-value (the registry's
// TopicNameStrategy), written with the schemas of schemas.go: timestamps are
// timestamp-millis longs, dates and codes strings whose format each field's
// doc gives. [Register] registers the schemas at start-up, as a Confluent
// serializer with auto.register.schemas=true does; [Lookup], for a registry
// whose schemas someone else registers (auto.register.schemas=false), only
// looks up the version equal to carepipe's and fails naming each subject
// that lacks it. Neither gives a subject a looser compatibility level than
// the registry's global one (compat.go).
//
// Keys of the canonical and reconciliation topics are plain UTF-8 strings,
// the entity's canonical id, as Kafka's StringSerializer writes and its
// StringDeserializer reads them: no magic byte, no schema id.
// (data.sync.errors keeps the failed record's own key, whatever it was.) So no
// <topic>-key subject is registered: a key subject tells readers that keys
// are in the registry's wire format, which these are not, and a Confluent
// serializer registers one only for keys it serializes with a schema.
package datasync
