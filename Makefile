.PHONY: run test bench vet ci

# The embedded demo: in-process Kafka, simulated world, demo traffic.
run:
	go run . run

test:
	go test ./...

bench:
	go test ./pipeline/alerts -run '^$$' -bench . -benchmem -count 5
	go test ./bench -run '^$$' -bench EndToEnd -benchtime 1x -count 5

vet:
	go vet ./...
	staticcheck ./...

ci:
	bash .ci/run
