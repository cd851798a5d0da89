.PHONY: run test bench vet ci

# The embedded demo: in-process Kafka, simulated world, demo traffic.
run:
	go run . run

test:
	go test ./...

bench:
	go test ./pipeline/alerts ./pipeline/envelope -run '^$$' -bench . -benchmem -count 5
	go test ./bench -run '^$$' -bench AlertsProcessorStage -benchmem -count 8
	bash bench/e2e-pairs.sh 12

vet:
	go vet ./...
	staticcheck ./...

ci:
	bash .ci/run
