package sim

import (
	"container/heap"
	"context"
	"time"
)

// delayQueue holds tasks until they are due, earliest first. Tasks due at
// the same time leave in the order they were pushed, so that equal delays
// keep arrival order. It is owned by one goroutine.
type delayQueue[T any] struct {
	h   delayHeap[T]
	seq uint64
}

// push holds task until due.
func (q *delayQueue[T]) push(due time.Time, task T) {
	q.seq++
	heap.Push(&q.h, &delayed[T]{due: due, seq: q.seq, task: task})
}

func (q *delayQueue[T]) len() int { return len(q.h) }

// popDue removes the tasks due by now, at most max of them, and returns
// them in order.
func (q *delayQueue[T]) popDue(now time.Time, max int) []T {
	var due []T
	for len(q.h) > 0 && !q.h[0].due.After(now) && len(due) < max {
		due = append(due, heap.Pop(&q.h).(*delayed[T]).task)
	}
	return due
}

type delayed[T any] struct {
	due  time.Time
	seq  uint64
	task T
}

// delayHeap is delayQueue's heap.Interface. It holds pointers, so that
// heap's any does not allocate on every push and pop.
type delayHeap[T any] []*delayed[T]

func (h delayHeap[T]) Len() int { return len(h) }
func (h delayHeap[T]) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap[T]) Push(x any)   { *h = append(*h, x.(*delayed[T])) }
func (h *delayHeap[T]) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

// runDelayQueue is the scheduler of a simulated service that answers
// later. It takes items from the hand-off, where accept pushes their tasks
// onto q, and hands the due tasks to fire, at most maxBatch at a time, in
// q's order. It returns when ctx ends or fire fails; fire's error is only
// a stop signal (today, ctx ending inside produceAll), so it is dropped.
//
// With maxPending tasks held it takes no more items: they wait in the
// hand-off and the poll loop feeding it blocks, which bounds q. fire runs
// after every receive or wake, with no tasks when none is due, so that a
// caller's per-round bookkeeping (the payer's commits) runs then too.
// accept and fire run on this goroutine and may push onto q.
func runDelayQueue[I, T any](ctx context.Context, items <-chan I, q *delayQueue[T], maxPending, maxBatch int,
	accept func(I), fire func(due []T) error) {
	timer := time.NewTimer(time.Hour) // armed below, once a task is pending
	timer.Stop()
	defer timer.Stop()
	for {
		recv := items
		if q.len() >= maxPending {
			recv = nil // full: leave items in the hand-off, the poll loop blocks
		}
		var wake <-chan time.Time
		if q.len() > 0 {
			timer.Reset(time.Until(q.h[0].due))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case it := <-recv:
			accept(it)
			// Take what else is queued, so one produce writes many.
		drain:
			for q.len() < maxPending {
				select {
				case it := <-items:
					accept(it)
				default:
					break drain
				}
			}
		case <-wake:
		}
		if fire(q.popDue(time.Now(), maxBatch)) != nil {
			return
		}
	}
}
