package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/pipeline/query"
	"github.com/carepipe/carepipe/sim"
)

// Run runs carepipe as configured until ctx ends, cfg.Duration passes, or a
// pipeline fails for good. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := errors.Join(cfg.validate(), cfg.needsRegistry()); err != nil {
		return err
	}
	log := cfg.Logger
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	var kafka []kgo.Opt
	var world *embedded
	var watch *saslWatch // credentials refused after start-up
	if cfg.Embedded() {
		var err error
		if world, err = startEmbedded(ctx, &cfg); err != nil {
			return err
		}
		defer world.close()
		kafka = world.cluster.ClientOpts()
		log.Info("embedded mode: in-process Kafka, simulated world, demo traffic",
			"brokers", world.cluster.Addrs(), "demo_rate", cfg.DemoRate, "seed", cfg.Seed)
	} else {
		var err error
		if kafka, err = cfg.kafkaOpts(); err != nil {
			return err
		}
		// A refused password or certificate is fatal, and said so, before
		// any pipeline starts retrying it as a connection error.
		if err := cfg.checkKafka(ctx, kafka, kafkaCheckTimeout); err != nil {
			return err
		}
		if cfg.SASLMechanism != "" {
			watch = newSASLWatch(cfg.SASLMechanism)
			kafka = append(kafka, kgo.WithHooks(watch))
		}
	}

	ps, err := buildPipelines(ctx, &cfg, kafka)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(ps)+4)

	// The HTTP server outlives the pipelines, so that metrics and probes
	// answer while they finish their transactions; it is shut down once
	// they have stopped.
	var srv *http.Server
	httpDone := make(chan struct{})
	if cfg.HTTPAddr != "" {
		var ln net.Listener
		var err error
		if srv, ln, err = serveHTTP(cfg.HTTPAddr, cfg.APIToken, ps, world != nil); err != nil {
			return err
		}
		log.Info("http listening", "addr", ln.Addr().String(), "advertised", cfg.AdvertiseHTTP)
		go func() {
			defer close(httpDone)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
				cancel()
			}
		}()
	} else {
		close(httpDone)
	}

	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.runner.Run(ctx); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	if world != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := world.feed(ctx, ps); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("demo traffic: %w", err)
				cancel()
			}
		}()
	}
	if watch != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case err := <-watch.failed:
				errs <- err
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if cfg.SummaryEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			summarize(ctx, &cfg, ps)
		}()
	}

	<-ctx.Done()
	wg.Wait()
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	<-httpDone
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// built is one running pipeline (datasync is three: one per stage).
type built struct {
	name       string
	runner     *pipeline.Runner
	alerts     *alerts.Processor
	priorauth  *priorauth.Processor
	orders     *orders.Processor
	cdc        *datasync.CDC
	validation *datasync.Validation
	reconcile  *datasync.Reconciliation
	codec      *datasync.Codec
}

func buildPipelines(ctx context.Context, cfg *Config, kafka []kgo.Opt) ([]*built, error) {
	var ps []*built
	for _, name := range cfg.Pipelines {
		set := metrics.NewSet()
		opts := func(set *metrics.Set) []pipeline.Option {
			opts := []pipeline.Option{
				pipeline.WithKafka(kafka...),
				pipeline.WithLogger(cfg.Logger),
				pipeline.WithMetrics(set),
				pipeline.WithInstanceID(cfg.InstanceID),
				pipeline.WithAdvertisedHTTP(cfg.AdvertiseHTTP),
			}
			if cfg.CommitInterval > 0 {
				opts = append(opts, pipeline.WithCommitInterval(cfg.CommitInterval))
			}
			if cfg.SessionTimeout > 0 {
				opts = append(opts, pipeline.WithSessionTimeout(cfg.SessionTimeout))
			}
			if cfg.TransactionTimeout > 0 {
				opts = append(opts, pipeline.WithTransactionTimeout(cfg.TransactionTimeout))
			}
			if len(cfg.CarryHeaders) > 0 {
				opts = append(opts, pipeline.WithCarriedHeaders(cfg.CarryHeaders...))
			}
			if cfg.CreateTopics || cfg.Embedded() {
				opts = append(opts, pipeline.WithCreateTopics(cfg.Partitions, -1))
			}
			return opts
		}
		switch name {
		case "alerts":
			// validate has loaded it once already: an error is not news.
			site, err := cfg.siteZone()
			if err != nil {
				return nil, err
			}
			aopts := []alerts.Option{alerts.WithMetrics(set), alerts.WithSiteTimeZone(site)}
			if cfg.RulesFile != "" {
				pack, err := rules.Load(cfg.RulesFile)
				if err != nil {
					return nil, err
				}
				aopts = append(aopts, alerts.WithRules(pack))
			}
			proc, err := alerts.New(aopts...)
			if err != nil {
				return nil, err
			}
			r, err := pipeline.New(proc.Spec(), opts(set)...)
			if err != nil {
				return nil, err
			}
			ps = append(ps, &built{name: name, runner: r, alerts: proc})
		case "priorauth":
			pc, err := cfg.priorAuthConfig()
			if err != nil {
				return nil, err
			}
			proc, err := priorauth.New(priorauth.WithMetrics(set), priorauth.WithConfig(pc))
			if err != nil {
				return nil, err
			}
			r, err := pipeline.New(proc.Spec(), opts(set)...)
			if err != nil {
				return nil, err
			}
			ps = append(ps, &built{name: name, runner: r, priorauth: proc})
		case "orders":
			proc := orders.New(set)
			r, err := pipeline.New(proc.Spec(), opts(set)...)
			if err != nil {
				return nil, err
			}
			ps = append(ps, &built{name: name, runner: r, orders: proc})
		case "datasync":
			stages, err := buildDataSync(ctx, cfg, opts)
			if err != nil {
				return nil, err
			}
			ps = append(ps, stages...)
		}
	}
	return ps, nil
}

// buildDataSync registers the canonical schemas (refusing an incompatible
// change) and builds the three data synchronization stages, each with its
// own group and metrics.
func buildDataSync(ctx context.Context, cfg *Config, opts func(*metrics.Set) []pipeline.Option) ([]*built, error) {
	reg, err := cfg.schemaRegistry()
	if err != nil {
		return nil, err
	}
	codec, err := codecAtStartUp(ctx, cfg, reg, cfg.registryRetry())
	if err != nil {
		return nil, err
	}
	rc := datasync.DefaultReconcileConfig()
	if cfg.ReconcileDeadline > 0 {
		rc.Deadline = cfg.ReconcileDeadline
	}
	sources, err := cfg.dataSyncSources()
	if err != nil {
		return nil, err
	}
	cdcOpts := []datasync.Option{datasync.WithSourceRegistry(reg)}
	if sources != nil {
		cdcOpts = append(cdcOpts, datasync.WithSources(sources))
	}
	var ps []*built
	set := metrics.NewSet()
	cdc, err := datasync.NewCDC(codec, append(cdcOpts, datasync.WithMetrics(set))...)
	if err != nil {
		return nil, err
	}
	r, err := pipeline.New(cdc.Spec(), opts(set)...)
	if err != nil {
		return nil, err
	}
	ps = append(ps, &built{name: "sync-cdc", runner: r, cdc: cdc, codec: codec})

	set = metrics.NewSet()
	val, err := datasync.NewValidation(codec, datasync.WithMetrics(set))
	if err != nil {
		return nil, err
	}
	if r, err = pipeline.New(val.Spec(), opts(set)...); err != nil {
		return nil, err
	}
	ps = append(ps, &built{name: "sync-val", runner: r, validation: val, codec: codec})

	set = metrics.NewSet()
	rec, err := datasync.NewReconciliation(codec, datasync.WithMetrics(set), datasync.WithReconcileConfig(rc))
	if err != nil {
		return nil, err
	}
	if r, err = pipeline.New(rec.Spec(), opts(set)...); err != nil {
		return nil, err
	}
	ps = append(ps, &built{name: "sync-rec", runner: r, reconcile: rec, codec: codec})
	return ps, nil
}

// serveHTTP listens on addr (a bare port or ":port" means loopback only)
// and serves the metrics, the probes and the query API. The query API
// answers with patient data, so it requires token as a bearer token when
// one is set, and an address other than loopback without one is refused:
// metrics and probes stay open for scrapers and kubelets. demo says that
// this is the embedded demo, which /readyz and /metrics then say too. The
// server keeps to defaultHTTPLimits.
func serveHTTP(addr, token string, ps []*built, demo bool) (*http.Server, net.Listener, error) {
	return serveHTTPLimited(addr, token, ps, demo, defaultHTTPLimits())
}

// serveHTTPLimited is serveHTTP within lim.
func serveHTTPLimited(addr, token string, ps []*built, demo bool, lim httpLimits) (*http.Server, net.Listener, error) {
	addr, loopback, err := httpAddr(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("http: %w", err)
	}
	api := false
	for _, p := range ps {
		api = api || p.priorauth != nil || p.reconcile != nil
	}
	if api && !loopback && token == "" {
		return nil, nil, fmt.Errorf("http: the query API on %s, not a loopback address, needs a bearer token: set CAREPIPE_API_TOKEN (or bind 127.0.0.1)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("http: %w", err)
	}
	ln = limitConns(ln, lim.maxConns)
	guard := func(h http.Handler) http.Handler { return query.RequireToken(token, h) }
	mux := http.NewServeMux()
	expo := newExposition(ps)
	expo.demo = demo
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := expo.write(w); err != nil {
			// The status line is gone: say it where a scraper fails on it.
			fmt.Fprintf(w, "\n# error gathering the runtime metrics: %v\n", err)
		}
	})
	for _, p := range ps {
		if p.priorauth != nil {
			q := guard(priorauth.QueryHandler(p.runner))
			mux.Handle("GET /api/priorauth", q)
			mux.Handle("GET /api/priorauth/{id}", q)
		}
		if p.reconcile != nil {
			q := guard(datasync.QueryHandler(p.runner))
			mux.Handle("GET /api/patients/{id}", q)
			mux.Handle("GET /api/sync/{entity}/{id}", q)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// Every pipeline that is not ready, each with why: the body an
		// operator reads from kubectl describe or curl.
		var not []string
		for _, p := range ps {
			if ok, why := p.runner.Health(); !ok {
				not = append(not, p.name+": "+why)
			}
		}
		state := "ready"
		if demo {
			state += " (" + demoNote + ")"
		}
		if len(not) > 0 {
			http.Error(w, "not "+state+"\n"+strings.Join(not, "\n"), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(state + "\n"))
	})
	return lim.server(mux), ln, nil
}

// httpAddr is addr as net.Listen takes it, and whether it is a loopback
// address. As in Go, ":8080" is every interface, so not loopback; a bare
// port number ("8080"), which Go would refuse, binds loopback only: the
// safe reading of an address that names no host. A host name other than
// localhost counts as not loopback: it may resolve to anything.
func httpAddr(addr string) (string, bool, error) {
	if _, err := strconv.Atoi(addr); err == nil {
		addr = net.JoinHostPort("127.0.0.1", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("address %q is not host:port, :port or a port number", addr)
	}
	if err := checkPort(port, 0); err != nil {
		return "", false, fmt.Errorf("address %q: %w", addr, err)
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	}
	return net.JoinHostPort(host, port), loopback, nil
}

// summarize prints one line per interval: rates and totals, no patient
// data. It starts with a legend of the columns that a newcomer could
// misread.
func summarize(ctx context.Context, cfg *Config, ps []*built) {
	fmt.Fprintln(cfg.Stdout, summaryLegend(ps, cfg.Embedded()))
	t := time.NewTicker(cfg.SummaryEvery)
	defer t.Stop()
	prev := make([]pipeline.Stats, len(ps))
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			secs := now.Sub(last).Seconds()
			last = now
			for i, p := range ps {
				s := p.runner.Stats()
				rate := float64(s.RecordsIn-prev[i].RecordsIn) / secs
				prev[i] = s
				fmt.Fprintln(cfg.Stdout, summaryLine(now, p, s, rate))
			}
		}
	}
}

// summaryLegend says what the summary's columns count. errors are the
// records that failed (undecodable, invalid, oversized, failed in
// processing) and went to the error topic. The expected outcomes of data
// synchronization have their own columns: a stale update, which lost to
// newer data, goes to data.sync.errors too (error-type conflict: DESIGN.md
// keeps it there for audit) but is no failure; a duplicate goes nowhere.
func summaryLegend(ps []*built, demo bool) string {
	legend := "summary: in = records consumed; errors = records that could not be processed, sent to the error topic"
	if demo {
		legend += " (the demo sends some bad records on purpose)"
	}
	if slices.ContainsFunc(ps, func(p *built) bool { return p.validation != nil }) {
		legend += "\n  expected outcomes, not errors: stale = updates that lost to newer data, kept on data.sync.errors as error-type conflict;" +
			"\n  duplicates = redeliveries already applied, dropped"
	}
	return legend
}

// summaryLine is pipeline p's summary line at now, from its stats s.
func summaryLine(now time.Time, p *built, s pipeline.Stats, rate float64) string {
	line := fmt.Sprintf("%s  %-9s in %8.0f/s  total %9d  errors %6d  commits %6d  aborts %3d  lag %6d",
		now.Format(time.TimeOnly), p.name, rate, s.RecordsIn, s.Errors-s.Conflicts, s.Commits, s.Aborts, s.Lag)
	if p.alerts != nil {
		line += fmt.Sprintf("  alerts %7d", p.alerts.AlertsTotal())
	}
	if p.priorauth != nil {
		line += fmt.Sprintf("  completed %5d", p.priorauth.Completed())
	}
	if p.orders != nil {
		line += fmt.Sprintf("  processed %5d", p.orders.Processed())
	}
	if p.cdc != nil {
		line += fmt.Sprintf("  changes %6d", p.cdc.Mapped())
	}
	if v := p.validation; v != nil {
		line += fmt.Sprintf("  validated %6d  conflicts resolved %4d  stale %4d  duplicates %4d",
			v.Count("applied")+v.Count("conflict_resolved"), v.Count("conflict_resolved"), s.Conflicts, v.Count("duplicate"))
	}
	if p.reconcile != nil {
		line += fmt.Sprintf("  reconciled %6d  overdue %4d", p.reconcile.Completed(), p.reconcile.Overdue())
	}
	return line
}

// embedded is the world of embedded mode: an in-process cluster and the
// demo traffic source.
type embedded struct {
	cluster  *sim.Cluster
	registry *srfake.Registry
	targets  *sim.SyncTargets
	prod     *kgo.Client
	work     *sim.Alerts
	paWorld  *sim.PriorAuthWorld
	cfg      *Config
	log      *slog.Logger
}

func startEmbedded(ctx context.Context, cfg *Config) (*embedded, error) {
	cluster, err := newEmbeddedCluster(cfg)
	if err != nil {
		return nil, err
	}
	prod, err := kgo.NewClient(cluster.ClientOpts()...)
	if err != nil {
		cluster.Close()
		return nil, err
	}
	work, err := sim.NewAlerts(sim.AlertsWorkload{
		Seed:             cfg.Seed,
		Patients:         cfg.DemoPatients,
		AlertFraction:    0.1,
		PoisonFraction:   0.002,
		EnvelopeFraction: 0.5,
		MisKeyedFraction: 0.1,
	})
	if err != nil {
		prod.Close()
		cluster.Close()
		return nil, err
	}
	w := &embedded{cluster: cluster, prod: prod, work: work, cfg: cfg, log: cfg.Logger}
	if slices.Contains(cfg.Pipelines, "priorauth") {
		// The outside world of prior authorizations: documentation,
		// submission, payers (a realistic mix, a quarter pended first, a
		// short decision delay) and communication.
		w.paWorld, err = sim.StartPriorAuthWorld(cluster, sim.PriorAuthWorldConfig{
			Seed: cfg.Seed, Approve: 0.7, Deny: 0.15, Partial: 0.1, Pend: 0.25, PayerDelay: time.Second,
		})
		if err != nil {
			prod.Close()
			cluster.Close()
			return nil, err
		}
	}
	if slices.Contains(cfg.Pipelines, "datasync") {
		// An in-memory schema registry, which the pipelines use as they
		// would a real one.
		w.registry = srfake.New()
		cfg.SchemaRegistryURL = w.registry.URL()
	}
	return w, nil
}

// prescriptionsPerSecond is the demo's prior-authorization traffic.
const prescriptionsPerSecond = 20

// feedPrescriptions sends seeded prescriptions at the demo rate until ctx
// ends.
func (w *embedded) feedPrescriptions(ctx context.Context) error {
	return w.feedGenerated(ctx, sim.PriorAuthPrescriptions, prescriptionsPerSecond)
}

// feedGenerated sends records of a seeded generator at rate until ctx ends,
// bounded like every load loop: an hour's worth. The generator is called
// for a thousand records at a time, each chunk with its own seed.
func (w *embedded) feedGenerated(ctx context.Context, gen func(seed int64, n int) ([]*kgo.Record, []string), rate int) error {
	const batch = 1000
	var pending []*kgo.Record
	chunk := int64(0)
	next := func() *kgo.Record {
		if len(pending) == 0 {
			pending, _ = gen(w.cfg.Seed*1_000_003+chunk, batch)
			chunk++
		}
		r := pending[0]
		pending = pending[1:]
		return r
	}
	return sim.Feed(ctx, w.prod, next, rate, rate*3600)
}

// feed loads the patient table, waits for the pipelines to be ready, then
// sends observations at the demo rate until ctx ends.
func (w *embedded) feed(ctx context.Context, ps []*built) error {
	// Topics are created by the runners; wait for them to be consuming.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !allReady(ps) {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	// Each pipeline's traffic is fed on its own goroutine.
	var feeds []func() error
	if w.paWorld != nil {
		feeds = append(feeds, func() error { return w.feedPrescriptions(ctx) })
	}
	if slices.ContainsFunc(ps, func(p *built) bool { return p.orders != nil }) {
		feeds = append(feeds, func() error { return w.feedOrders(ctx) })
	}
	if i := slices.IndexFunc(ps, func(p *built) bool { return p.reconcile != nil }); i >= 0 {
		if err := w.startTargets(ps[i].codec); err != nil {
			return err
		}
		feeds = append(feeds, func() error { return w.feedGenerated(ctx, sim.DataSyncSource, sourceRecordsPerSecond) })
	}
	if slices.ContainsFunc(ps, func(p *built) bool { return p.alerts != nil }) {
		feeds = append(feeds, func() error { return w.feedObservations(ctx, ps, tick) })
	}
	errc := make(chan error, len(feeds))
	for _, f := range feeds {
		go func() { errc <- f() }()
	}
	var errs []error
	for range feeds {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// ordersPerSecond is the demo's medication-order traffic.
const ordersPerSecond = 50

// feedOrders sends seeded medication orders at the demo rate until ctx
// ends.
func (w *embedded) feedOrders(ctx context.Context) error {
	return w.feedGenerated(ctx, sim.MedicationOrders, ordersPerSecond)
}

// feedObservations loads the patient table, then sends observations at the
// demo rate until ctx ends.
func (w *embedded) feedObservations(ctx context.Context, ps []*built, tick *time.Ticker) error {
	patients := w.work.PatientRecords()
	if err := sim.Produce(ctx, w.prod, patients); err != nil {
		return err
	}
	// Let the patient table take them in, so the first alerts are
	// enriched: the table is live, not transactional with the pipeline.
	for _, p := range ps {
		for p.alerts != nil && p.runner.Global(alerts.TopicPatients).Len() < len(patients) {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
	// Bounded like every load loop: at most an hour's worth at the rate.
	return sim.Feed(ctx, w.prod, w.work.NextRecord, w.cfg.DemoRate, w.cfg.DemoRate*3600)
}

func allReady(ps []*built) bool {
	for _, p := range ps {
		if !p.runner.Ready() {
			return false
		}
	}
	return true
}

// sourceRecordsPerSecond is the demo's source-system change traffic.
const sourceRecordsPerSecond = 50

// startTargets starts the simulated target systems, which acknowledge
// validated versions after about half a second, fail some first and never
// acknowledge a few (those reconciliations go overdue).
func (w *embedded) startTargets(codec *datasync.Codec) error {
	var err error
	w.targets, err = sim.StartSyncTargets(w.cluster, sim.SyncTargetsConfig{
		Seed: w.cfg.Seed, Delay: 500 * time.Millisecond, Fail: 0.05, Drop: 0.01,
		Read: func(r *kgo.Record) (string, string, int64, bool) {
			e, ok := datasync.EntityOfValidatedTopic(r.Topic)
			if !ok {
				return "", "", 0, false
			}
			_, _, version, _, err := codec.DecodeValue(r.Value, e)
			if err != nil {
				return "", "", 0, false
			}
			return string(e), string(r.Key), version, true
		},
	})
	return err
}

func (w *embedded) close() {
	if w.targets != nil {
		w.targets.Close()
	}
	if w.registry != nil {
		w.registry.Close()
	}
	if w.paWorld != nil {
		w.paWorld.Close()
	}
	w.prod.Close()
	w.cluster.Close()
}
