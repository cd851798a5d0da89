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
//   - Rebalances are incremental and ownership is the assignment. The group
//     protocol is cooperative (KIP-429) with a co-partitioned, sticky
//     balancer: partition p of every consumed topic goes to one member, a
//     member keeps what it owns up to its share, and a partition that
//     changes owner is revoked in one rebalance and assigned in the next.
//     The partitions a runner works on are what the group's last sync gave
//     it, read from the sync itself, never pieced together from callbacks
//     (GroupTransactSession passes on only the first revoke between two
//     transaction ends, and a cooperative assign carries only what was
//     added). A revoke halts the tasks of the partitions it takes; tasks of
//     partitions kept are never halted and go on processing. Fencing and
//     offsets stay correct as under the eager protocol: any assignment
//     change aborts the open transaction (GroupTransactSession aborts it on
//     a revoke too), which rolls every store back to its last commit and
//     resets consumption to the committed offsets; a revoked partition's
//     next owner reads its offsets with a stable fetch (KIP-447), which
//     waits for this member's transaction to end, and its store from the
//     changelog's committed state; TxnOffsetCommit and the timers'
//     heartbeat are checked against the generation. A group that still has
//     members offering only the range protocol (an older carepipe) runs
//     eager until they are gone: every partition is revoked and prepared
//     again at each rebalance, as before.
//   - State is in place before a record is processed, outside transactions.
//     An assigned partition's fetching is paused while its task prepares its
//     stores: it waits until its changelog partitions have no open
//     transaction (last stable offset equal to the end, so a previous
//     owner's commit markers have all landed), then keeps a store that is
//     current, catches it up from its changelog position, or restores it
//     from the start. Stores outlive rebalances and rebuilt sessions; a
//     partition that comes back is always checked against its changelog.
//     While any assigned partition prepares, [Runner.Ready] is false.
//   - Every commit is fenced. Offsets go through TxnOffsetCommit, which the
//     group coordinator checks against the generation; a transaction that
//     only fires timers commits no offsets, so it first sends a heartbeat as
//     its member and generation, and aborts unless the group still has it.
//   - No empty transactions: a transaction begins only when a record arrives
//     or a punctuation is due, and one that produced nothing is aborted. At
//     a stop, one that holds only punctuations' work is aborted too (its
//     commit would hold the group leave up half a second); the timers it
//     fired are still due in the committed state, and fire again, once.
//   - Errors never lose data. A record that cannot be decoded or processed,
//     or whose processing panics, goes whole (key, value, headers) to the
//     pipeline's error topic in the same transaction, with headers naming the
//     error and its source coordinates; error messages never quote records.
//   - No record wedges a partition. An error record always fits its topic:
//     when the record whole would not (an input allows larger records than
//     the error topic), a truncated error record goes instead, with the
//     record's coordinates, sizes, SHA-256 and as much of its head as fits,
//     error-type [TypeTruncated], counted by carepipe_error_records_truncated_total.
//     The error topic's limit is read at start-up and checked against the
//     inputs' (a warning); a broker that refuses an error record lowers it.
//   - Headers follow what is derived. Each input's W3C trace context
//     (traceparent, tracestate) and the headers named by
//     [WithCarriedHeaders] are added to every record emitted while it is
//     processed, unless the record sets them itself; a repartitioned
//     record carries all its input's headers and an error record is its
//     input whole. Only what is valid is carried: one traceparent of the
//     W3C Trace Context format (lowercase hex, ids not all zeros); its
//     tracestate, only beside it, at most 512 bytes of list-members; a
//     header of WithCarriedHeaders, at most 8 KiB of UTF-8 text without
//     control characters. The rest is dropped and counted by
//     carepipe_invalid_headers_total{header}, as are correlation-id
//     headers over 256 bytes or not such text, which the processors take
//     as absent (envelope.CorrelationID). A punctuation has no input:
//     what it emits carries nothing.
//   - Processing is deterministic: processors get time from an injected
//     [Clock] and see only their record, their state and their global tables.
//   - Global tables are not in step with processing. A [GlobalTable] follows
//     its topic as fast as it is written, outside any transaction, and a
//     record's processing reads it as it is at that moment. A record
//     processed again (after an abort, a rebalance or a restart) is
//     enriched from the table as it is then, not as it was the first time:
//     a replay's outputs are deterministic given the table's state, but the
//     table is not part of the transaction, so they can differ from those
//     of the attempt that aborted. Ids derived from the input alone are
//     unaffected. After data loss on its topic a table is rebuilt aside and
//     swapped in whole; readers never see it half-read.
//
// # Where the exactly-once decision lives
//
// One pure function, decide in txn.go, says whether the poll loop begins a
// transaction, keeps it open, or ends it by committing or aborting, from
// what the commit interval holds: records polled, what was produced,
// whether it is doomed (a produce, a task, the flush or the timers'
// membership check failed), whether the assignment changed under it,
// whether the runner is stopping, whether it is due. TestDecide tables
// every case. The poll loop (runSession) and endTxn in session.go gather
// those facts and do the IO: the loop asks whether to end the transaction,
// and endTxn asks how, once its tasks have finished and its changelogs are
// written, and again after the flush and the timers' membership check,
// which can only turn a commit into an abort.
//
// # Files
//
// The runtime core, by data path:
//   - runner.go: [Runner] and [New]; Run's start-up (topics, limits, global
//     tables) and its loop of sessions; Health. What outlives a session:
//     the tasks and their stores, the limits, the health record.
//   - session.go: one consumer group session: its per-session state (the
//     session struct, created and dropped by runSession), its client
//     options, the poll loop, dispatch, punctuations, produce and endTxn.
//   - txn.go: the transaction decision (decide) and the open transaction.
//   - assignment.go: the rebalance callbacks, reconciling tasks to the
//     assignment, halting them; balancer.go: the co-partitioned sticky
//     group balancer and the record of each sync.
//   - task.go: a partition's task: its queue, activation and halt, and
//     processing a record or a punctuation behind store savepoints.
//   - prepare.go, restore.go: preparing a task's stores outside
//     transactions (keep, catch up or restore from the changelog).
//   - store.go: [Store], the keyed state with its undo log and changelog
//     position.
//   - queries.go: reads from other goroutines: Lookup, Scan, Owner,
//     AssignedPartitions, Global; hosts.go: which member answers queries
//     for a partition (QueryOwner), from the owners' addresses the group's
//     sync carries.
//   - limits.go: record limits (each output's max.message.bytes, the
//     producer's cap, tooLarge); errorrecord.go: error records, truncated
//     to fit the error topic; fetch.go: fetch limits for read_committed
//     readers on kfake.
//   - global.go, globalread.go: global tables and their readers.
//
// Around it: spec.go ([Spec]), context.go ([Context]), carry.go (headers
// carried from an input to what is emitted for it), options.go
// ([Option]), names.go ([Names]: an app id and renamed topics),
// topics.go (the topic layout, checking and creating topics), auth.go (authorization errors), metrics.go, log.go, clock.go, and
// harness.go ([Harness], a task driven without Kafka).
package pipeline
