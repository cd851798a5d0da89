package pipeline

import "time"

// txnAction is what the poll loop does with a commit interval's
// transaction: see decide.
type txnAction uint8

const (
	// txnNone: no transaction is open, and none is needed.
	txnNone txnAction = iota
	// txnBegin: begin one, before handing out what needs it.
	txnBegin
	// txnKeepOpen: the open transaction goes on collecting.
	txnKeepOpen
	// txnCommit: end the open transaction by committing it.
	txnCommit
	// txnAbort: end the open transaction by aborting it, which rolls every
	// store back to its last commit and rewinds consumption to the
	// committed offsets.
	txnAbort
)

func (a txnAction) String() string {
	switch a {
	case txnNone:
		return "none"
	case txnBegin:
		return "begin"
	case txnKeepOpen:
		return "keep open"
	case txnCommit:
		return "commit"
	case txnAbort:
		return "abort"
	}
	return "unknown"
}

// interval is what the poll loop knows of the commit interval when it
// decides: what its transaction holds and what happened around it.
type interval struct {
	// open is whether a transaction is open.
	open bool
	// records is how many records were polled into the open transaction
	// or, with none open, have just been polled.
	records int
	// punctuation is whether a punctuation is due and some task takes it.
	punctuation bool
	// produced counts what the open transaction produced: outputs, error
	// records and, once its tasks have finished, changelog writes.
	produced int64
	// doomed is whether the open transaction must not commit: a produce
	// of it or a task failed, its flush failed, or the group no longer
	// has this member for a commit of timers only.
	doomed bool
	// stopping is whether the runner is shutting down.
	stopping bool
	// reassigned is whether the assignment changed since the open
	// transaction began: what it read and wrote may belong to partitions
	// another member owns now.
	reassigned bool
	// due is whether the open transaction reached its commit interval or
	// its record cap.
	due bool
}

// decide is the exactly-once decision: whether to begin a transaction,
// keep the open one open, or end it by committing or aborting it. It is a
// pure function of what the interval holds; the poll loop gathers that
// and does the IO. A transaction ends when it is due, when the assignment
// changes under it, or when the runner stops; how it ends is asked again
// as the facts become final: once its tasks have finished and its
// changelogs are written, and after its flush and the membership check of
// a commit of timers only, which can only turn a commit into an abort.
func decide(iv interval) txnAction {
	if !iv.open {
		// Records polled always go into a transaction, even while
		// stopping: the client's position has moved past them, and only a
		// transaction's end settles it (a commit, or an abort, which
		// rewinds it). A punctuation does not begin one while stopping:
		// it would be aborted (see below).
		if iv.records > 0 || iv.punctuation && !iv.stopping {
			return txnBegin
		}
		return txnNone
	}
	if !iv.due && !iv.reassigned && !iv.stopping {
		return txnKeepOpen
	}
	switch {
	case iv.doomed, iv.reassigned:
		return txnAbort
	case iv.records == 0 && iv.produced == 0:
		// Empty (a punctuation with nothing due): committing it stalls
		// franz-go for half a second (DESIGN.md §4), and an abort
		// loses nothing.
		return txnAbort
	case iv.records == 0 && iv.stopping:
		// Punctuations only (timers fired), and the runner stops. Its
		// commit would carry no offsets, after which franz-go holds the
		// session half a second (it cannot tell that the broker has
		// KIP-447) and the group leave waits that out; it would also
		// need the membership check first. An abort is exactly-once
		// too: the firings and the state writes that marked the timers
		// done roll back together, so the partition's next owner (or
		// this instance, restarted) finds the timers still due in the
		// committed state and fires them again: once, not twice.
		return txnAbort
	}
	return txnCommit
}

// txn is the open transaction, as the poll loop keeps it.
type txn struct {
	started  time.Time
	deadline time.Time // its commit interval's end
	records  int       // polled into it
	epoch    uint64    // the assignment it began under
}
