package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fault is one step of a seed's schedule: its kind, and the pipeline and
// the index of the running instance it strikes where its kind strikes
// one.
type fault struct {
	kind     string
	pipeline string
	instance int
}

func (f fault) String() string {
	switch f.kind {
	case "crash", "restart", "leave":
		return fmt.Sprintf("%s of %s instance %d", f.kind, f.pipeline, f.instance)
	case "join", "idle-churn":
		return fmt.Sprintf("%s on %s", f.kind, f.pipeline)
	}
	return f.kind
}

// step is one fault step of a seed: it draws the next fault from rng and
// injects it, and names what fired.
func (w *world) step(rng *rand.Rand) (string, error) {
	f := w.choose(rng)
	fired, err := w.inject(f)
	if err != nil {
		return fired, fmt.Errorf("fault %s: %w", f, err)
	}
	return fired, nil
}

// choose draws the next fault from rng, among w.faults, against the
// instances running now. A seed's schedule is the sequence of its draws,
// so their order is part of what makes a seed reproducible: the pipeline,
// then the kind, then what the kind needs.
func (w *world) choose(rng *rand.Rand) fault {
	names := slices.Sorted(maps.Keys(w.specs))
	var f fault
	f.pipeline = names[rng.IntN(len(names))]
	f.kind = w.faults[rng.IntN(len(w.faults))]
	switch f.kind {
	case "crash", "restart":
		f.instance = rng.IntN(len(w.running[f.pipeline]))
	case "join", "leave":
		// A pipeline keeps between one and three instances.
		if n := len(w.running[f.pipeline]); n == 1 || f.kind == "join" && n < 3 {
			f.kind = "join"
		} else {
			f.kind, f.instance = "leave", rng.IntN(n)
		}
	case "slow-downstream", "leader-shuffle", "coordinator-move":
		f.pipeline = "" // the brokers'
	case "idle-churn":
		// Drawn among the pipelines whose stores the soak compares with
		// a model, where a stale task's state shows (and in their
		// outcomes). Orders and CDC keep no state, and the alerts
		// store, with the seed's rules (no suppression, no NEWS2) and
		// only final observations, decides nothing the soak counts.
		modelled := []string{"priorauth", "validation"}
		f.pipeline = modelled[rng.IntN(len(modelled))]
	}
	return f
}

// inject applies f and returns once it has taken effect (an instance
// stopped, fenced or started; the brokers' behaviour switched; an idle
// churn's sequence run), naming what fired: f's kind, or f's kind with
// "-missed" where the fault could not strike as meant (see crash and
// idleChurn).
func (w *world) inject(f fault) (string, error) {
	switch f.kind {
	case "crash":
		return w.crash(f.pipeline, f.instance)
	case "restart":
		// A new process with a new instance id: its partitions move to
		// the others and back.
		if err := w.stop(f.pipeline, f.instance); err != nil {
			return "", err
		}
		return f.kind, w.start(f.pipeline)
	case "join":
		return f.kind, w.start(f.pipeline)
	case "leave":
		return f.kind, w.stop(f.pipeline, f.instance)
	case "slow-downstream":
		w.slowProduce(slowRequests, slowDelay)
		return f.kind, nil
	case "leader-shuffle":
		w.cluster.Kafka().ShufflePartitionLeaders()
		return f.kind, nil
	case "coordinator-move":
		w.cluster.Kafka().RehashCoordinators()
		return f.kind, nil
	case "idle-churn":
		return w.idleChurn(f.pipeline)
	}
	return "", fmt.Errorf("unknown fault %q", f.kind)
}

// faultKinds are the faults soak can draw; defaultFaults those it draws
// unless told. leader-shuffle is left out by default: after kfake moves a
// leader it answers OffsetsForLeaderEpoch for an epoch that has no batches
// yet with "unknown" (-1), which franz-go rightly reads as data loss,
// resetting the fetch offset to 0, so every record is consumed again. A
// real broker answers from its leader-epoch cache; the duplicates would be
// kfake's, not carepipe's.
var (
	faultKinds    = []string{"crash", "restart", "join", "leave", "slow-downstream", "coordinator-move", "idle-churn", "leader-shuffle"}
	defaultFaults = faultKinds[:7]
)

// A slow-downstream fault delays this many transactional produce
// requests, each by slowDelay.
const (
	slowRequests = 24
	slowDelay    = 250 * time.Millisecond
)

// slowProduce has the brokers answer the next n transactional produce
// requests (the pipelines', not the workload producer's) d late: a slow
// downstream cluster. Each instance meets it in its next transactions; the
// soak's accounting then shows that nothing was lost or repeated because
// of it.
func (w *world) slowProduce(n int64, d time.Duration) {
	k := w.cluster.Kafka()
	var slowed atomic.Int64
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.ProduceRequest).TransactionID == nil {
			return nil, nil, false
		}
		if slowed.Add(1) > n {
			k.DropControl()
			return nil, nil, false
		}
		k.SleepControl(func() { time.Sleep(d) })
		return nil, nil, false
	})
}

// crash kills the i-th instance of name between produce and commit: its
// next committing EndTxn is held, the process "dies" (its context is
// cancelled and the held request's connection dropped), and a successor
// with the same instance id fences it. An instance that commits nothing
// within 10 s (it owns no busy partition) is not crashed: "crash-missed".
func (w *world) crash(name string, i int) (string, error) {
	in := w.running[name][i]
	k := w.cluster.Kafka()
	crashed, release, fenced := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var fired, off, inited atomic.Bool
	k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if off.Load() || !r.Commit || r.TransactionalID != in.txnID || !fired.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		close(crashed)
		k.SleepControl(func() { <-release })
		return nil, kerr.NetworkException, true
	})
	k.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.InitProducerIDRequest)
		if fired.Load() && r.TransactionalID != nil && *r.TransactionalID == in.txnID && inited.CompareAndSwap(false, true) {
			close(fenced)
		}
		return nil, nil, false
	})
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		off.Store(true)
		if !fired.CompareAndSwap(false, true) {
			<-crashed // it fired as it was switched off
			break
		}
		return "crash-missed", nil
	}
	w.running[name] = slices.Delete(w.running[name], i, i+1)
	in.cancel()
	if err := w.startID(name, in.id); err != nil {
		close(release)
		return "", err
	}
	select {
	case <-fenced:
	case <-time.After(30 * time.Second):
		close(release)
		return "", fmt.Errorf("the successor of %s never initialised its producer", in.id)
	}
	close(release)
	select {
	case <-in.done:
		// Its error, if any, is the crash's: the fenced zombie's.
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("crashed %s did not stop within 30s", in.id)
	}
	return "crash", nil
}

// idleChurn is the fault for a runtime that tells the partitions it owns
// by counting revoke callbacks. franz-go's GroupTransactSession passes on
// only the first revoke between two transaction ends (DESIGN.md §4), and a
// pipeline without timers ends no transaction while idle; the group's
// balancer is eager, so every rebalance revokes everything. A member that
// joins and leaves while the pipeline is idle thus makes two rebalances of
// which only the first revoke reaches the instances, while both
// assignments do. The fault then moves partitions that instances held
// through that churn away, to an instance that processes records of them,
// and back. An instance that kept such a partition's old task across the
// move would process the rest of the round against state that misses the
// other instance's work, without a restore: the store checks, the outcome
// counts and the per-key order see that.
//
// The sequence, on pipeline name with n instances, each step awaited:
//
//  1. name, and the pipelines that feed it, have committed everything
//     produced so far: it is idle (a pipeline with timers still ends a
//     transaction at each punctuation, a second apart, and the two
//     rebalances may fall between two of them or not: the ordinary path);
//  2. a new instance X joins (the group Stable with n+1 members), and X
//     leaves (Stable with n members again);
//  3. a third of the next round is produced and committed, so that the
//     tasks of every instance have restored and processed;
//  4. a new instance Y joins (Stable with n+1 members);
//  5. another third of the round is produced and committed, Y's share by
//     Y;
//  6. Y leaves (Stable with n members), so the partitions go back to
//     their old owners, and the soak produces the rest of the round.
//
// Where X and Y sort among the members decides what moves: the range
// balancer orders members by member id, which the broker makes
// "<client id>-<uuid>", and the instances' client id is franz-go's "kgo".
// X's client id sorts after it and Y's before it. X thus takes the last
// range and leaves the old members most of what they hold after it
// leaves; Y takes the first range, the first old member's range while X
// was in, so what that member held through the churn moves to Y (and the
// other members' ranges move up). "idle-churn-missed" if the assignments
// show that no partition held through the churn moved (the sequence
// still ran).
func (w *world) idleChurn(name string) (string, error) {
	ctx := context.Background()
	spec, err := w.specs[name]()
	if err != nil {
		return "", err
	}
	feeding, err := w.feeding(name)
	if err != nil {
		return "", err
	}
	committed := func() error {
		return w.waitFor(2*time.Minute, name+" and its feeders caught up", func() (bool, error) {
			return w.caughtUp(ctx, feeding...)
		})
	}
	n := len(w.running[name])
	if err := committed(); err != nil {
		return "", err
	}
	if _, err := w.settled(ctx, spec.Group, n); err != nil {
		return "", err
	}
	if err := w.start(name, kgo.ClientID("z-soak-last")); err != nil {
		return "", err
	}
	x := w.running[name][len(w.running[name])-1]
	withX, err := w.settled(ctx, spec.Group, n+1)
	if err != nil {
		return "", err
	}
	if err := w.stopInstance(name, x); err != nil {
		return "", err
	}
	afterX, err := w.settled(ctx, spec.Group, n)
	if err != nil {
		return "", err
	}

	if err := w.produceNext(ctx, 1, 3); err != nil {
		return "", err
	}
	if err := committed(); err != nil {
		return "", err
	}
	if err := w.start(name, kgo.ClientID("a-soak-first")); err != nil {
		return "", err
	}
	y := w.running[name][len(w.running[name])-1]
	withY, err := w.settled(ctx, spec.Group, n+1)
	if err != nil {
		return "", err
	}
	// Held through the churn: assigned to the same old member by both
	// rebalances, the one whose revoke was passed on and the one whose
	// was not. A member gone since (its session rebuilt) starts afresh.
	moved := false
	for m, tps := range afterX {
		for tp := range tps {
			if now, ok := withY[m]; ok && withX[m][tp] && !now[tp] {
				moved = true
			}
		}
	}
	if err := w.produceNext(ctx, 1, 2); err != nil {
		return "", err
	}
	if err := committed(); err != nil {
		return "", err
	}
	if err := w.stopInstance(name, y); err != nil {
		return "", err
	}
	if _, err := w.settled(ctx, spec.Group, n); err != nil {
		return "", err
	}
	if !moved {
		return "idle-churn-missed", nil
	}
	return "idle-churn", nil
}
