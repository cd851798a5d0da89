.PHONY: run test bench bench-print bench-failover vet ci

# The embedded demo: in-process Kafka, simulated world, demo traffic.
run:
	go run . run

test:
	go test ./...

# Every benchmark group; rewrites the generated section of BENCHMARKS.md
# (COUNT and ROUNDS from the environment or the command line:
# make bench COUNT=10).
bench:
	bash bench/write-benchmarks.sh

# The alert path's benchmarks, printed only: nothing is written.
bench-print:
	go test ./pipeline/alerts ./pipeline/envelope -run '^$$' -bench . -benchmem -count 5
	go test ./bench -run '^$$' -bench AlertsProcessorStage -benchmem -count 8
	bash bench/e2e-pairs.sh 12

# The failover benchmark of issue 19 (RELIABILITY.md, "Failover"): carepipe
# instances as processes against a kfake broker process, killed, stopped
# and restarted under load; about 16 minutes.
bench-failover:
	go run ./sim/cmd/failover -instances 2,3 -session-timeouts 10s,6s

vet:
	go vet ./...
	staticcheck ./...

ci:
	bash .ci/run
