// Package alerts is the clinical alerts pipeline (DESIGN.md, "Clinical
// alerts"): it reads FHIR R4 Observations, evaluates threshold rules on
// them, enriches each alert with the patient's context from the fhir.Patient
// global table, and writes the alert, a notification-history record and one
// outbox record per delivery channel chosen by severity.
//
// Files by concern: fhir.go decodes Observations and Patients; rules.go holds
// rules, their evaluation and their YAML form; alert.go the records written
// and the per-patient dedupe state; processor.go the glue to the runtime.
//
// Invariants:
//
//   - Deterministic. An alert's id is the observation id and the rule id;
//     its timestamp is the observation's event time, never the wall clock.
//     A replay produces identical records, and an alert id already in the
//     patient's recent window is a duplicate and produces nothing.
//   - State has one owner. An observation that arrives keyed by anything
//     other than its patient id, or on a partition that does not own that
//     patient, is re-keyed through the observations-by-patient repartition
//     topic before it touches the patient-alerts store.
//   - No patient data leaves except in output records: errors, metric
//     labels and logs carry fixed strings and enum values only.
//   - The non-alerting path is cheap: one validating scan that keeps only
//     the fields rules read, no maps, no output encoding, no allocation.
package alerts
