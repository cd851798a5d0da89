// Package ops is the operator's tools over a pipeline's topics, the same
// ones Kafka Streams and Kafka Connect users reach for: describe a
// topology ([Describe], from the pipelines' [pipeline.Spec] values), read
// and replay an error topic ([ReadErrors], [Replay]), and reset a
// pipeline's consumer groups and internal topics ([PlanReset]), as
// kafka-streams-application-reset does.
//
// It works on []pipeline.Spec and a cluster's kgo options, and knows
// nothing of healthcare. Its invariants:
//
//   - Nothing it prints by default holds patient data: an error record's
//     key, value and headers leave only through [ErrorRecord] fields a
//     caller asks for (errors show).
//   - A replay is exactly once. The originals and the entries of the
//     error topic's replay log that name them are written in one
//     transaction, by a transactional id of the error topic's own, so a
//     second replay (or one that crashed) never sends an original twice.
//   - A reset refuses a group that has members: changing offsets under a
//     running pipeline would be undone by its next commit.
//   - Every reader reads read_committed, with [pipeline.FetchLimits].
package ops
