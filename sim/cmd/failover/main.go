// Command failover is the failover benchmark of issue 19: it runs two or
// three instances of the real carepipe binary (`carepipe run --pipelines
// alerts`) as child processes against one kfake broker process
// (sim/cmd/broker), feeds them FHIR Observations at a steady rate, and
// measures the end-to-end alert latency before, during and after one event:
//
//   - kill: kill -9 of one instance, which does not come back;
//   - kill-restart: kill -9 of one instance and a restart under the same
//     --instance-id (after -restart-delay);
//   - sigterm: SIGTERM of one instance, which does not come back;
//   - rolling: a rolling restart of every instance, one after another
//     (SIGTERM, wait for the exit, start it again under its id, wait for its
//     /readyz 200 and a stable group before the next).
//
// Every (instances, session timeout, event) combination is a run of its own
// on a fresh broker, and ends by itself:
//
//	go run ./sim/cmd/failover -instances 2,3 -session-timeouts 10s,6s
//
// The instance hit is inst-1. Latency is an alert's arrival at a
// read_committed reader of clinical.alerts minus the send time of the
// observation it comes from (the observation's Kafka timestamp, set by the
// producer when it hands the record over). Windows, by arrival time: before
// is the -phase before the event; during runs from the event until the group
// is settled again (state Stable, members the instance ids that should be
// there, every input partition assigned, each of those instances' /readyz
// 200, all of it for a second without a break: a rebalance can look settled
// for a sample) and every affected partition has resumed; after is the
// -phase after that. A rolling restart moves to the next instance once the
// group is settled. An alert belongs to the affected partitions when its
// observation went to an input partition that the instance hit owned when
// the event began (from DescribeGroups), else to the survivors'. A
// partition resumed when the first alert of an observation sent after the
// event arrived from it. The other instances' rebalances (each "partitions
// revoked" or "partitions assigned" in their logs, until their state was
// prepared again) are listed with the run. Lost and duplicated count alert
// ids against the workload's truth (sim.ExpectedAlertIDs) after the load
// stops and every expected alert has arrived, or the drain timed out.
//
// It prints a table per run and a summary in Markdown (also written to -out
// when given), and keeps in -dir, per run, the instances' and the broker's
// logs and arrivals.csv (every alert's partition, send and arrival time).
// It exits non-zero when a run could not be carried out or lost or
// duplicated an alert; the latency targets are reported, not
// enforced.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

// Events the benchmark knows, in the order it runs them.
var allEvents = []string{"kill", "kill-restart", "sigterm", "rolling"}

// seedRulesYAML is rules.Seed as a rules file: the seed's three rules,
// no suppression window and no NEWS2, so that every alert id the workload
// expects comes out once. main checks that it parses to rules.Seed.
const seedRulesYAML = `# The seed's three rules (rules.Seed): no suppression, no NEWS2.
suppression: 0s
rules:
  - id: heart-rate-high
    concept: heart-rate
    system: http://loinc.org
    unit: /min
    comparator: gt
    threshold: 120
    severity: high
    description: Elevated heart rate
  - id: systolic-bp-high
    concept: systolic-bp
    system: http://loinc.org
    unit: mm[Hg]
    comparator: gt
    threshold: 180
    severity: high
    description: Elevated blood pressure
  - id: glucose-low
    concept: glucose
    system: http://loinc.org
    unit: mg/dL
    comparator: lt
    threshold: 70
    severity: high
    description: Hypoglycemia
`

type config struct {
	instances     []int
	sessions      []time.Duration
	events        []string
	rate          int
	warmup        time.Duration
	phase         time.Duration
	restartDelay  time.Duration
	settleTimeout time.Duration
	drainTimeout  time.Duration
	partitions    int
	patients      int
	alertFraction float64
	seed          int64
	repeat        int
	carepipe      string
	broker        string
	dir           string
	out           string
}

func main() {
	var (
		cfg       config
		instances = flag.String("instances", "2,3", "instance counts to run, comma-separated (2 or more each)")
		sessions  = flag.String("session-timeouts", "10s", "carepipe --session-timeout values to run, comma-separated")
		events    = flag.String("events", strings.Join(allEvents, ","), "events to run, comma-separated: "+strings.Join(allEvents, ", "))
	)
	flag.IntVar(&cfg.rate, "rate", 200, "observations per second")
	flag.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "load before the before window")
	flag.DurationVar(&cfg.phase, "phase", 20*time.Second, "length of the before and after windows")
	flag.DurationVar(&cfg.restartDelay, "restart-delay", 0, "kill-restart: how long the killed instance stays down")
	flag.DurationVar(&cfg.settleTimeout, "settle-timeout", 0, "how long an event may take to settle (default: session timeout + 60s)")
	flag.DurationVar(&cfg.drainTimeout, "drain-timeout", 30*time.Second, "how long to wait for the last expected alerts after the load stops")
	flag.IntVar(&cfg.partitions, "partitions", 12, "partitions of the pipeline's topics")
	flag.IntVar(&cfg.patients, "patients", 1000, "patients in the workload")
	flag.Float64Var(&cfg.alertFraction, "alert-fraction", 0.3, "share of observations that alert")
	flag.Int64Var(&cfg.seed, "seed", 1, "workload seed")
	flag.IntVar(&cfg.repeat, "repeat", 1, "runs of each combination")
	flag.StringVar(&cfg.carepipe, "carepipe", "", "carepipe binary (default: go build of the repository root into -dir)")
	flag.StringVar(&cfg.broker, "broker", "", "broker binary (default: go build of ./sim/cmd/broker into -dir)")
	flag.StringVar(&cfg.dir, "dir", "", "directory for binaries and instance logs (default: a new temporary one, kept)")
	flag.StringVar(&cfg.out, "out", "", "also write the Markdown report to this file")
	flag.Parse()

	var err error
	if cfg.instances, err = parseInts(*instances); err != nil {
		fatalf("-instances: %v", err)
	}
	if cfg.sessions, err = parseDurations(*sessions); err != nil {
		fatalf("-session-timeouts: %v", err)
	}
	for _, e := range strings.Split(*events, ",") {
		if !slices.Contains(allEvents, e) {
			fatalf("-events: unknown event %q (know %s)", e, strings.Join(allEvents, ", "))
		}
		cfg.events = append(cfg.events, e)
	}
	for _, n := range cfg.instances {
		if n < 2 || n > cfg.partitions {
			fatalf("-instances: %d is not between 2 and the partition count", n)
		}
	}
	if cfg.rate <= 0 || cfg.phase <= 0 || cfg.partitions <= 0 {
		fatalf("-rate, -phase and -partitions must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := benchmark(ctx, &cfg, os.Stdout)
	if cfg.out != "" && report != "" {
		if werr := os.WriteFile(cfg.out, []byte(report), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "failover:", werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "failover: "+format+"\n", args...)
	os.Exit(2)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// benchmark prepares the binaries and the rules file, runs every
// combination, and returns the Markdown report. Its error says which runs
// failed or lost or duplicated alerts.
func benchmark(ctx context.Context, cfg *config, w io.Writer) (string, error) {
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "carepipe-failover-")
		if err != nil {
			return "", err
		}
		cfg.dir = d
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "failover: binaries and logs in %s\n", cfg.dir)
	if err := buildBinaries(ctx, cfg); err != nil {
		return "", err
	}
	rules := filepath.Join(cfg.dir, "seed-rules.yaml")
	if err := writeRules(rules); err != nil {
		return "", err
	}

	var (
		results []*result
		failed  []string
	)
	for _, st := range cfg.sessions {
		for _, n := range cfg.instances {
			for _, ev := range cfg.events {
				for k := range max(cfg.repeat, 1) {
					if ctx.Err() != nil {
						return summary(cfg, results), ctx.Err()
					}
					name := fmt.Sprintf("%s-%d-%s-%d", ev, n, st, k+1)
					fmt.Fprintf(w, "\n== %s: %d instances, session timeout %s, run %d\n", ev, n, st, k+1)
					r := &run{cfg: cfg, event: ev, n: n, session: st, rules: rules, name: name, log: w}
					res, err := r.do(ctx)
					if err != nil {
						failed = append(failed, fmt.Sprintf("%s: %v", name, err))
						fmt.Fprintf(w, "run failed: %v\n", err)
						continue
					}
					fmt.Fprint(w, res.detail())
					results = append(results, res)
					if res.lost > 0 || res.duplicated > 0 || res.unexpected > 0 {
						failed = append(failed, fmt.Sprintf("%s: %d lost, %d duplicated, %d unexpected alerts", name, res.lost, res.duplicated, res.unexpected))
					}
				}
			}
		}
	}
	rep := summary(cfg, results)
	fmt.Fprint(w, "\n"+rep)
	if len(failed) > 0 {
		return rep, errors.New(strings.Join(failed, "; "))
	}
	return rep, nil
}

func buildBinaries(ctx context.Context, cfg *config) error {
	root, err := repoRoot(ctx)
	if err != nil && (cfg.carepipe == "" || cfg.broker == "") {
		return fmt.Errorf("finding the repository root to build from: %w", err)
	}
	for _, b := range []struct {
		path *string
		pkg  string
		name string
	}{{&cfg.carepipe, ".", "carepipe"}, {&cfg.broker, "./sim/cmd/broker", "broker"}} {
		if *b.path != "" {
			continue
		}
		*b.path = filepath.Join(cfg.dir, b.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *b.path, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func writeRules(path string) error {
	pack, err := rules.Parse([]byte(seedRulesYAML))
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(pack, rules.Seed()) {
		return fmt.Errorf("the benchmark's rules file is not rules.Seed: %+v", pack)
	}
	return os.WriteFile(path, []byte(seedRulesYAML), 0o644)
}

// run is one event on a fresh broker and fresh instances.
type run struct {
	cfg     *config
	event   string
	n       int
	session time.Duration
	rules   string
	name    string
	log     io.Writer

	dir    string
	broker *exec.Cmd
	addr   string
	insts  []*instance
	prod   *kgo.Client
	cons   *kgo.Client
	adm    *kadm.Client
	watch  *watcher
	gen    *sim.Alerts
	input  string
	alerts string

	mu       sync.Mutex
	sent     map[string]*sentObs
	truths   []sim.ObservationTruth
	arrivals []arrival
	errRecs  int
	prodErrs int

	eventStart time.Time
}

type sentObs struct {
	at        time.Time
	partition int32 // -1 until acknowledged
	failed    bool
}

type arrival struct {
	alertID, obsID string
	at             time.Time
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "  %6.1fs "+format+"\n", append([]any{time.Since(r.watch.start).Seconds()}, args...)...)
}

func (r *run) do(ctx context.Context) (res *result, err error) {
	r.dir = filepath.Join(r.cfg.dir, r.name)
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	r.sent = map[string]*sentObs{}
	r.input, r.alerts = alerts.TopicObservations, alerts.TopicAlerts
	if err := r.startBroker(ctx); err != nil {
		return nil, err
	}
	defer r.stopAll()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	r.watch = newWatcher(r.adm, int32(r.cfg.partitions))
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go r.watch.run(wctx)

	for i := range r.n {
		in, err := r.newInstance(fmt.Sprintf("inst-%d", i+1))
		if err != nil {
			return nil, err
		}
		r.insts = append(r.insts, in)
		r.watch.track(in)
		if err := in.start(); err != nil {
			return nil, err
		}
	}
	all := r.instanceIDs(nil)
	if _, err := r.watch.settled(ctx, time.Now(), all, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("instances never settled at start: %w", err)
	}
	r.logf("%d instances ready, group stable", r.n)

	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() { defer close(consumed); r.consume(cctx) }()
	stopConsume := sync.OnceFunc(func() { ccancel(); <-consumed })
	defer stopConsume()

	lctx, lcancel := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() { defer close(loaded); r.load(lctx) }()
	stopLoad := sync.OnceFunc(func() { lcancel(); <-loaded })
	defer stopLoad()

	if err := sleep(ctx, r.cfg.warmup+r.cfg.phase); err != nil {
		return nil, err
	}
	steps, err := r.fire(ctx)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, r.cfg.phase); err != nil {
		return nil, err
	}
	stopLoad()
	r.logf("load stopped: %d observations sent", r.sentCount())
	r.drain(ctx)
	stopConsume()
	r.stopAll()
	res = r.analyse(steps)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) startBroker(ctx context.Context) error {
	logf, err := os.Create(filepath.Join(r.dir, "broker.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(r.cfg.broker)
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.broker = cmd
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok || l == "" {
			return errors.New("the broker printed no address (see broker.log)")
		}
		r.addr = l
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("the broker did not start within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepare creates the pipeline's topics, produces the patient table and
// opens the benchmark's clients.
func (r *run) prepare(ctx context.Context) error {
	base := []kgo.Opt{kgo.SeedBrokers(r.addr), kgo.MetadataMinAge(100 * time.Millisecond)}
	var err error
	admc, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	r.adm = kadm.NewClient(admc)
	proc, err := alerts.New(alerts.WithRules(rules.Seed()))
	if err != nil {
		return err
	}
	spec := proc.Spec()
	if err := pipeline.CreateTopics(ctx, r.adm, &spec, int32(r.cfg.partitions), 1); err != nil {
		return err
	}
	r.gen, err = sim.NewAlerts(sim.AlertsWorkload{
		Seed:             r.cfg.seed,
		Patients:         r.cfg.patients,
		AlertFraction:    r.cfg.alertFraction,
		EnvelopeFraction: 0.5,
	})
	if err != nil {
		return err
	}
	if r.prod, err = kgo.NewClient(append(base, kgo.ProducerLinger(time.Millisecond))...); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sim.Produce(pctx, r.prod, r.gen.PatientRecords()); err != nil {
		return err
	}
	// FetchLimits last: the guard against kfake's lost aborted list.
	r.cons, err = kgo.NewClient(append(append(base,
		kgo.ConsumeTopics(alerts.TopicAlerts, alerts.TopicErrors),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	), pipeline.FetchLimits(2*r.cfg.partitions)...)...)
	return err
}

// load sends observations at cfg.rate until ctx ends: a token bucket
// refilled every 10 ms. Each record's Kafka timestamp is its send time.
func (r *run) load(ctx context.Context) {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	perTick := float64(r.cfg.rate) * tick.Seconds()
	tokens := 0.0
	for {
		select {
		case <-ctx.Done():
			r.prod.Flush(context.Background())
			return
		case <-t.C:
		}
		tokens += perTick
		for ; tokens >= 1; tokens-- {
			o := r.gen.Next()
			now := time.Now()
			o.Record.Timestamp = now
			s := &sentObs{at: now, partition: -1}
			r.mu.Lock()
			r.sent[o.Truth.ObservationID] = s
			r.truths = append(r.truths, o.Truth)
			r.mu.Unlock()
			r.prod.Produce(context.Background(), o.Record, func(rec *kgo.Record, err error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				if err != nil {
					s.failed = true
					r.prodErrs++
					return
				}
				s.partition = rec.Partition
			})
		}
	}
}

func (r *run) sentCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.truths)
}

// consume reads clinical.alerts and its error topic, read_committed,
// stamping each alert with its arrival.
func (r *run) consume(ctx context.Context) {
	for {
		fs := r.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Topic != alerts.TopicAlerts {
				r.errRecs++
				return
			}
			var a struct {
				AlertID       string `json:"alertId"`
				ObservationID string `json:"observationId"`
			}
			if err := json.Unmarshal(rec.Value, &a); err != nil {
				a.AlertID = "undecodable@" + strconv.Itoa(int(rec.Partition)) + ":" + strconv.FormatInt(rec.Offset, 10)
			}
			r.arrivals = append(r.arrivals, arrival{alertID: a.AlertID, obsID: a.ObservationID, at: now})
		})
		r.mu.Unlock()
	}
}

// drain waits until every expected alert has arrived (then 2 s more, for
// duplicates) or the drain timeout passes.
func (r *run) drain(ctx context.Context) {
	r.mu.Lock()
	want := map[string]bool{}
	for _, t := range r.truths {
		if s := r.sent[t.ObservationID]; s.failed {
			continue
		}
		for _, rule := range t.Rules {
			want[t.ObservationID+"-"+rule] = true
		}
	}
	r.mu.Unlock()
	deadline := time.Now().Add(r.cfg.drainTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r.mu.Lock()
		seen := map[string]bool{}
		for _, a := range r.arrivals {
			if want[a.alertID] {
				seen[a.alertID] = true
			}
		}
		r.mu.Unlock()
		if len(seen) == len(want) {
			r.logf("drained: all %d expected alerts arrived", len(want))
			_ = sleep(ctx, 2*time.Second)
			return
		}
		_ = sleep(ctx, 200*time.Millisecond)
	}
	r.logf("drain timed out after %s", r.cfg.drainTimeout)
}

// stopAll stops the instances (SIGTERM, then SIGKILL after 20 s) and the
// broker. Safe to call twice.
func (r *run) stopAll() {
	for _, in := range r.insts {
		in.stop(20 * time.Second)
	}
	if r.cons != nil {
		r.cons.Close()
		r.cons = nil
	}
	if r.prod != nil {
		r.prod.Close()
		r.prod = nil
	}
	if r.adm != nil {
		r.adm.Close()
		r.adm = nil
	}
	if r.broker != nil {
		_ = r.broker.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = r.broker.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = r.broker.Process.Kill()
			<-done
		}
		r.broker = nil
	}
}

// step is one instance hit: the event of a run, or one instance of a
// rolling restart.
type step struct {
	victim    string
	action    string
	start     time.Time
	exited    time.Time // zero for kill -9, which is immediate
	restarted time.Time
	settled   time.Time
	end       time.Time // settled, and every affected partition resumed
	affected  []int32
	pauses    []pause // rebalances the other instances went through
}

func (s *step) affects(p int32) bool { return slices.Contains(s.affected, p) }

// fire carries out the run's event and returns its steps, each settled.
func (r *run) fire(ctx context.Context) ([]*step, error) {
	limit := r.cfg.settleTimeout
	if limit == 0 {
		limit = r.session + 60*time.Second
	}
	victim := r.insts[0]
	switch r.event {
	case "kill", "sigterm", "kill-restart":
		s := &step{victim: victim.id, action: r.event}
		s.start = time.Now()
		s.affected = r.watch.owned(victim.id)
		if r.event == "sigterm" {
			victim.signal(syscall.SIGTERM)
			r.logf("SIGTERM %s (owned partitions %v)", victim.id, s.affected)
			if !victim.waitExit(30 * time.Second) {
				return nil, fmt.Errorf("%s did not exit within 30s of SIGTERM", victim.id)
			}
			s.exited = time.Now()
			r.logf("%s exited: %s", victim.id, victim.exitStatus())
		} else {
			victim.signal(syscall.SIGKILL)
			r.logf("kill -9 %s (owned partitions %v)", victim.id, s.affected)
			victim.waitExit(10 * time.Second)
		}
		expect := r.instanceIDs(victim)
		if r.event == "kill-restart" {
			if err := sleep(ctx, r.cfg.restartDelay); err != nil {
				return nil, err
			}
			if err := victim.start(); err != nil {
				return nil, err
			}
			s.restarted = time.Now()
			r.logf("restarted %s", victim.id)
			expect = r.instanceIDs(nil)
		}
		var err error
		if s.settled, err = r.watch.settled(ctx, s.start, expect, limit); err != nil {
			return nil, err
		}
		r.logf("settled %.2fs after the event", s.settled.Sub(s.start).Seconds())
		return []*step{s}, nil
	case "rolling":
		var steps []*step
		for _, in := range r.insts {
			s := &step{victim: in.id, action: "restart"}
			s.start = time.Now()
			s.affected = r.watch.owned(in.id)
			in.signal(syscall.SIGTERM)
			r.logf("SIGTERM %s (owned partitions %v)", in.id, s.affected)
			if !in.waitExit(30 * time.Second) {
				return nil, fmt.Errorf("%s did not exit within 30s of SIGTERM", in.id)
			}
			s.exited = time.Now()
			r.logf("%s exited: %s", in.id, in.exitStatus())
			if err := in.start(); err != nil {
				return nil, err
			}
			s.restarted = time.Now()
			var err error
			if s.settled, err = r.watch.settled(ctx, s.start, r.instanceIDs(nil), limit); err != nil {
				return nil, err
			}
			r.logf("%s ready, group stable: %.2fs after its SIGTERM", in.id, s.settled.Sub(s.start).Seconds())
			steps = append(steps, s)
		}
		return steps, nil
	}
	return nil, fmt.Errorf("unknown event %q", r.event)
}

func (r *run) instanceIDs(except *instance) []string {
	var ids []string
	for _, in := range r.insts {
		if in != except {
			ids = append(ids, in.id)
		}
	}
	return ids
}

// instance is one carepipe process, restartable under its id.
type instance struct {
	id      string
	port    int
	args    []string
	binary  string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	state    *os.ProcessState
	expected bool // the benchmark stopped it
	unwanted []string
}

func (r *run) newInstance(id string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &instance{
		id:     id,
		port:   port,
		binary: r.cfg.carepipe,
		args: []string{"run",
			"--pipelines", "alerts",
			"--brokers", r.addr,
			"--instance-id", id,
			"--create-topics",
			"--http", "127.0.0.1:" + strconv.Itoa(port),
			"--session-timeout", r.session.String(),
			"--rules", r.rules,
			"--summary-every", "-1s",
		},
		logPath: filepath.Join(r.dir, id+".log"),
	}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start starts the process (again), its output appended to its log.
func (in *instance) start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil && in.state == nil {
		return fmt.Errorf("%s is still running", in.id)
	}
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(in.binary, in.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", in.id, err)
	}
	done := make(chan struct{})
	in.cmd, in.done, in.state, in.expected = cmd, done, nil, false
	go func() {
		_ = cmd.Wait()
		logf.Close()
		in.mu.Lock()
		in.state = cmd.ProcessState
		if !in.expected {
			in.unwanted = append(in.unwanted, cmd.ProcessState.String())
		}
		in.mu.Unlock()
		close(done)
	}()
	return nil
}

// childEnv is the environment without carepipe's and Kafka's variables,
// so that only the flags configure the instances.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CAREPIPE_") || strings.HasPrefix(kv, "KAFKA_") || strings.HasPrefix(kv, "SCHEMA_REGISTRY_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cmd != nil && in.state == nil
}

func (in *instance) signal(sig syscall.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.state != nil {
		return
	}
	in.expected = true
	_ = in.cmd.Process.Signal(sig)
}

func (in *instance) waitExit(d time.Duration) bool {
	in.mu.Lock()
	done := in.done
	in.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (in *instance) exitStatus() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state == nil {
		return "running"
	}
	return in.state.String()
}

func (in *instance) stop(grace time.Duration) {
	if !in.running() {
		return
	}
	in.signal(syscall.SIGTERM)
	if !in.waitExit(grace) {
		in.signal(syscall.SIGKILL)
		in.mu.Lock()
		_ = in.cmd.Process.Kill()
		in.mu.Unlock()
		in.waitExit(10 * time.Second)
	}
}

func (in *instance) ready(cl *http.Client) bool {
	if !in.running() {
		return false
	}
	resp, err := cl.Get("http://127.0.0.1:" + strconv.Itoa(in.port) + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// watcher samples the group (DescribeGroups) and the instances' /readyz
// every 100 ms.
type watcher struct {
	adm        *kadm.Client
	partitions int32
	http       *http.Client
	start      time.Time

	mu      sync.Mutex
	insts   []*instance
	samples []sample
	wake    chan struct{}
}

type sample struct {
	at     time.Time
	state  string
	owners map[string][]int32 // instance id: fhir.Observation partitions
	ready  map[string]bool
}

func newWatcher(adm *kadm.Client, partitions int32) *watcher {
	return &watcher{
		adm: adm, partitions: partitions, start: time.Now(),
		http: &http.Client{Timeout: 500 * time.Millisecond},
		wake: make(chan struct{}, 1),
	}
}

func (w *watcher) track(in *instance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.insts = append(w.insts, in)
}

func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A sample's time is when it began: its readiness answers are
		// no older than that.
		s := sample{at: time.Now(), owners: map[string][]int32{}, ready: map[string]bool{}}
		w.mu.Lock()
		insts := slices.Clone(w.insts)
		w.mu.Unlock()
		for _, in := range insts {
			s.ready[in.id] = in.ready(w.http)
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		gs, err := w.adm.DescribeGroups(dctx, alerts.Group)
		cancel()
		if err == nil {
			if g, ok := gs[alerts.Group]; ok && g.Err == nil {
				s.state = g.State
				for _, m := range g.Members {
					id := m.MemberID
					if m.InstanceID != nil {
						id = *m.InstanceID
					}
					s.owners[id] = nil
					if a, ok := m.Assigned.AsConsumer(); ok {
						for _, t := range a.Topics {
							if t.Topic == alerts.TopicObservations {
								s.owners[id] = append(s.owners[id], t.Partitions...)
							}
						}
					}
					slices.Sort(s.owners[id])
				}
			}
		}
		w.mu.Lock()
		w.samples = append(w.samples, s)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// owned is what the latest sample says id owns.
func (w *watcher) owned(id string) []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return nil
	}
	return slices.Clone(w.samples[len(w.samples)-1].owners[id])
}

// settleHold is how long the group must look settled before it counts as
// settled: a rebalance can leave it Stable and every instance ready for a
// sample or two between two generations.
const settleHold = time.Second

// settled waits until the samples taken after since show the group Stable
// with exactly the members ids, every input partition assigned and each of
// ids ready, for settleHold without a break, and returns the time of the
// first of them.
func (w *watcher) settled(ctx context.Context, since time.Time, ids []string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	seen := 0
	var from time.Time // the first sample of the current run of good ones
	for {
		w.mu.Lock()
		fresh := w.samples[seen:]
		seen = len(w.samples)
		w.mu.Unlock()
		for _, s := range fresh {
			if !s.at.After(since) {
				continue
			}
			if s.state != "Stable" || !w.complete(s, ids) {
				from = time.Time{}
				continue
			}
			if from.IsZero() {
				from = s.at
			}
			if s.at.Sub(from) >= settleHold {
				return from, nil
			}
		}
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("group not settled with members %v within %s (last: %s)", ids, limit, w.last())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func (w *watcher) complete(s sample, ids []string) bool {
	if len(s.owners) != len(ids) {
		return false
	}
	n := 0
	for _, id := range ids {
		ps, ok := s.owners[id]
		if !ok || !s.ready[id] {
			return false
		}
		n += len(ps)
	}
	return n == int(w.partitions)
}

func (w *watcher) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return "no sample"
	}
	s := w.samples[len(w.samples)-1]
	return fmt.Sprintf("state %q, owners %v, ready %v", s.state, s.owners, s.ready)
}

// result is what one run measured.
type result struct {
	event      string
	n          int
	session    time.Duration
	steps      []*step
	windows    []window
	resume     []resumeOf // per step
	sent       int
	expected   int
	arrived    int
	lost       int
	duplicated int
	unexpected int
	errRecs    int
	prodErrs   int
	unwanted   []string
}

type window struct {
	name                string
	all, survivors, aff stats
}

type stats struct {
	n             int
	p50, p99, max time.Duration
}

type resumeOf struct {
	victim  string
	worst   time.Duration // slowest affected partition; -1: one never resumed
	best    time.Duration
	missing int
}

func (r *run) analyse(steps []*step) *result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &result{event: r.event, n: r.n, session: r.session, steps: steps, sent: len(r.truths), errRecs: r.errRecs, prodErrs: r.prodErrs}
	for _, in := range r.insts {
		for _, u := range in.unwanted {
			res.unwanted = append(res.unwanted, in.id+": "+u)
		}
	}

	// Truth.
	want := map[string]int{}
	for _, t := range r.truths {
		if r.sent[t.ObservationID].failed {
			continue
		}
		for _, rule := range t.Rules {
			want[t.ObservationID+"-"+rule]++
		}
	}
	res.expected = len(want)
	got := map[string]int{}
	for _, a := range r.arrivals {
		got[a.alertID]++
	}
	res.arrived = len(r.arrivals)
	for id := range want {
		if got[id] == 0 {
			res.lost++
		}
	}
	for id, n := range got {
		if want[id] == 0 {
			res.unexpected += n
		} else if n > 1 {
			res.duplicated += n - 1
		}
	}

	// First arrivals only: a duplicate is counted above.
	var firsts []arrival
	counted := map[string]bool{}
	for _, a := range r.arrivals {
		if s, ok := r.sent[a.obsID]; counted[a.alertID] || !ok || s.partition < 0 {
			continue
		}
		counted[a.alertID] = true
		firsts = append(firsts, a)
	}

	// When each affected partition resumed: the first alert of an
	// observation sent after the step began.
	for _, st := range steps {
		resumed := map[int32]time.Duration{}
		for _, a := range firsts {
			s := r.sent[a.obsID]
			if !s.at.After(st.start) || !st.affects(s.partition) {
				continue
			}
			if d, ok := resumed[s.partition]; !ok || a.at.Sub(st.start) < d {
				resumed[s.partition] = a.at.Sub(st.start)
			}
		}
		ro := resumeOf{victim: st.victim, best: -1}
		for _, p := range st.affected {
			d, ok := resumed[p]
			if !ok {
				ro.missing++
				continue
			}
			ro.worst = max(ro.worst, d)
			if ro.best < 0 || d < ro.best {
				ro.best = d
			}
		}
		// A step ends when the group settled and its partitions have
		// resumed: their backlog, held up to then, is the step's.
		st.end = st.settled
		if ro.missing == 0 {
			st.end = maxTime(st.end, st.start.Add(ro.worst))
		} else {
			ro.worst = -1
		}
		res.resume = append(res.resume, ro)
	}

	// Latency by window of arrival.
	first := steps[0].start
	r.eventStart = first
	last := steps[len(steps)-1].end
	type sample struct {
		d        time.Duration
		affected bool
	}
	var before, during, after []sample
	for _, a := range firsts {
		s := r.sent[a.obsID]
		d := a.at.Sub(s.at)
		switch {
		case a.at.Before(first) && a.at.After(first.Add(-r.cfg.phase)):
			before = append(before, sample{d, steps[0].affects(s.partition)})
		case !a.at.Before(first) && !a.at.After(last):
			st := steps[0]
			for _, x := range steps {
				if !a.at.Before(x.start) {
					st = x
				}
			}
			during = append(during, sample{d, st.affects(s.partition)})
		case a.at.After(last) && !a.at.After(last.Add(r.cfg.phase)):
			after = append(after, sample{d, steps[len(steps)-1].affects(s.partition)})
		}
	}
	for _, wd := range []struct {
		name string
		ss   []sample
	}{{"before", before}, {"during", during}, {"after", after}} {
		var all, surv, aff []time.Duration
		for _, s := range wd.ss {
			all = append(all, s.d)
			if s.affected {
				aff = append(aff, s.d)
			} else {
				surv = append(surv, s.d)
			}
		}
		res.windows = append(res.windows, window{name: wd.name, all: statsOf(all), survivors: statsOf(surv), aff: statsOf(aff)})
	}
	for i, st := range steps {
		until := st.end.Add(time.Second)
		if i+1 < len(steps) {
			until = steps[i+1].start
		}
		st.pauses = r.survivorPauses(st, until)
	}
	if err := r.writeArrivals(firsts); err != nil {
		fmt.Fprintf(r.log, "writing arrivals.csv: %v\n", err)
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func statsOf(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration {
		i := int(float64(len(ds))*p+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return stats{n: len(ds), p50: q(0.50), p99: q(0.99), max: ds[len(ds)-1]}
}

func (s stats) String() string {
	if s.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s (%d)", ms(s.p50), ms(s.p99), ms(s.max), s.n)
}

func ms(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < 10*time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + " ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
}

func (res *result) detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| window | all: p50 / p99 / max (alerts) | survivors' partitions | affected partitions |\n|---|---|---|---|\n")
	for _, w := range res.windows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", w.name, w.all, w.survivors, w.aff)
	}
	fmt.Fprintln(&b)
	for i, st := range res.steps {
		ro := res.resume[i]
		fmt.Fprintf(&b, "- %s %s: partitions %v; settled after %s", st.action, st.victim, st.affected, ms(st.settled.Sub(st.start)))
		if !st.exited.IsZero() {
			fmt.Fprintf(&b, ", exited after %s", ms(st.exited.Sub(st.start)))
		}
		fmt.Fprintf(&b, "; its partitions resumed after %s (first) to %s (last)", ms(ro.best), ms(ro.worst))
		if ro.missing > 0 {
			fmt.Fprintf(&b, ", %d never", ro.missing)
		}
		fmt.Fprintf(&b, "; ended (settled and resumed) after %s\n", ms(st.end.Sub(st.start)))
		for _, p := range st.pauses {
			fmt.Fprintf(&b, "  - %s rebalanced %s after the event: paused %s (until its state was prepared)\n", p.instance, ms(p.at.Sub(st.start)), ms(p.d))
		}
	}
	fmt.Fprintf(&b, "- %d observations sent (%d failed), %d alerts expected, %d arrived: %d lost, %d duplicated, %d unexpected; %d error records\n",
		res.sent, res.prodErrs, res.expected, res.arrived, res.lost, res.duplicated, res.unexpected, res.errRecs)
	if len(res.unwanted) > 0 {
		fmt.Fprintf(&b, "- instances that exited unasked: %s\n", strings.Join(res.unwanted, "; "))
	}
	return b.String()
}

// summary is one row per run: the figures the targets are about.
func summary(cfg *config, results []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Alert latency p50 / p99 / max (alerts counted); %d obs/s, %d partitions, %.0f%% alerting, windows of %s before and after.\n\n",
		cfg.rate, cfg.partitions, 100*cfg.alertFraction, cfg.phase)
	b.WriteString("| instances | session timeout | event | before (all) | during, survivors' partitions | during, affected partitions | after (all) | settled after | affected partitions resumed after (last) | other instances' rebalances (longest pause) | lost | duplicated |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		var settled, resumed []string
		pauses, longest := 0, time.Duration(0)
		for i, st := range r.steps {
			settled = append(settled, ms(st.settled.Sub(st.start)))
			resumed = append(resumed, ms(r.resume[i].worst))
			for _, p := range st.pauses {
				pauses++
				longest = max(longest, p.d)
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %d (%s) | %d | %d |\n",
			r.n, r.session, r.event, r.windows[0].all, r.windows[1].survivors, r.windows[1].aff, r.windows[2].all,
			strings.Join(settled, ", "), strings.Join(resumed, ", "), pauses, ms(longest), r.lost, r.duplicated+r.unexpected)
	}
	return b.String()
}

// writeArrivals writes each alert's first arrival to arrivals.csv in the
// run's directory: seconds from the first step, input partition, sent and
// arrived (ms after the first step), latency in ms.
func (r *run) writeArrivals(firsts []arrival) error {
	f, err := os.Create(filepath.Join(r.dir, "arrivals.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "alert_id,partition,sent_ms,arrived_ms,latency_ms")
	t0 := r.eventStart
	for _, a := range firsts {
		s := r.sent[a.obsID]
		fmt.Fprintf(w, "%s,%d,%d,%d,%d\n", a.alertID, s.partition, s.at.Sub(t0).Milliseconds(), a.at.Sub(t0).Milliseconds(), a.at.Sub(s.at).Milliseconds())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pause is one rebalance an instance other than the one hit went through:
// from its revoke (eager: every partition), or from an assignment, until
// it had prepared its state for the new assignment again.
type pause struct {
	instance string
	at       time.Time
	d        time.Duration
}

// survivorPauses reads the other instances' logs for the rebalances they
// went through between the step's start and its end (and a second after).
func (r *run) survivorPauses(st *step, until time.Time) []pause {
	var out []pause
	for _, in := range r.insts {
		if in.id == st.victim {
			continue
		}
		evs, err := readLog(in.logPath)
		if err != nil {
			continue
		}
		for i, e := range evs {
			if e.at.Before(st.start) || !e.at.Before(until) {
				continue
			}
			// An episode starts at a revoke, or at an assignment that
			// follows none (the runner halts its tasks on every
			// assignment), and lasts until the last state prepared
			// before the next one.
			revoke := e.msg == "partitions revoked"
			if !revoke && (e.msg != "partitions assigned" || (i > 0 && evs[i-1].msg == "partitions revoked")) {
				continue
			}
			p := pause{instance: in.id, at: e.at}
			assigned := !revoke
			for _, f := range evs[i+1:] {
				if f.msg == "partitions revoked" || (f.msg == "partitions assigned" && assigned) {
					break
				}
				if f.msg == "partitions assigned" {
					assigned = true
				}
				if f.msg == "partitions assigned" || f.msg == "state prepared" {
					p.d = f.at.Sub(e.at)
				}
			}
			out = append(out, p)
		}
	}
	return out
}

type logEvent struct {
	at  time.Time
	msg string
}

// readLog reads the rebalance lines of an instance's JSON log (every start
// of it): revokes, assignments and states prepared, and nothing between
// them, so that a revoke and its assignment stay next to each other at any
// log level.
func readLog(path string) ([]logEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs []logEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Time.IsZero() {
			continue
		}
		switch l.Msg {
		case "partitions revoked", "partitions assigned", "state prepared":
			evs = append(evs, logEvent{at: l.Time, msg: l.Msg})
		}
	}
	return evs, sc.Err()
}
