// Command soak runs carepipe's pipelines on an in-process cluster under a
// seeded schedule of faults, one seed after another until its time budget
// is spent, and accounts for every record of every seed: lost, duplicated,
// out of order, error records that differ from their input, and outcomes
// that differ from the workload's truth. A seed's faults and workload are a
// function of its number (and of -faults), so a failing seed is rerun with
// -first N -seeds 1.
//
//	go run ./sim/cmd/soak -budget 30m
//
// Per seed: three brokers, the clinical alerts pipeline (the seed's rules;
// poison records in the stream), the prior-authorization orchestrator with
// its simulated world, the data synchronization CDC and validation stages,
// and the orders pipeline, two instances each; the workloads are produced
// in rounds, and between rounds one fault is drawn: an instance crashed
// between produce and commit and fenced by its successor, stopped under
// load as SIGTERM does and replaced, joined or left; the brokers slow to
// answer produce requests; a partition-leader shuffle; a coordinator move;
// an idle churn (the validation stage or the prior-authorization
// orchestrator, idle, sees a member join and leave, then partitions move
// to a new instance for part of the next round and back: no transaction
// ends between the two idle rebalances, and franz-go's
// GroupTransactSession then passes on only the first revoke). After the
// last round the stores with a model computed from the inputs (the data
// synchronization validation store, the prior-authorization store) are
// read as a restore loads them and compared with it. It exits non-zero if
// any seed found a problem.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
	"github.com/carepipe/carepipe/sim/check"
)

func main() {
	var (
		budget  = flag.Duration("budget", 2*time.Minute, "stop starting seeds after this long")
		seeds   = flag.Int("seeds", 0, "at most this many seeds (0: as many as the budget allows)")
		first   = flag.Int64("first", 1, "the first seed")
		records = flag.Int("records", 3000, "records per pipeline per seed")
		rounds  = flag.Int("rounds", 6, "rounds per seed; one fault between rounds")
		faults  = flag.String("faults", strings.Join(defaultFaults, ","), "the faults to draw from: "+strings.Join(faultKinds, ", "))
		verbose = flag.Bool("v", false, "log the pipelines' warnings to stderr")
	)
	flag.Parse()
	kinds := strings.Split(*faults, ",")
	for _, k := range kinds {
		if !slices.Contains(faultKinds, k) {
			fmt.Fprintf(os.Stderr, "soak: unknown fault %q (known: %s)\n", k, strings.Join(faultKinds, ", "))
			os.Exit(2)
		}
	}
	if *records < *rounds || *rounds < 2 {
		fmt.Fprintln(os.Stderr, "soak: need -rounds >= 2 and -records >= -rounds")
		os.Exit(2)
	}
	start := time.Now()
	var total result
	n := 0
	for seed := *first; time.Since(start) < *budget && (*seeds == 0 || n < *seeds); seed++ {
		log := slog.New(slog.DiscardHandler)
		if *verbose {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		r, err := runSeed(seed, *records, *rounds, kinds, log)
		if err != nil {
			fmt.Fprintf(os.Stderr, "seed %d: %v\n", seed, err)
			os.Exit(1)
		}
		fmt.Printf("seed %d  %s\n", seed, r)
		total.add(r)
		n++
	}
	fmt.Printf("\n%d seeds in %s (event time covered %s): %s\n", n, time.Since(start).Round(time.Second), total.eventTime, total)
	if total.problems() > 0 {
		os.Exit(1)
	}
}

// result is what one seed (or all) found.
type result struct {
	records, faults                                   int
	byFault                                           map[string]int
	lost, duplicated, order, errMismatch, diff, state int
	examples                                          []string
	// eventTime is the span of the inputs' timestamps, summed over
	// seeds: the time the workloads stand for (the pipelines themselves
	// run on the wall clock, compressed).
	eventTime time.Duration
}

func (r *result) add(o result) {
	r.records += o.records
	r.faults += o.faults
	if r.byFault == nil {
		r.byFault = map[string]int{}
	}
	for k, v := range o.byFault {
		r.byFault[k] += v
	}
	r.lost += o.lost
	r.duplicated += o.duplicated
	r.order += o.order
	r.errMismatch += o.errMismatch
	r.diff += o.diff
	r.state += o.state
	r.eventTime += o.eventTime
	r.examples = append(r.examples, o.examples...)
}

func (r result) problems() int {
	return r.lost + r.duplicated + r.order + r.errMismatch + r.diff + r.state
}

func (r result) String() string {
	kinds := make([]string, 0, len(r.byFault))
	for k, v := range r.byFault {
		kinds = append(kinds, k+"="+strconv.Itoa(v))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("records %d  faults %d (%s)  lost %d  duplicated %d  order violations %d  error-topic mismatches %d  outcome mismatches %d  state mismatches %d",
		r.records, r.faults, strings.Join(kinds, " "), r.lost, r.duplicated, r.order, r.errMismatch, r.diff, r.state)
	if len(r.examples) > 0 {
		s += "\n  first problems: " + strings.Join(r.examples[:min(len(r.examples), 10)], "; ")
	}
	return s
}

// world is one seed's cluster and pipelines.
type world struct {
	cluster *sim.Cluster
	prod    *kgo.Client
	adm     *kadm.Client
	log     *slog.Logger
	specs   map[string]func() (pipeline.Spec, error)
	running map[string][]*instance
	next    map[string]int
	faults  []string
	// pending is what is left to produce of the next round, one slice
	// per workload: a fault may produce a share of it itself, to have
	// records flow at a point of its sequence.
	pending [][]*kgo.Record
}

type instance struct {
	id     string
	txnID  string
	cancel context.CancelFunc
	done   chan error
}

// start starts a new instance of name; extra are client options on top of
// the cluster's.
func (w *world) start(name string, extra ...kgo.Opt) error {
	w.next[name]++
	return w.startID(name, fmt.Sprintf("%s-%d", name, w.next[name]), extra...)
}

// startID starts an instance of name with instance id id: a new one, or the
// successor of a crashed one, which fences it.
func (w *world) startID(name, id string, extra ...kgo.Opt) error {
	spec, err := w.specs[name]()
	if err != nil {
		return err
	}
	r, err := pipeline.New(spec,
		pipeline.WithKafka(append(w.cluster.ClientOpts(), extra...)...),
		pipeline.WithMetrics(metrics.NewSet()),
		pipeline.WithInstanceID(id),
		pipeline.WithCommitInterval(50*time.Millisecond),
		pipeline.WithTransactionTimeout(5*time.Second),
		pipeline.WithLogger(w.log.With("instance", id)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{id: id, txnID: spec.Group + "-" + id, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- r.Run(ctx) }()
	w.running[name] = append(w.running[name], in)
	return nil
}

// stage is a constructor of the spec of pipeline p's stage, built from
// the catalog: each call builds a fresh processor, as a new instance does.
func stage(ctx context.Context, s catalog.Settings, p, stage string) func() (pipeline.Spec, error) {
	return func() (pipeline.Spec, error) {
		def, ok := catalog.Lookup(p)
		if !ok {
			return pipeline.Spec{}, fmt.Errorf("no pipeline %s", p)
		}
		stages, err := def.Build(ctx, s)
		if err != nil {
			return pipeline.Spec{}, err
		}
		for _, st := range stages {
			if st.Name == stage {
				return st.Spec, nil
			}
		}
		return pipeline.Spec{}, fmt.Errorf("pipeline %s has no stage %s", p, stage)
	}
}

// stopInstance stops in, one of name's running instances, gracefully.
func (w *world) stopInstance(name string, in *instance) error {
	i := slices.Index(w.running[name], in)
	if i < 0 {
		return fmt.Errorf("%s is not running", in.id)
	}
	return w.stop(name, i)
}

// stop stops the i-th running instance of name gracefully (what SIGTERM
// does), within a bound.
func (w *world) stop(name string, i int) error {
	in := w.running[name][i]
	w.running[name] = slices.Delete(w.running[name], i, i+1)
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			return fmt.Errorf("%s: %w", in.id, err)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s did not stop within 30s", in.id)
	}
}

func (w *world) stopAll() error {
	var errs []error
	for name := range w.running {
		for len(w.running[name]) > 0 {
			errs = append(errs, w.stop(name, 0))
		}
	}
	return errors.Join(errs...)
}

// fault applies one fault drawn from rng and names it.
func (w *world) fault(rng *rand.Rand) (string, error) {
	names := slices.Sorted(maps.Keys(w.specs))
	name := names[rng.IntN(len(names))]
	switch kind := w.faults[rng.IntN(len(w.faults))]; kind {
	case "crash":
		return w.crash(name, rng.IntN(len(w.running[name])))
	case "restart":
		// A new process with a new instance id: its partitions move to
		// the others and back.
		if err := w.stop(name, rng.IntN(len(w.running[name]))); err != nil {
			return "", err
		}
		return kind, w.start(name)
	case "join", "leave":
		if n := len(w.running[name]); n == 1 || kind == "join" && n < 3 {
			return "join", w.start(name)
		}
		return "leave", w.stop(name, rng.IntN(len(w.running[name])))
	case "slow-downstream":
		w.slowProduce(slowRequests, slowDelay)
		return kind, nil
	case "leader-shuffle":
		w.cluster.Kafka().ShufflePartitionLeaders()
		return kind, nil
	case "coordinator-move":
		w.cluster.Kafka().RehashCoordinators()
		return kind, nil
	case "idle-churn":
		// Drawn among the pipelines whose stores the soak compares with
		// a model, where a stale task's state shows (and in their
		// outcomes). Orders and CDC keep no state, and the alerts
		// store, with the seed's rules (no suppression, no NEWS2) and
		// only final observations, decides nothing the soak counts.
		modelled := []string{"priorauth", "validation"}
		return w.idleChurn(modelled[rng.IntN(len(modelled))])
	}
	return "", fmt.Errorf("unknown fault %q", w.faults)
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

type topicPartition struct {
	topic     string
	partition int32
}

// settled waits until group has finished rebalancing to n members: kfake
// reports a classic group Stable once its leader has synced the
// assignment, which it then hands every member. It returns each member's
// assignment, by member id.
func (w *world) settled(ctx context.Context, group string, n int) (map[string]map[topicPartition]bool, error) {
	var got map[string]map[topicPartition]bool
	err := w.waitFor(30*time.Second, fmt.Sprintf("group %s stable with %d members", group, n), func() (bool, error) {
		ds, err := w.adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, nil // a coordinator moving: ask again
		}
		d, ok := ds[group]
		if !ok || d.Err != nil || d.State != "Stable" || len(d.Members) != n {
			return false, nil
		}
		got = map[string]map[topicPartition]bool{}
		for _, m := range d.Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok {
				return false, fmt.Errorf("group %s: member without a consumer assignment", group)
			}
			tps := map[topicPartition]bool{}
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					tps[topicPartition{t.Topic, p}] = true
				}
			}
			got[m.MemberID] = tps
		}
		return true, nil
	})
	return got, err
}

// feeding returns name and every pipeline that feeds it through a topic,
// directly or through others: name is idle only once they are.
func (w *world) feeding(name string) ([]string, error) {
	specs := map[string]pipeline.Spec{}
	for n, f := range w.specs {
		s, err := f()
		if err != nil {
			return nil, err
		}
		specs[n] = s
	}
	in := map[string]bool{name: true}
	// Each pass adds the next link of every chain; no chain is longer
	// than the number of pipelines.
	for range len(specs) {
		var add []string
		for n, s := range specs {
			for m := range in {
				if !in[n] && slices.ContainsFunc(s.Outputs, func(t string) bool { return slices.Contains(specs[m].Inputs, t) }) {
					add = append(add, n)
				}
			}
		}
		for _, n := range add {
			in[n] = true
		}
	}
	return slices.Sorted(maps.Keys(in)), nil
}

// produceNext produces the first num/den of each workload still pending
// for the next round and leaves the rest pending. Each partition keeps its
// order: the records of a call are acknowledged before it returns.
func (w *world) produceNext(ctx context.Context, num, den int) error {
	var batch []*kgo.Record
	for i, part := range w.pending {
		k := len(part) * num / den
		batch = append(batch, part[:k]...)
		w.pending[i] = part[k:]
	}
	return sim.Produce(ctx, w.prod, batch)
}

func runSeed(seed int64, n, rounds int, faults []string, log *slog.Logger) (result, error) {
	res := result{byFault: map[string]int{}}
	cluster, err := sim.NewCluster(sim.Brokers(3))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	reg := srfake.New()
	defer reg.Close()
	rcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		return res, err
	}
	ctx := context.Background()
	// Every instance is built as carepipe run builds it, from the
	// catalog; the alerts evaluate the seed's rules.
	rules := alerts.SeedRules()
	settings := catalog.Settings{Rules: &rules, Registry: rcl}
	// The accounting decodes the validated versions with the schemas'
	// codec.
	codec, err := datasync.Register(ctx, rcl)
	if err != nil {
		return res, err
	}
	prod, err := kgo.NewClient(append(cluster.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return res, err
	}
	defer prod.Close()
	w := &world{
		cluster: cluster, prod: prod, adm: kadm.NewClient(prod),
		log:     log,
		running: map[string][]*instance{}, next: map[string]int{}, faults: faults,
		specs: map[string]func() (pipeline.Spec, error){
			"orders":     stage(ctx, settings, orders.Name, orders.Name),
			"alerts":     stage(ctx, settings, alerts.Name, alerts.Name),
			"priorauth":  stage(ctx, settings, priorauth.Name, priorauth.Name),
			"cdc":        stage(ctx, settings, datasync.Name, catalog.StageCDC),
			"validation": stage(ctx, settings, datasync.Name, catalog.StageValidation),
		},
	}
	defer func() { _ = w.stopAll() }()
	for name, spec := range w.specs {
		s, err := spec()
		if err != nil {
			return res, err
		}
		if err := pipeline.CreateTopics(ctx, w.adm, &s, 6, 1); err != nil {
			return res, fmt.Errorf("%s topics: %w", name, err)
		}
	}

	// The prior-authorization world answers the orchestrator's requests
	// (payers at once, a quarter pended first) through every fault.
	paCfg := sim.PriorAuthWorldConfig{Seed: seed, Approve: 0.6, Deny: 0.2, Partial: 0.1, Pend: 0.25}
	paWorld, err := sim.StartPriorAuthWorld(cluster, paCfg)
	if err != nil {
		return res, err
	}
	defer paWorld.Close()
	rxs, rxIDs := sim.PriorAuthPrescriptions(seed, n/3)

	ords, _ := sim.MedicationOrders(seed, n)
	work, err := sim.NewAlerts(sim.AlertsWorkload{Seed: seed, Patients: 300, AlertFraction: 0.2, PoisonFraction: 0.01, EnvelopeFraction: 0.5, MisKeyedFraction: 0.2})
	if err != nil {
		return res, err
	}
	if err := sim.Produce(ctx, prod, work.PatientRecords()); err != nil {
		return res, err
	}
	obs, truths := work.NextN(n)
	syncRecs, syncTruth := sim.DataSyncRecords(seed, n)
	res.records = len(ords) + len(obs) + len(syncRecs) + len(rxs)
	res.eventTime = eventSpan(ords, obs, syncRecs, rxs)

	for name := range w.specs {
		for range 2 {
			if err := w.start(name); err != nil {
				return res, err
			}
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	round := func(i int) [][]*kgo.Record {
		lo, hi := i*n/rounds, (i+1)*n/rounds
		return [][]*kgo.Record{ords[lo:hi], obs[lo:hi], syncRecs[lo:hi], rxs[lo/3 : hi/3]}
	}
	w.pending = round(0)
	for i := range rounds {
		// The round, or what a fault left of it.
		if err := w.produceNext(ctx, 1, 1); err != nil {
			return res, err
		}
		if i < rounds-1 {
			w.pending = round(i + 1)
			kind, err := w.fault(rng)
			if err != nil {
				return res, fmt.Errorf("fault %s: %w", kind, err)
			}
			if !strings.HasSuffix(kind, "-missed") {
				res.faults++
			}
			res.byFault[kind]++
		}
	}
	// Prior authorizations go back and forth with the world: wait for
	// every workflow to complete before waiting for the groups.
	paIDs := make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		paIDs[i] = priorauth.PriorAuthID(rx)
	}
	if err := w.waitFor(3*time.Minute, "every prior authorization completed", func() (bool, error) {
		done, err := readCommitted(ctx, w, priorauth.TopicWorkflowCompleted)
		seen := map[string]bool{}
		for _, r := range done {
			seen[string(r.Key)] = true
		}
		return len(seen) >= len(paIDs), err
	}); err != nil && !errors.Is(err, errWaitedOut) {
		return res, err
	}
	// Past the limit, the workflows still open are what a pipeline lost
	// (a stale task's state, say, sent an event to the error topic): the
	// accounting below counts them.
	if err := w.waitFor(3*time.Minute, "caught up", func() (bool, error) {
		return w.caughtUp(ctx, slices.Sorted(maps.Keys(w.specs))...)
	}); err != nil {
		return res, err
	}
	if err := w.stopAll(); err != nil {
		return res, err
	}

	read := func(topic string) ([]*kgo.Record, error) { return readCommitted(ctx, w, topic) }
	// Orders: one processed record per submitted order.
	out, err := read(orders.TopicProcessed)
	if err != nil {
		return res, err
	}
	errs, err := read(orders.TopicErrors)
	if err != nil {
		return res, err
	}
	rep := check.Account(ords, out, errs, check.Expect{
		InputID:  func(r *kgo.Record) string { return string(r.Key) },
		OutputID: func(r *kgo.Record) (string, bool) { return string(r.Key), true },
	})
	res.addReport("orders", rep)

	// Alerts: the expected alert ids as a multiset; each poison record in
	// the error topic, whole.
	al, err := read(alerts.TopicAlerts)
	if err != nil {
		return res, err
	}
	want := map[string]int{}
	for _, id := range sim.ExpectedAlertIDs(truths) {
		want[id]++
	}
	for _, r := range al {
		var a struct{ AlertID string }
		if err := json.Unmarshal(r.Value, &a); err != nil {
			res.diff++
			res.examples = append(res.examples, "alerts: an alert that does not decode")
			continue
		}
		want[a.AlertID]--
	}
	for id, c := range want {
		switch {
		case c > 0:
			res.lost += c
			res.examples = append(res.examples, "alerts: missing "+id)
		case c < 0:
			res.duplicated -= c
			res.examples = append(res.examples, "alerts: extra "+id)
		}
	}
	var poison []*kgo.Record
	for i, t := range truths {
		if t.Poison != "" {
			poison = append(poison, obs[i])
		}
	}
	aerrs, err := read(alerts.TopicErrors)
	if err != nil {
		return res, err
	}
	rep = check.Account(poison, nil, aerrs, check.Expect{
		InputID:  func(r *kgo.Record) string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) },
		OutputID: func(*kgo.Record) (string, bool) { return "", false },
	})
	res.addReport("alerts errors", rep)

	// Prior authorization: each workflow completed once, with the payer's
	// decision in its steps; each request made once; no error record.
	done, err := read(priorauth.TopicWorkflowCompleted)
	if err != nil {
		return res, err
	}
	per := map[string]int{}
	for _, r := range done {
		per[string(r.Key)]++
		var v struct {
			WorkflowSummary priorauth.WorkflowSummary `json:"workflowSummary"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return res, err
		}
		want := paSteps(paCfg, string(r.Key))
		var got []priorauth.Status
		for _, st := range v.WorkflowSummary.Steps {
			got = append(got, st.Name)
		}
		if !slices.Equal(got, want) {
			res.diff++
			res.examples = append(res.examples, fmt.Sprintf("priorauth %s: steps %v, want %v", r.Key, got, want))
		}
	}
	for _, id := range paIDs {
		switch c := per[id]; {
		case c == 0:
			res.lost++
			res.examples = append(res.examples, "priorauth: never completed "+id)
		case c > 1:
			res.duplicated += c - 1
			res.examples = append(res.examples, "priorauth: completed more than once "+id)
		}
	}
	for _, topic := range []string{priorauth.TopicDocumentationRequested, priorauth.TopicSubmissionRequested, priorauth.TopicCommunicationRequested} {
		reqs, err := read(topic)
		if err != nil {
			return res, err
		}
		per := map[string]int{}
		for _, r := range reqs {
			per[string(r.Key)]++
		}
		for id, c := range per {
			if c > 1 {
				res.duplicated += c - 1
				res.examples = append(res.examples, fmt.Sprintf("priorauth %s: %d requests for %s", topic, c, id))
			}
		}
	}
	if perrs, err := read(priorauth.TopicErrors); err != nil {
		return res, err
	} else if len(perrs) > 0 {
		res.diff += len(perrs)
		res.examples = append(res.examples, fmt.Sprintf("priorauth: %d error records, want none", len(perrs)))
	}

	// Data sync: exactly the validated and error records the truth says.
	for _, e := range datasync.Entities() {
		vs, err := read(datasync.ValidatedTopic(e))
		if err != nil {
			return res, err
		}
		applied, resolved := 0, 0
		last := map[string]int64{}
		for _, r := range vs {
			if envelope.HeaderValue(r, datasync.HeaderConflictResolved) == "true" {
				resolved++
			} else {
				applied++
			}
			_, _, v, _, err := codec.DecodeValue(r.Value, e)
			if err != nil || v != last[string(r.Key)]+1 {
				res.order++
				res.examples = append(res.examples, fmt.Sprintf("datasync %s %s: version %d after %d", e, r.Key, v, last[string(r.Key)]))
			}
			last[string(r.Key)] = v
		}
		if d := applied - syncTruth.Applied[string(e)]; d != 0 {
			res.diffCount(d, fmt.Sprintf("datasync %s: %d validated, want %d", e, applied, syncTruth.Applied[string(e)]))
		}
		if d := resolved - syncTruth.ConflictResolved[string(e)]; d != 0 {
			res.diffCount(d, fmt.Sprintf("datasync %s: %d conflict-resolved, want %d", e, resolved, syncTruth.ConflictResolved[string(e)]))
		}
	}
	serrs, err := read(datasync.TopicErrors)
	if err != nil {
		return res, err
	}
	wantErrs := 0
	for _, e := range datasync.Entities() {
		wantErrs += syncTruth.Stale[string(e)] + syncTruth.Invalid[string(e)] + syncTruth.Undecodable[string(e)]
	}
	if d := len(serrs) - wantErrs; d != 0 {
		res.diffCount(d, fmt.Sprintf("datasync: %d error records, want %d", len(serrs), wantErrs))
	}

	// State: the stores as a restore loads them (their changelogs,
	// read_committed, last value per key) against models from the inputs.
	// The validation store: each entity's version, deletion and fields as
	// the workload's truth works them out.
	cl, err := read(pipeline.ChangelogTopic(datasync.GroupValidation, datasync.StoreEntities))
	if err != nil {
		return res, err
	}
	held := map[string]any{}
	for k, b := range check.Changelog(cl) {
		st, err := datasync.UnmarshalState(b)
		if err != nil {
			return res, fmt.Errorf("validation store: %w", err)
		}
		e, id, _ := strings.Cut(k, "/")
		ch := st.Materialize(datasync.Entity(e), id)
		held[k] = map[string]any{"version": st.Version, "deleted": ch.Op == datasync.OpDelete, "fields": ch.Fields}
	}
	res.addStates("datasync validation store", check.States(syncTruth.StateModel(), held))
	// The prior-authorization store: every case communicated, its status
	// history the payer's decision for it.
	cl, err = read(pipeline.ChangelogTopic(priorauth.Group, priorauth.StorePriorAuths))
	if err != nil {
		return res, err
	}
	held = map[string]any{}
	for k, b := range check.Changelog(cl) {
		// The stored record, in the query API's JSON (priorauth's doc).
		var rec struct {
			Status        priorauth.Status `json:"status"`
			StatusHistory []struct {
				Status priorauth.Status `json:"status"`
			} `json:"statusHistory"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return res, fmt.Errorf("prior-authorization store: %w", err)
		}
		history := make([]priorauth.Status, len(rec.StatusHistory))
		for i, e := range rec.StatusHistory {
			history[i] = e.Status
		}
		held[k] = map[string]any{"status": rec.Status, "history": history}
	}
	model := map[string]any{}
	for _, id := range paIDs {
		model[id] = map[string]any{"status": priorauth.StatusDeterminationCommunicated, "history": paSteps(paCfg, id)}
	}
	res.addStates("prior-authorization store", check.States(model, held))
	return res, nil
}

// paSteps are the statuses a prior authorization goes through, by the
// payer's decision for it.
func paSteps(cfg sim.PriorAuthWorldConfig, id string) []priorauth.Status {
	final, pended := cfg.PriorAuthOutcome(id)
	steps := []priorauth.Status{priorauth.StatusInitiated, priorauth.StatusDocumentationAssembled, priorauth.StatusSubmitted}
	if pended {
		steps = append(steps, priorauth.StatusPended)
	}
	return append(steps, priorauth.Status(final), priorauth.StatusDeterminationCommunicated)
}

// eventSpan is the span of the records' timestamps, leaving out records
// without one (the producer stamps them).
func eventSpan(sets ...[]*kgo.Record) time.Duration {
	var lo, hi time.Time
	for _, recs := range sets {
		for _, r := range recs {
			if r.Timestamp.IsZero() {
				continue // stamped when produced
			}
			if lo.IsZero() || r.Timestamp.Before(lo) {
				lo = r.Timestamp
			}
			if r.Timestamp.After(hi) {
				hi = r.Timestamp
			}
		}
	}
	return hi.Sub(lo)
}

func (r *result) addStates(what string, rep check.StateReport) {
	r.state += rep.Problems()
	for _, e := range rep.Examples {
		r.examples = append(r.examples, what+": "+e)
	}
}

// diffCount records an outcome count that is d off the truth: more is
// duplication, fewer is loss.
func (r *result) diffCount(d int, example string) {
	if d > 0 {
		r.duplicated += d
	} else {
		r.lost -= d
	}
	r.examples = append(r.examples, example)
}

func (r *result) addReport(what string, rep check.Report) {
	r.lost += rep.Lost
	r.duplicated += rep.Duplicated + rep.Unexpected
	r.order += rep.OrderViolations
	r.errMismatch += rep.ErrorMismatches
	for _, e := range rep.Examples {
		r.examples = append(r.examples, what+": "+e)
	}
}

// errWaitedOut is waitFor's error when the condition did not hold in time.
var errWaitedOut = errors.New("waited out")

// waitFor polls cond until it holds, or fails after limit.
func (w *world) waitFor(limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not %s after %s: %w", what, limit, errWaitedOut)
		}
		<-tick.C
	}
}

// caughtUp reports whether the groups of the named pipelines have
// committed past the last record of each of their inputs and repartition
// topics.
func (w *world) caughtUp(ctx context.Context, names ...string) (bool, error) {
	for _, name := range names {
		spec, err := w.specs[name]()
		if err != nil {
			return false, err
		}
		committed, err := w.adm.FetchOffsets(ctx, spec.Group)
		if err != nil {
			return false, nil
		}
		topics := slices.Clone(spec.Inputs)
		for _, r := range spec.Repartitions {
			topics = append(topics, pipeline.RepartitionTopic(spec.Group, r))
		}
		for _, topic := range topics {
			recs, err := readCommitted(ctx, w, topic)
			if err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			last := map[int32]int64{}
			for _, r := range recs {
				last[r.Partition] = r.Offset
			}
			for p, o := range last {
				if c, _ := committed.Lookup(topic, p); c.At < o+1 {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

// readCommitted reads topic read_committed up to its last stable offset.
func readCommitted(ctx context.Context, w *world, topic string) ([]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ends, err := w.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	targets := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			targets[o.Partition] = o.Offset
		}
	})
	if len(targets) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(w.cluster.ClientOpts(), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(targets) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := targets[r.Partition]; ok && r.Offset >= end-1 {
				delete(targets, r.Partition)
			}
		})
	}
	return out, nil
}
