// Package scenarios holds end-to-end scenario tests: real pipelines, built
// with the same constructors as the binary, against an in-process kfake
// cluster from sim, checked by independent read_committed consumers.
package scenarios
