package pipeline

import "github.com/twmb/franz-go/pkg/kgo"

const (
	// fetchPartitionBytes is what one partition may return per fetch:
	// Kafka's (and kfake's) default max.message.bytes, so that a batch at
	// the default limit, which is what our inputs and repartition topics
	// hold, comes back without relying on the first-batch exemption. It is
	// franz-go's default (1 MiB) plus the 12 bytes of batch framing that
	// the broker default allows beyond it.
	fetchPartitionBytes = 1_048_588

	// fetchBatchBytes is the largest batch a consumed topic holds unless
	// its max.message.bytes says more (the runner reads its inputs': see
	// fetchLimitsFor): carepipe's error topic limit, which its own
	// internal topics stay under.
	fetchBatchBytes = errorTopicMaxBytes

	// kgoMaxReadBytes is the most franz-go lets BrokerMaxReadBytes be, and
	// it refuses a FetchMaxBytes above BrokerMaxReadBytes; kgoReadBytes is
	// its default BrokerMaxReadBytes (kgo/config.go, validate and
	// defaultCfg).
	kgoMaxReadBytes = 1 << 30
	kgoReadBytes    = 100 << 20

	// fetchGuardPartitions is the most consumed topic-partitions for which
	// FetchLimits can keep a kfake fetch response under its limit.
	fetchGuardPartitions = (kgoMaxReadBytes - fetchBatchBytes) / (fetchPartitionBytes + fetchBatchBytes)
)

// FetchLimits are the fetch limits of a read_committed consumer of the
// given number of topic-partitions. They keep a kfake fetch response from
// reaching its request-wide byte limit (FetchMaxBytes), because kfake loses
// aborted transactions there. The runner gives them to its session
// consumer, its changelog restores and its global-table readers; a test
// or tool that reads committed records from kfake (the scenarios' readers)
// needs them as well, else it may count aborted records as output.
//
// The fault, in kfake v0.0.0-20260918054303-01f206a7e32c, 01_fetch.go,
// Cluster.handleFetch: the response loop adds each batch's bytes to a
// request-wide count before it checks the count (line 448), and when the
// count passes MaxBytes with something already in the response it leaves
// the loop over partitions altogether ("break full"). That skips the
// aborted-transaction lookup at lines 466-485 for the partition being
// filled, although the batches it already took stay in the response. A
// read_committed client then has no aborted list for those batches and
// returns an aborted transaction's records as if committed. The limit that
// franz-go sends by default (50 MiB, 1 MiB a partition) is reached once 50
// partitions of a response have a megabyte of backlog each, or fewer with
// large batches, since a partition also counts a batch it does not return
// (below).
//
// What the count holds, and so the bound: only record-batch wire bytes
// (control batches included, response framing not). A partition adds its
// batches while its own count stays within its PartitionMaxBytes, and then
// adds to the request-wide count the bytes of the one batch that does not
// fit (line 451 breaks only after line 448 counted it). The first batch of
// the whole response is taken whatever its size: both checks exempt it
// while nothing has been added (batchesAdded is request-wide, so every
// other partition gets nothing when its first batch is over its limit: it
// returns nothing, and is harmless, until it comes first in a response).
// A batch is at most its topic's max.message.bytes (00_produce.go:143).
// So a response counts at most, for n partitions,
//
//	n × (fetchPartitionBytes + fetchBatchBytes) + fetchBatchBytes
//
// (each partition's share plus the batch that did not fit, and the first
// batch's exemption), which FetchLimits asks for as FetchMaxBytes: the
// count can never pass it, so the response is never cut. For 72 partitions
// that is 364 MiB, while what kfake returns stays within n ×
// fetchPartitionBytes plus one batch (76 MiB). A request holds only the
// partitions whose leader is that broker, so counting them all is an upper
// bound with several brokers. The bound assumes that no consumed topic
// allows batches over fetchBatchBytes, and holds up to fetchGuardPartitions
// (203) partitions: beyond them FetchMaxBytes stays at franz-go's ceiling
// of 1 GiB, and a response could again be cut if nearly every partition
// held a full share and then a batch of several megabytes.
//
// Real Kafka has no such fault (each partition's aborted list comes from
// its own log read, whatever the request-wide limit) and the numbers are
// safe there: the broker answers with at most the smaller of FetchMaxBytes
// and its own fetch.max.bytes (KIP-541, 55 MiB by default), and at most
// fetchPartitionBytes a partition besides the first batch, so a response
// stays within 55 MiB (50 MiB with franz-go's defaults) unless an operator
// raised fetch.max.bytes, and then within n × fetchPartitionBytes and one
// batch; franz-go holds one response per broker. A batch larger than
// fetchPartitionBytes still comes back whole when it is the first of a
// response (KIP-74), as it did before: on Kafka, a fetch session moves the
// partitions that returned data to the end, so it soon is; on kfake it waits
// until it comes first in a response, which the other partitions' backlog
// can delay but not prevent. BrokerMaxReadBytes, franz-go's sanity limit on
// any response it reads, must be at least FetchMaxBytes for the client to
// start; it is set to FetchMaxBytes, or its default when that is more.
// These options come after the ones passed with WithKafka, so they replace
// any fetch limits given there.
//
// TestSessionFetchReturnsNoAbortedRecords shows the fault with franz-go's
// defaults, and that the limit without the term for the batch that does
// not fit (n × fetchPartitionBytes) is not enough.
func FetchLimits(consumedPartitions int) []kgo.Opt {
	return fetchLimitsFor(consumedPartitions, fetchBatchBytes)
}

// fetchLimitsFor is FetchLimits for consumed topics whose batches may be
// as large as maxBatch (their largest max.message.bytes): an input that
// allows larger records than fetchBatchBytes raises the bound.
func fetchLimitsFor(consumedPartitions, maxBatch int) []kgo.Opt {
	n := int64(max(consumedPartitions, 1))
	b := int64(max(maxBatch, fetchBatchBytes))
	limit := min(n*(fetchPartitionBytes+b)+b, kgoMaxReadBytes)
	return []kgo.Opt{
		kgo.FetchMaxPartitionBytes(fetchPartitionBytes),
		kgo.FetchMaxBytes(int32(limit)),
		kgo.BrokerMaxReadBytes(int32(max(limit, kgoReadBytes))),
	}
}
