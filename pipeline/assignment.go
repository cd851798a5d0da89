package pipeline

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// currentEpoch is the assignment's change count.
func (s *session) currentEpoch() uint64 {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.epoch
}

// reconcile activates a task for every assigned partition that has none
// running, and returns the assignment epoch it reconciled to. It runs on
// the poll loop with no transaction open, so every store holds committed
// state. Halted tasks of partitions not assigned stay until the next
// assignment, which either takes them back or drops them: under the eager
// protocol a revoke of everything comes before every assignment.
func (s *session) reconcile() uint64 {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	var started []int32
	for p := range s.assigned {
		t := r.tasks[p]
		if t == nil {
			t = newTask(r, p)
			r.tasks[p] = t
		}
		if !t.running {
			t.activate(s)
			started = append(started, p)
		}
	}
	if len(started) > 0 {
		sort.Slice(started, func(i, j int) bool { return started[i] < started[j] })
		r.log.Info("preparing state", "tasks", started)
	}
	return s.epoch
}

// anyReady reports whether some task takes punctuations.
func (r *Runner) anyReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.ready.Load() {
			return true
		}
	}
	return false
}

// wakePoll ends the poll in progress early.
func (s *session) wakePoll() {
	s.wakeMu.Lock()
	if s.wake != nil {
		s.wake()
	}
	s.wakeMu.Unlock()
}

// forEachTask calls fn for every task not preparing: a preparing task's
// stores belong to its goroutine, which is restoring them, and hold no
// writes of a transaction. A task leaves preparation only to take batches,
// which only the poll loop, the caller, hands out.
func (r *Runner) forEachTask(fn func(*task)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if !t.preparing.Load() {
			fn(t)
		}
	}
}

// forEachStore calls fn for the stores of every task forEachTask visits.
func (r *Runner) forEachStore(fn func(*Store)) {
	r.forEachTask(func(t *task) {
		for _, s := range t.stores {
			fn(s)
		}
	})
}

// onAssigned records the assignment and pauses the fetching of each newly
// assigned partition; the poll loop then prepares its task's state and
// resumes it. A partition kept from the last assignment keeps its task,
// running.
//
// franz-go calls it after every sync, with what the sync added under the
// cooperative protocol and with the whole assignment under the eager one
// (a group that still has members offering only the range protocol, after
// a revoke of everything). Either way, what the member owns is read from
// the sync itself (see [copartitioned]), not pieced together from the
// callbacks: a task whose partition the sync no longer gives is dropped
// here even when the revoke that took it was swallowed. Under the eager
// protocol the revoke halted every task first, so every partition is
// prepared again (kept, most often), as before.
func (s *session) onAssigned(_ context.Context, cl *kgo.Client, _ map[string][]int32) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	now := s.synced.partitions(r.spec.consumedTopics())
	for p, t := range r.tasks {
		if _, ok := now[p]; ok {
			continue
		}
		// Not this member's now. Its store is kept for a while: under
		// the cooperative protocol a partition comes to its new owner
		// one rebalance after it left its old one, so a member that
		// rejoins is assigned nothing first, and its stores would all be
		// read again from the changelog's start. One that comes back is
		// caught up from its position (see planRestore); one unconfirmed
		// for longer than keepStoreFor could only be restored in full,
		// and goes.
		t.halt()
		r.m.dropLag(r.spec.consumedTopics(), p)
		if c := t.confirmedAt.Load(); c == 0 || time.Since(time.Unix(0, c)) >= keepStoreFor {
			delete(r.tasks, p)
		}
	}
	var parts, fresh []int32
	for p := range now {
		parts = append(parts, p)
		if t := r.tasks[p]; t == nil || !t.running {
			fresh = append(fresh, p)
		}
	}
	slices.Sort(parts)
	slices.Sort(fresh)
	if len(fresh) > 0 {
		pause := make(map[string][]int32)
		for _, topic := range r.spec.consumedTopics() {
			pause[topic] = fresh
		}
		cl.PauseFetchPartitions(pause)
	}
	for _, p := range parts {
		r.m.assignedLag(r.spec.consumedTopics(), p)
	}
	s.assigned = now
	s.epoch++
	r.joined.Store(true)
	r.log.Info("partitions assigned", "tasks", parts, "new", fresh)
	s.wakePoll()
}

// onRevoked halts the tasks of revoked or lost partitions and waits for
// them. The session aborts the open transaction afterwards (and the poll
// loop makes sure of it), so their partial work is never committed. Their
// stores stay until the next assignment says whether they come back.
func (s *session) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	var removed []int32
	for _, ps := range revoked {
		for _, p := range ps {
			if _, ok := s.assigned[p]; !ok {
				continue
			}
			delete(s.assigned, p)
			if t := r.tasks[p]; t != nil {
				t.halt()
			}
			r.m.dropLag(r.spec.consumedTopics(), p)
			removed = append(removed, p)
		}
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i] < removed[j] })
	s.epoch++
	r.log.Info("partitions revoked", "tasks", removed)
	s.wakePoll()
}

// consumedPartition is partition p of every consumed topic.
func (r *Runner) consumedPartition(p int32) map[string][]int32 {
	m := make(map[string][]int32)
	for _, topic := range r.spec.consumedTopics() {
		m[topic] = []int32{p}
	}
	return m
}

// endSession halts every task and drops the session, with its
// assignment, keeping the stores: the next session may get them back.
func (r *Runner) endSession() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		t.halt()
	}
	r.cur = nil
	// The next session has joined nothing yet: not ready until its first
	// assignment, as at start-up.
	r.joined.Store(false)
}

// dropAll halts every task and drops it with its stores: the runner stops.
func (r *Runner) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range r.tasks {
		t.halt()
		delete(r.tasks, p)
		r.m.dropLag(r.spec.consumedTopics(), p)
	}
}
