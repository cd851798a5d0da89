// Package alerts is the clinical alerts pipeline (DESIGN.md, "Clinical
// alerts"): it reads FHIR R4 Observations, evaluates threshold rules and
// NEWS2 on them, keeps each patient's open alerts, and writes alert
// versions enriched with the patient's context from the fhir.Patient global
// table, a notification-history record per event, and one outbox record per
// delivery channel chosen by severity.
//
// What it reads of an Observation: the value in valueQuantity (with its
// UCUM unit), valueInteger or a component; valueCodeableConcept (ACVPU
// answers); dataAbsentReason (no value, no alert, no error); the status.
// Valid FHIR that gives the rules nothing to read (a panel of hasMember
// only, such as FHIR R4's vitals-panel example, or a valueString,
// valueBoolean, valueRange, valueRatio, or a valueCodeableConcept that is
// no ACVPU or oxygen answer) is skipped and counted per reason in
// carepipe_alerts_skipped_total: the error topic holds only records that
// could not be processed.
// A rule names a clinical concept (glucose, SpO2, body temperature, ...)
// or LOINC codes, and the concept table lists every code a hospital sends
// for it; NEWS2 reads its parameters through the same table. A rule names
// its unit and values in another unit are converted by a small table; a
// value that cannot be converted, or has no unit where its code does not
// fix one, is an error record, never a silent miss. So is a value outside
// its concept's physiological limits (a negative heart rate, an SpO2
// above 100 %, a body temperature of 5 °C): the limits, and the published
// extremes they come from, are in the concept table. A cancelled or
// entered-in-error observation is not checked, so that it retracts.
//
// Event time is the observation's effective time (else issued, else the
// envelope's or the record's timestamp when it has none). A time of day
// sent without a time zone offset, which FHIR forbids but hospital
// interfaces send, is read in the site's time zone ([WithSiteTimeZone];
// carepipe run --site-time-zone, config siteTimeZone); without one it is
// an error record, as is an effective time that does not parse: either
// would otherwise move the reading in time unseen. A code system sent by
// its HL7 OID is the system of that OID.
//
// An alert has versions on clinical.alerts, all with one alert id: raised
// (provisional for a preliminary result), replaced (amended or corrected
// and still across the threshold, or made final), retracted (entered in
// error, cancelled, or amended below the threshold). Repeats of a rule for
// a patient inside its suppression window (event time) are counted on the
// open alert, not notified, unless more severe or, for NEWS2, at a higher
// RCP clinical response level. NEWS2 keeps each patient's latest reading
// of every parameter (a converted one rounded to the chart's precision)
// and alerts on the RCP chart's thresholds, listing the sub-scores. A
// patient keeps at most 32 open alerts, and none notified more than 24
// hours (event time) before the observation at hand: an alert that has
// left can no longer be replaced or retracted (a late amendment raises it
// again, as version 1), nor suppress repeats.
//
// NEWS2 follows corrections. Each open news2 alert keeps its basis, the
// readings (parameter, value, time, observation id) its current version
// was scored from. A later version of an observation (amended, corrected,
// amended to a dataAbsentReason, entered in error, cancelled) replaces or
// removes its readings in every basis that holds them, and in the
// readings in force where it made them; each alert so touched is scored
// again from its basis alone: retracted if it no longer calls for a
// response, replaced if its score changed, left as it is otherwise. So a
// correction reaches an alert raised on another observation, and a
// correction older than the latest reading of its parameter re-scores the
// alerts it fed while the reading in force stays the newer one. A score
// that did not alert is not revisited, except the corrected observation's
// own, scored afresh as when it arrived; a news2 alert from a state
// written before bases (version 2) follows only its own observation.
//
// The rule pack, its YAML form, the concept table, the unit conversions
// and the severities are package [rules], which this package imports and
// which never imports it.
//
// What this package exports is its contract and nothing else: the names
// of the pipeline, its group, topics, store and repartition topic, and the
// event-source and event-type headers of its outputs; [New] with its
// options ([DefaultMaxRecordBytes] is the default record limit); the
// [Processor]'s [Processor.Spec], run by a pipeline.Runner or, in tests,
// a pipeline.Harness, and its [Processor.AlertsTotal], a figure of the
// demo's summary; the records consumers decode, [Alert] (with the NEWS2
// outputs, [NEWS2Detail] and [NEWS2SubScore]), [HistoryRecord] and
// [Notification], with their vocabularies ([Channel], the Status and
// Event values); and [MRNSystem], the identifier system a Patient's
// medical record number is read from. The stored state (a patient's open
// alerts and NEWS2 readings, in the versioned binary format state.go
// documents), the decoded Observation and Patient, the rule index, NEWS2
// scoring and what one observation produces are internal: other packages
// reach them only through the Spec, which a pipeline.Harness runs as the
// runtime does, and through the records it writes.
//
// Files by concern: fhir.go decodes Observations and Patients; ruleset.go
// indexes a rule pack by code; concepts.go indexes the concept table and
// maps concepts to NEWS2 parameters; news2.go the NEWS2 chart; evaluate.go
// what an observation says (rules fired, NEWS2 readings); lifecycle.go the
// per-patient state machine; alert.go and encode.go the records written
// and the state's encoding; processor.go the glue to the runtime.
//
// Invariants:
//
//   - Deterministic. An alert's id is the observation id and the rule id;
//     its timestamps and windows are event time, never the wall clock. A
//     replay produces identical records; an observation that says again
//     what the state already holds is a duplicate and produces nothing.
//   - State has one owner. An observation that arrives keyed by anything
//     other than its patient id, or on a partition that does not own that
//     patient, is re-keyed through the observations-by-patient repartition
//     topic before it touches the patient-alerts store.
//   - No patient data leaves except in output records: errors, metric
//     labels and logs carry fixed strings and enum values only.
//   - The common path is cheap: one validating scan that keeps only the
//     fields rules read, and for a NEWS2 reading a state update that
//     leaves the open alerts undecoded.
package alerts
