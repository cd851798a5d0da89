// Package bench holds carepipe's end-to-end benchmarks: whole pipelines, EOS
// on, against an in-process kfake cluster, each next to a pass-through
// pipeline measured in the same run so that ratios, not absolute numbers on
// a noisy machine, carry the result. BENCHMARKS.md records the figures and
// the commands.
package bench
