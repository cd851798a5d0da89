package rules

import "slices"

// Severity is an alert's severity; the processor delivers an alert on the
// channels its severity calls for.
type Severity string

// The severities.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// NumSeverities is the number of severities.
const NumSeverities = len(severities)

// severities are the severities, most severe first. Read-only.
var severities = [...]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// Severities are the severities, most severe first (the order of metric
// label values).
func Severities() [NumSeverities]Severity { return severities }

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool { return s.Index() >= 0 }

// Index is s's place in [Severities], 0 for the most severe; -1 for an
// unknown severity.
func (s Severity) Index() int {
	return slices.Index(severities[:], s)
}
