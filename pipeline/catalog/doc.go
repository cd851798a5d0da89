// Package catalog is carepipe's one table of pipelines: for each, its
// name, how it is built (one constructor shape for all four), the specs
// its topics are planned from, and the query routes it serves. `carepipe
// run`, `topics`, `loadgen`, the soak and the scenario tests all build a
// pipeline from here, as goka builds a processor with one constructor in
// main and in tests; only the [Settings] differ.
//
// Invariants:
//   - A pipeline's [Pipeline.Specs] are exactly the specs of the stages
//     [Pipeline.Build] returns with the same Settings (datasync's without
//     a codec), so that what `topics plan` checks is what runs.
//   - Settings' app id and renamed topics reach every stage through
//     [pipeline.Names]; an empty app id and no renames are today's names.
//
// Each spec's [pipeline.Spec.Topics] names its topics by role (input,
// output, error, global, changelog, repartition): what describing a
// pipeline needs.
package catalog
