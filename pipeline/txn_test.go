package pipeline

import "testing"

// TestDecide pins the exactly-once decision: when a transaction begins,
// stays open and ends, and whether it commits or aborts.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name string
		iv   interval
		want txnAction
	}{
		// None open.
		{"nothing polled, nothing due", interval{}, txnNone},
		{"records polled", interval{records: 3}, txnBegin},
		{"punctuation due", interval{punctuation: true}, txnBegin},
		{"records polled while stopping go into a transaction", interval{records: 3, stopping: true}, txnBegin},
		{"stopping with nothing polled", interval{stopping: true}, txnNone},
		{"punctuation due while stopping", interval{punctuation: true, stopping: true}, txnNone},

		// Open, not ending.
		{"open, not due", interval{open: true, records: 3, produced: 3}, txnKeepOpen},
		{"open and doomed, not due: ends when due", interval{open: true, records: 3, doomed: true}, txnKeepOpen},
		{"open with a punctuation only, not due", interval{open: true, produced: 2}, txnKeepOpen},

		// Open, due.
		{"due with records", interval{open: true, due: true, records: 3, produced: 3}, txnCommit},
		{"due with records that produced nothing commits their offsets", interval{open: true, due: true, records: 3}, txnCommit},
		{"due with timers fired", interval{open: true, due: true, produced: 2}, txnCommit},
		{"due and empty", interval{open: true, due: true}, txnAbort},
		{"due and doomed", interval{open: true, due: true, records: 3, produced: 3, doomed: true}, txnAbort},

		// Open, reassigned.
		{"reassigned", interval{open: true, reassigned: true, records: 3, produced: 3}, txnAbort},
		{"reassigned and due", interval{open: true, reassigned: true, due: true, records: 3, produced: 3}, txnAbort},

		// Open, stopping.
		{"stopping with records", interval{open: true, stopping: true, records: 3, produced: 3}, txnCommit},
		{"stopping and empty", interval{open: true, stopping: true}, txnAbort},
		{"stopping with timers fired only", interval{open: true, stopping: true, produced: 2}, txnAbort},
		{"stopping with timers fired and records", interval{open: true, stopping: true, records: 3, produced: 5}, txnCommit},
		{"stopping and doomed", interval{open: true, stopping: true, records: 3, produced: 3, doomed: true}, txnAbort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.iv); got != tc.want {
				t.Errorf("decide(%+v) = %s, want %s", tc.iv, got, tc.want)
			}
		})
	}
}
