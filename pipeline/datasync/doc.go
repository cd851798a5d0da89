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
// # What this package exports
//
// Its contract and nothing else:
//
//   - names: of the pipeline and its stages, groups, stores, topics (and
//     the functions that name an entity's topics), the event sources and
//     the canonical topics' headers; [Entity] and [Entities], and which
//     entity a source or validated topic carries;
//   - construction: [Specs], or [NewCDC], [NewValidation] and
//     [NewReconciliation] with their options, and the configuration they
//     take: [Sources] (sources.yaml), [Policies] and [Strategy],
//     [ReconcileConfig]; each stage's Spec, run by a pipeline.Runner or,
//     in tests, a pipeline.Harness, and the counts of the demo's summary;
//   - the messages: the canonical [Event] with its records ([PatientRecord]
//     and the others, [Metadata], [Resolution]), [Operation], and [Fields];
//     the [Codec] that writes and reads them in the registry's wire format,
//     built by [Register] or [Lookup] (failing with [ErrNotRegistered]),
//     which fails a value of no known schema with [ErrUnknownSchema], and
//     [PlanSchemas];
//   - the data.sync.errors value: [ErrorRecord] writes it and
//     [OriginalValue] gives back the failed record's value;
//   - the read side: [QueryHandler] over the aggregates store (its answer
//     is the stored aggregate's JSON) and [AggregateKey], that store's key;
//     and [UnmarshalState] with [State.Materialize], which read the
//     validation store's versioned binary state (resolve.go), so that a
//     check of a restore (scenarios, the soak) reads what a restore loads.
//
// Mapping, validation rules, conflict resolution and its outcome, the
// reconciliation's aggregate and the schema registry's compatibility rules
// are internal: other packages reach them only through the Specs, which a
// pipeline.Harness runs as the runtime does.
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
