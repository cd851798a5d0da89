// Package priorauth is the prior-authorization orchestrator (DESIGN.md,
// "Prior authorization"): a durable state machine per prior authorization,
// driven by the events of the outside world (documentation, submission,
// the payer's determination, communication) and answering each with the
// next request.
//
// Files by concern: topics.go names the topics; events.go decodes the five
// input events; dates.go reads their dates; urgency.go matches medication
// categories; record.go is the state kept per prior authorization;
// transition.go the pure transition function; processor.go the glue to the
// runtime; query.go the query API.
//
// # What this package exports
//
// Its contract and nothing else: the names of the pipeline, its group,
// topics, stores and repartition topic; [New] with its options and
// [Config] (the payer table, urgent categories, deadlines, payer time
// zone); the [Processor]'s [Processor.Spec], run by a pipeline.Runner or,
// in tests, a pipeline.Harness, and its [Processor.Completed] count;
// [PriorAuthID], which names the prior authorization of a prescription;
// [Status], the vocabulary of priorauth.status and of the records; the
// [WorkflowSummary] that priorauth.workflow.completed carries; and
// [QueryHandler]. The stored record is internal: its JSON, which the
// priorauths store and its changelog hold, is the query API's answer
// (GET /api/priorauth/{id}), and readers decode the fields they need
// from it. Events, the transition function and its results, timers and
// dates are internal too: other packages reach them only through the
// Spec, which a pipeline.Harness runs as the runtime does.
//
// # Dates
//
// Every date field (submissionDate, determinationDate, expirationDate)
// takes the forms partners write: FHIR R4 date (2025-09-01, and the
// partial 2025-09 and 2025), dateTime and instant (2025-09-01T14:30:00Z,
// with or without seconds, with a fraction of up to nine digits), an
// offset as Z, +hh:mm, +hhmm (ISO 8601 basic, C's %z) or +hh, and X12's
// D8 date CCYYMMDD. A time without an offset (which FHIR forbids) and a
// date alone are read in the payer time zone ([Config.PayerTimeZone],
// carepipe run --payer-time-zone; default UTC). Anything else is an
// invalid record naming the field, in priorauth.errors.
//
//   - expirationDate: a date alone is the end of that day, as FHIR's
//     Period.end includes the whole of its last day. The approval holds
//     through the day's last instant and the expiry fires at the first
//     instant of the next day in the payer zone (2025-09-01 in
//     America/New_York expires at 2025-09-02T04:00:00Z); a month or a year
//     ends likewise. A date and time expires at that instant. The record
//     keeps expirationDate as sent and the instant as expiresAt.
//   - submissionDate, determinationDate: a date alone names the day, not
//     the hour. The event's time is the record's own (its envelope
//     timestamp, else its Kafka timestamp) when that falls within the day,
//     else the nearest instant of the day: its first when the record is
//     older, its last when newer. So the decision deadline of a
//     submission dated by day runs from when it was reported, not from
//     midnight (which would breach up to a day early), and replays give
//     the same time.
//
// # Late events
//
// An event the case has moved past is not an error. A repeat of a
// transition already made is a duplicate (carepipe_priorauth_duplicates_total).
// A late event, one that can no longer change the case, is kept as a late
// entry of the status history (late: true, the status it found, the
// event's date and what it said), emits nothing, and counts in
// carepipe_priorauth_stale_events_total{kind="determination"|"communication"}:
// a PENDED after a final determination (a pend cannot follow a decision),
// a different final determination dated no later than the one made, and a
// communication report after the approval expired (the case stays EXPIRED
// and completes no workflow). Workflow summaries leave late entries out.
// priorauth.errors keeps what cannot be processed: undecodable or invalid
// records, events for an unknown prior authorization, events too early
// for the state (a communication report before a final determination),
// and a final determination dated after a different final one, which
// would reverse a decision possibly communicated already and needs a
// person.
//
// # Urgency
//
// A medication is urgent when its category matches an entry of
// [Config.UrgentCategories] (carepipe run --urgent-categories) after both
// are normalized by categoryKey (urgency.go): case, spaces, hyphens and underscores,
// and plurals do not count. Synonyms are entries of their own; the
// built-in list ([DefaultUrgentCategories]) is antibiotics,
// anticoagulants and insulins with theirs.
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
//     and emits nothing; a late event is recorded and emits nothing; an
//     event that cannot be processed goes to priorauth.errors whole, with
//     the reason.
//   - Fields a later event does not carry (payer, medication, patient) come
//     from the stored record, and the prescription's correlation id is on
//     every output.
package priorauth
