package pipeline

import "testing"

// TestPlanRestore pins the decision a task makes before it reads a
// changelog partition.
//
// Hole 4 of issue 16 is its first rows. On a real cluster the transaction
// coordinator writes a committing transaction's markers to each partition
// independently. A previous owner's last transaction can therefore have its
// offset commit visible (its marker on __consumer_offsets landed, so this
// instance's stable offset fetch returns and the group consumer starts)
// while its changelog partition still has the transaction open: last
// stable offset 40, end 45, marker to come at 45. Restoring up to 40 would
// skip the committed writes at 40..44, and the input records behind them
// would never be replayed, because their offsets are committed. kfake
// writes every marker before EndTxn returns, so no test on it can show the
// gap; the decision is tested here instead: as long as the stable offset
// is short of the end, the task waits, whatever else holds.
func TestPlanRestore(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		start, stable, end, pos int64
		fresh                   bool
		want                    restoreAction
	}{
		{"open transaction, store unknown", 0, 40, 45, -1, false, restoreWait},
		{"open transaction, store current", 0, 40, 45, 40, true, restoreWait},
		{"open transaction, empty log", 0, 0, 3, -1, false, restoreWait},
		{"stable, never restored", 0, 45, 45, -1, false, restoreFull},
		{"stable, empty log", 0, 0, 0, -1, false, restoreFull},
		{"stable, nothing past the position", 0, 46, 46, 46, true, restoreKeep},
		{"stable, records past the position", 0, 60, 60, 46, true, restoreCatchUp},
		{"position too old to trust", 0, 46, 46, 46, false, restoreFull},
		{"records the position needs were deleted", 50, 60, 60, 46, true, restoreFull},
		{"log cut back below the position", 0, 30, 30, 46, true, restoreFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := planRestore(tc.start, tc.stable, tc.end, tc.pos, tc.fresh); got != tc.want {
				t.Errorf("planRestore(start %d, stable %d, end %d, pos %d, fresh %v) = %v, want %v",
					tc.start, tc.stable, tc.end, tc.pos, tc.fresh, got, tc.want)
			}
		})
	}
}
