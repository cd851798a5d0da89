package loadgen

import "time"

// Step is what one step of a load run measured: a fixed offered rate held
// for a while.
type Step struct {
	// Target is the rate asked for, records/s.
	Target float64 `json:"target"`
	// Offered is the rate actually produced during the step, records/s
	// (below Target when the producer could not keep up).
	Offered float64 `json:"offered"`
	// Achieved is the rate at which the pipeline committed input records
	// during the step, records/s.
	Achieved float64 `json:"achieved"`
	// Duration is how long the step ran.
	Duration time.Duration `json:"duration"`
	// Outputs counts the output records whose latency was measured.
	Outputs int64 `json:"outputs"`
	// End-to-end latency percentiles, from an input's timestamp to its
	// output read committed; zero when Outputs is zero.
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
	// CPUPerRecord is the process's CPU time (user and system) over the
	// step divided by the input records committed; zero when unknown
	// (against an external cluster the pipeline's CPU is not ours to see).
	CPUPerRecord time.Duration `json:"cpuPerRecord"`
	// PeakRSS is the highest resident set size sampled during the step,
	// bytes; zero when unknown.
	PeakRSS int64 `json:"peakRSS"`
	// LagEnd is the pipeline's consumer lag (records) at the end of the
	// step.
	LagEnd int64 `json:"lagEnd"`
	// Verdict is VerdictOK, VerdictSLO or VerdictLag.
	Verdict string `json:"verdict"`
}

// Verdicts of a step.
const (
	VerdictOK  = "ok"  // p99 within the SLO, lag bounded
	VerdictSLO = "slo" // p99 above the SLO
	VerdictLag = "lag" // consumer lag grew through the step: the pipeline fell behind
)

// Report is a load run: its settings and its steps in the order run.
type Report struct {
	// Pipeline is the pipeline loaded: alerts, priorauth or datasync.
	Pipeline string `json:"pipeline"`
	// Cluster is "embedded" or the seed brokers, comma-separated.
	Cluster string `json:"cluster"`
	// SLO is the p99 latency a step must stay within.
	SLO time.Duration `json:"slo"`
	// Started is when the run started.
	Started time.Time `json:"started"`
	// Settings are other settings worth printing (name -> value), such as
	// the workload's fractions, the commit interval, GOMAXPROCS.
	Settings map[string]string `json:"settings,omitempty"`
	// FindMax says the run searched for the highest sustainable rate
	// (--find-max); a fixed-rate run held the rate asked for and searched
	// for nothing.
	FindMax bool `json:"findMax"`
	// Steps in the order run.
	Steps []Step `json:"steps"`
	// MaxSustainable is what a find-max run found: the highest Offered
	// rate of a step with verdict ok, 0 if none. A fixed-rate run leaves
	// it 0, and the JSON leaves it out: it holds one rate, so it cannot
	// say which rate is the most the pipeline sustains.
	MaxSustainable float64 `json:"maxSustainable,omitempty"`
}
