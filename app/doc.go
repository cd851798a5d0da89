// Package app assembles carepipe from a Config: the Kafka connection (a real
// cluster, or an embedded kfake one with the simulated world and demo
// traffic), the pipelines, the HTTP endpoints and the live summary. main.go
// parses flags and environment into a Config and calls Run; the scenario
// tests build the same pipelines with the same constructors.
package app
