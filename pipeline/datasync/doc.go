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
package datasync
