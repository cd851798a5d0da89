// Package pipeline is carepipe's exactly-once stream-processing runtime. It
// knows nothing of healthcare: a [Spec] names a consumer group, its input and
// output topics, its keyed state stores, its global tables and a [ProcessFunc];
// a [Runner] runs it against Kafka.
//
// Invariants the runtime keeps:
//
//   - Exactly once. Every output record, every state changelog write and the
//     consumer offsets of one commit interval go into one Kafka transaction
//     (franz-go's GroupTransactSession, read_committed, stable offset fetches).
//     A transaction that aborts, or whose outcome is unknown, is never treated
//     as committed: in-memory state written since the last commit is rolled
//     back and consumption resumes from the committed offsets. An unknown
//     outcome tears the whole session down and rebuilds it from the broker.
//   - Partition affinity. All co-partitioned input topics' partition p belong
//     to one task: one goroutine, records in offset order per topic-partition,
//     a bounded queue, and partition p of every state store.
//   - No empty transactions: a transaction begins only when a record arrives.
//   - Errors never lose data. A record that cannot be decoded or processed,
//     or whose processing panics, goes whole (key, value, headers) to the
//     pipeline's error topic in the same transaction, with headers naming the
//     error and its source coordinates; error messages never quote records.
//   - Processing is deterministic: processors get time from an injected
//     [Clock] and see only their record, their state and their global tables.
package pipeline
