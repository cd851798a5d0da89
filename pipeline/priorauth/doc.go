// Package priorauth is the prior-authorization orchestrator (DESIGN.md,
// "Prior authorization"): a durable state machine per prior authorization,
// driven by the events of the outside world (documentation, submission,
// the payer's determination, communication) and answering each with the
// next request.
//
// Files by concern: topics.go names the topics; events.go decodes the five
// input events; record.go is the state kept per prior authorization;
// transition.go the pure transition function; processor.go the glue to the
// runtime.
//
// Invariants:
//
//   - One owner per prior authorization. Its id is derived from the
//     prescription id; a prescription arrives keyed by anything and is
//     re-keyed through a repartition topic, so that the record and every
//     later event of one prior authorization live on one partition.
//   - Deterministic. Ids derive from inputs, timestamps are the events'
//     own (their dates, else the envelope's or the record's timestamp),
//     never the wall clock: a replay produces identical records.
//   - Idempotent. An event for a transition already made changes nothing
//     and emits nothing; an event the state machine does not allow goes to
//     priorauth.errors whole, with the reason.
//   - Fields a later event does not carry (payer, medication, patient) come
//     from the stored record, and the prescription's correlation id is on
//     every output.
package priorauth
