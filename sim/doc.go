// Package sim is the simulated world around carepipe: everything the embedded
// demo, the scenario tests and the benchmarks need that is not carepipe itself.
//
// It owns:
//
//   - the embedded Kafka cluster ([NewCluster]), an in-process kfake cluster
//     listening on loopback only, with defaults and client options
//     ([Cluster.ClientOpts]) tuned so that group joins, metadata refreshes
//     and retries after an injected fault take milliseconds, not seconds;
//     [Cluster.Kafka] exposes the kfake cluster for fault injection;
//   - deterministic, seeded workload generators ([NewAlerts] for the clinical
//     alerts pipeline) that produce input records together with their ground
//     truth: which rules each record must trip, and which records are poison
//     and must reach the error topic unchanged;
//   - bounded producer helpers for feeding those records into a cluster
//     ([Produce] all at once, [Feed] paced for the demo);
//   - a schema registry that fails for a while ([RegistryOutage], around
//     franz-go's in-memory srfake).
//
// Invariants:
//
//   - Determinism: a generator's output (topic, key, value, headers) is a pure
//     function of its configuration. Nothing reads the wall clock or global
//     randomness; record i comes from a PCG source seeded with (Seed, i), so
//     the same seed gives byte-identical records in any order and from any
//     number of goroutines. Kafka record timestamps are left unset (the
//     producer stamps them): see [ObservationRecord].
//   - Independence: sim does not import the pipeline runtime. Ground truth is
//     computed here from the seed document's default rules, not by calling the
//     code under test.
//   - Boundedness: every load loop is bounded in count ([Feed] requires a
//     maximum) and in time (a context); every goroutine a helper starts is
//     waited for before it returns.
//
// sim is the outside world, so it may use tickers and real time ([Feed]); the
// processing core may not.
package sim
