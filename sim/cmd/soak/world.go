package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// world is one seed's cluster, pipelines and workloads: what the fault
// steps act on and what the accounting reads.
type world struct {
	cluster *sim.Cluster
	reg     *srfake.Registry
	prod    *kgo.Client
	adm     *kadm.Client
	paWorld *sim.PriorAuthWorld
	log     *slog.Logger
	specs   map[string]func() (pipeline.Spec, error)
	running map[string][]*instance
	next    map[string]int
	faults  []string
	work    workload
	// pending is what is left to produce of the next round, one slice
	// per workload: a fault may produce a share of it itself, to have
	// records flow at a point of its sequence.
	pending [][]*kgo.Record
}

// workload is one seed's inputs and the truths the accounting holds the
// outputs and stores to.
type workload struct {
	// n is the records per pipeline; the rounds share them out.
	n            int
	orders       []*kgo.Record
	observations []*kgo.Record
	obsTruths    []sim.ObservationTruth
	sync         []*kgo.Record
	syncTruth    sim.DataSyncTruth
	// prescriptions start prior authorizations, one each, whose ids are
	// paIDs and whose payers' decisions paCfg gives.
	prescriptions []*kgo.Record
	paIDs         []string
	paCfg         sim.PriorAuthWorldConfig
	// eventTime is the span of the inputs' own timestamps, taken
	// before they are produced (the producer stamps those without one).
	eventTime time.Duration
	// codec decodes the validated versions as the pipelines encode them.
	codec *datasync.Codec
}

// newWorld sets up seed's world: three brokers, a schema registry, every
// pipeline's topics, the prior-authorization world that answers the
// orchestrator's requests, the workloads of n records per pipeline (n/3
// prescriptions; the alerts' patients already produced) and two running
// instances of each pipeline, built as carepipe run builds them, from the
// catalog. faults are the kinds choose draws from. The caller closes it.
func newWorld(ctx context.Context, seed int64, n int, faults []string, log *slog.Logger) (w *world, err error) {
	w = &world{log: log, running: map[string][]*instance{}, next: map[string]int{}, faults: faults}
	defer func() {
		if err != nil {
			w.close()
			w = nil
		}
	}()
	if w.cluster, err = sim.NewCluster(sim.Brokers(3)); err != nil {
		return w, err
	}
	w.reg = srfake.New()
	rcl, err := sr.NewClient(sr.URLs(w.reg.URL()))
	if err != nil {
		return w, err
	}
	// The alerts evaluate the seed's rules.
	pack := rules.Seed()
	settings := catalog.Settings{Rules: &pack, Registry: rcl}
	if w.work.codec, err = datasync.Register(ctx, rcl); err != nil {
		return w, err
	}
	if w.prod, err = kgo.NewClient(append(w.cluster.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond))...); err != nil {
		return w, err
	}
	w.adm = kadm.NewClient(w.prod)
	w.specs = map[string]func() (pipeline.Spec, error){
		"orders":     stage(ctx, settings, orders.Name, orders.Name),
		"alerts":     stage(ctx, settings, alerts.Name, alerts.Name),
		"priorauth":  stage(ctx, settings, priorauth.Name, priorauth.Name),
		"cdc":        stage(ctx, settings, datasync.Name, catalog.StageCDC),
		"validation": stage(ctx, settings, datasync.Name, catalog.StageValidation),
	}
	for name, spec := range w.specs {
		s, err := spec()
		if err != nil {
			return w, err
		}
		if err := pipeline.CreateTopics(ctx, w.adm, &s, 6, 1); err != nil {
			return w, fmt.Errorf("%s topics: %w", name, err)
		}
	}

	// Payers answer at once, a quarter pended first, through every
	// fault.
	w.work.paCfg = sim.PriorAuthWorldConfig{Seed: seed, Approve: 0.6, Deny: 0.2, Partial: 0.1, Pend: 0.25}
	if w.paWorld, err = sim.StartPriorAuthWorld(w.cluster, w.work.paCfg); err != nil {
		return w, err
	}
	var rxIDs []string
	w.work.prescriptions, rxIDs = sim.PriorAuthPrescriptions(seed, n/3)
	w.work.paIDs = make([]string, len(rxIDs))
	for i, rx := range rxIDs {
		w.work.paIDs[i] = priorauth.PriorAuthID(rx)
	}
	w.work.orders, _ = sim.MedicationOrders(seed, n)
	obs, err := sim.NewAlerts(sim.AlertsWorkload{Seed: seed, Patients: 300, AlertFraction: 0.2, PoisonFraction: 0.01, EnvelopeFraction: 0.5, MisKeyedFraction: 0.2})
	if err != nil {
		return w, err
	}
	if err := sim.Produce(ctx, w.prod, obs.PatientRecords()); err != nil {
		return w, err
	}
	w.work.observations, w.work.obsTruths = obs.NextN(n)
	w.work.sync, w.work.syncTruth = sim.DataSyncRecords(seed, n)
	w.work.n = n
	w.work.eventTime = eventSpan(w.work.orders, w.work.observations, w.work.sync, w.work.prescriptions)

	for name := range w.specs {
		for range 2 {
			if err := w.start(name); err != nil {
				return w, err
			}
		}
	}
	return w, nil
}

// close stops what still runs and releases the world, in the reverse
// order of its setup.
func (w *world) close() {
	_ = w.stopAll()
	if w.paWorld != nil {
		w.paWorld.Close()
	}
	if w.prod != nil {
		w.prod.Close()
	}
	if w.reg != nil {
		w.reg.Close()
	}
	if w.cluster != nil {
		w.cluster.Close()
	}
}

// round is the i-th of rounds equal shares of each workload (the
// prescriptions' share a third of the others').
func (w *world) round(i, rounds int) [][]*kgo.Record {
	n := w.work.n
	lo, hi := i*n/rounds, (i+1)*n/rounds
	return [][]*kgo.Record{w.work.orders[lo:hi], w.work.observations[lo:hi], w.work.sync[lo:hi], w.work.prescriptions[lo/3 : hi/3]}
}

// records is how many input records the workloads hold.
func (w *world) records() int {
	return len(w.work.orders) + len(w.work.observations) + len(w.work.sync) + len(w.work.prescriptions)
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

// instance is one running pipeline instance; txnID is its producer's
// transactional id, which a crash watches for and a successor fences.
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
