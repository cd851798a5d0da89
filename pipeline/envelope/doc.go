// Package envelope owns the message envelope every carepipe pipeline reads
// and writes (DESIGN.md, "Message envelope"):
//
//   - Inputs are either {"metadata":{...},"payload":{...}} or the bare
//     payload. [Parse] tells them apart by the presence of a "payload" key
//     and returns the metadata and the payload's bytes in one pass, without
//     decoding the payload.
//   - The correlation id of an input is its correlation-id header, else its
//     metadata.correlationId, else derived from the record's topic, partition
//     and offset ([CorrelationID]), so a replay derives the same id. An id
//     longer than [MaxCorrelationIDBytes], or that is not text (UTF-8
//     without control characters), counts as absent: it is replaced, and
//     the runtime counts the replacement of a header's.
//   - W3C trace context ([HeaderTraceparent], [HeaderTracestate]) is passed
//     through, not interpreted: the runtime copies a valid traceparent
//     ([ValidTraceparent]) and its tracestate ([ValidTracestate]) from each
//     input to the records derived from it, and drops invalid ones (see
//     the pipeline package's "Carried headers").
//   - Every output carries the headers correlation-id, event-source and
//     event-type ([OutputHeaders]).
//
// Invariants: decoding errors never quote the input (they give a byte
// offset, see [Error]); nothing here reads a clock or randomness.
package envelope
