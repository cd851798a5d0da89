// Package kafkatest is carepipe's Kafka test kit: what the tests of every
// package that talks to a broker used to copy for themselves.
//
//   - [NewCluster] and [Client]: the tuned embedded cluster of package sim
//     (sim.NewCluster: sub-second sessions and heartbeats, short metadata
//     ages and retry backoffs), and clients of it, closed when the test
//     ends. The tuning lives in sim only, which the soak, the failover
//     drill and the embedded broker use too.
//   - [ReadToEnd] and [ReadToEndAt]: read topics with an independent
//     consumer up to the end they have now, read_committed (the last stable
//     offset) or read_uncommitted (the high watermark), with the runtime's
//     fetch limits (pipeline.FetchLimits), which keep kfake from returning
//     aborted records to a read_committed reader. [ReadUntil] and [ReadN]
//     read read_committed until the records read satisfy a condition.
//   - [CaughtUp] and [WaitCaughtUp]: whether a group has committed past the
//     last data record of its inputs and repartition topics, transactional
//     ones included (where the end offset is a commit marker's, not a
//     record's).
//   - [StartRunner]: runs a pipeline.Runner in a goroutine owned by the
//     test; [Instance.Stop] cancels it and returns Run's error, and the
//     test's cleanup stops what the test did not, failing the test if Run
//     failed.
//   - [Eventually]: polls a condition that no event announces (a group's
//     committed offsets, a runner's assignment) on a ticker until a
//     deadline. Nothing here sleeps to synchronise.
//
// Every wait is bounded: a context without a deadline gets [DefaultWait].
// Failures go to the test with t.Fatalf from the test's goroutine.
//
// Only tests import this package; production code never does
// (TestOnlyTestsImportTheKit checks every non-test file of the module).
// Tests inside package pipeline and package sim cannot import it (the kit
// imports both): they use sim.NewCluster directly.
package kafkatest
