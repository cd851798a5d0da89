#!/usr/bin/env bash
# Runs the end-to-end benchmark as N interleaved rounds (pass-through, then
# alerts with the seed's rules, then alerts with the built-in pack, in one
# process each time), so that the figures of a round share
# the machine's state of the moment: on a shared 2-core machine a round's
# ratios are steadier than figures taken minutes apart. Prints each round's
# ratios and benchstat's medians.
#
#   bash bench/e2e-pairs.sh [pairs] [out-file]
set -euo pipefail
pairs=${1:-12}
out=${2:-$(mktemp)}
benchstat=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$(dirname "$0")/.."
go test -c -o "$dir/bench.test" ./bench
: >"$out"
for _ in $(seq "$pairs"); do
	"$dir/bench.test" -test.run '^$' -test.bench '^BenchmarkEndToEnd$' -test.benchtime 1x -test.benchmem | grep '^Benchmark' >>"$out"
done
echo "pass-through obs/s, alerts (seed rules) obs/s, ratio, alerts-full (built-in pack) obs/s, ratio (sorted by the first ratio):"
awk '{ for (i = 2; i < NF; i++) if ($(i + 1) == "obs/s") v = $i }
	/passthrough/ {p = v} /alerts-2/ {a = v} /alerts-full/ {printf "%d %d %.2f %d %.2f\n", p, a, a / p, v, v / p}' "$out" | sort -k3 -n
"${benchstat[@]}" "$out"
