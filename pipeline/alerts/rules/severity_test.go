package rules

import "testing"

// TestSeverities: most severe first, each at its index, an unknown one
// invalid. The processor's metric labels and its "more severe" test read
// this order.
func TestSeverities(t *testing.T) {
	want := [...]Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}
	if got := Severities(); got != want {
		t.Fatalf("Severities() = %v, want %v", got, want)
	}
	for i, s := range want {
		if s.Index() != i || !s.Valid() {
			t.Errorf("%s: index %d, valid %v; want %d, true", s, s.Index(), s.Valid(), i)
		}
	}
	for _, s := range []Severity{"", "urgent", "High"} {
		if s.Index() != -1 || s.Valid() {
			t.Errorf("%q: index %d, valid %v; want -1, false", s, s.Index(), s.Valid())
		}
	}
}
