// Command carepipe runs healthcare event pipelines on Kafka, exactly once.
// This file is wiring only: flags and environment into app.Config, signals
// into a context, and the exit code.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/loadgen"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/topics"
	"github.com/carepipe/carepipe/version"
	"go.yaml.in/yaml/v3"
)

const usage = `carepipe: healthcare event pipelines on Kafka, exactly once.

Usage:
  carepipe run   [flags]          run the pipelines (no --brokers: embedded demo, unless --demo=off)
  carepipe topics plan|apply ...  compare the pipelines' topics with the cluster, or make them so
                                  (plan without --brokers: against an empty cluster)
  carepipe rules check FILE       validate an alert rules file
  carepipe loadgen [flags]        load a pipeline and measure it (no --brokers: embedded)
  carepipe config check [flags]   check the configuration of run (file, environment, flags),
                                  every mistake at once, and print it in the file's keys
  carepipe version                print the version, VCS revision and Go version (also --version)
  carepipe describe [--pipeline P] [--json]  each pipeline's topics, stores, timers and ids
  carepipe errors list|show|replay --pipeline P  read an error topic; replay originals, exactly once
  carepipe reset --pipeline P [--dry-run]  reset a stopped pipeline's offsets and internal topics

Run 'carepipe run --help' (or the help of any other command) for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if h := args[len(args)-1]; (h == "-h" || h == "--help") && len(args) > 1 &&
		(args[0] == "rules" || args[0] == "version" || (len(args) == 2 && (args[0] == "topics" || args[0] == "config"))) {
		// Commands without flags of their own, or help asked for before
		// the subcommand that has them: the usage says it all.
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "topics":
		if len(args) < 2 || (args[1] != "plan" && args[1] != "apply") {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return topicsCmd(args[1] == "apply", args[2:], stdout, stderr)
	case "rules":
		if len(args) != 3 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		pack, err := rules.Load(args[2])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		news2 := "off"
		if pack.NEWS2.Enabled {
			news2 = "on"
		}
		fmt.Fprintf(stdout, "%s: %d rules, NEWS2 %s, all valid\n", args[2], len(pack.Rules), news2)
		return 0
	case "loadgen":
		return loadgenCmd(args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return configCmd(args[2:], stdout, stderr)
	case "describe":
		return describeCmd(args[1:], stdout, stderr)
	case "errors":
		return errorsCmd(args[1:], stdout, stderr)
	case "reset":
		return resetCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		if len(args) != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		fmt.Fprintln(stdout, version.Get())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	rc, code := runConfig("run", args, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg, level := rc.cfg, rc.level
	// No brokers with the demo off (as in the container image) is said
	// plainly, with how to run the demo, rather than as a failed start.
	if err := cfg.CheckDemo(); err != nil {
		rc.problems = append(rc.problems, err)
	}
	if len(rc.problems) > 0 {
		fmt.Fprintf(stderr, "invalid configuration (%s; carepipe config check shows it all):\n", rc.from())
		for _, p := range app.Mistakes(rc.problems...) {
			fmt.Fprintln(stderr, p)
		}
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Stdout = stdout
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v := version.Get()
	log.Info("starting", "version", v.Version, "revision", v.Revision, "go_version", v.GoVersion, "config", cfg.Redacted())
	start := time.Now()
	if err := app.Run(ctx, cfg); err != nil {
		log.Error("carepipe stopped with an error", "error", err.Error())
		return 1
	}
	log.Info("carepipe stopped cleanly", "ran", time.Since(start).Round(time.Millisecond).String())
	return 0
}

// configCmd is `carepipe config check`: the configuration of `carepipe
// run` with the same file, environment and flags, checked, every mistake
// reported at once with its key and where it came from; and printed in the
// config file's keys, secrets left out, so that it can be pasted back.
func configCmd(args []string, stdout, stderr io.Writer) int {
	rc, code := runConfig("config check", args, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg, level, problems := rc.cfg, rc.level, rc.problems
	f := app.FileOf(cfg)
	if level != slog.LevelInfo {
		lvl := strings.ToLower(level.String())
		f.LogLevel = &lvl
	}
	fmt.Fprintln(stdout, "# The effective configuration of carepipe run, as a config file; options left out take their defaults.")
	if secrets := cfg.Secrets(); len(secrets) > 0 {
		fmt.Fprintf(stdout, "# Secrets set, not printed: %s.\n", strings.Join(secrets, ", "))
	}
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := cfg.Check(); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		mistakes := app.Mistakes(problems...)
		fmt.Fprintf(stderr, "invalid configuration (%s): %d mistakes\n", rc.from(), len(mistakes))
		for _, p := range mistakes {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	fmt.Fprintln(stdout, "# configuration valid")
	return 0
}

// runFlagKeys are the config file keys of run's flags, other than the
// connection's (connSettings).
var runFlagKeys = map[string]string{
	"pipelines": "pipelines", "log-level": "logLevel", "http": "http", "create-topics": "createTopics",
	"rules": "rules", "sources": "sources", "site-time-zone": "siteTimeZone", "payer-time-zone": "payerTimeZone",
	"urgent-categories": "urgentCategories", "reconcile-deadline": "reconcileDeadline", "duration": "duration",
	"instance-id": "instanceId", "advertise-http": "advertiseHttp", "commit-interval": "commitInterval", "session-timeout": "sessionTimeout",
	"transaction-timeout": "transactionTimeout",
	"carry-headers":       "carryHeaders",
	"demo-rate":           "demo.rate", "seed": "demo.seed", "summary-every": "summaryEvery",
	"demo": "demo.mode",
}

// runSetup is the configuration of `carepipe run` and the mistakes found
// building it.
type runSetup struct {
	cfg   app.Config
	level slog.Level
	// file is the config file read; empty: none.
	file string
	// problems are every mistake found on the way (the file's, the
	// environment's, the log level), each with its key.
	problems []error
}

// from says where the configuration came from, for the heading of its
// mistakes: the lines they name are the file's.
func (rc *runSetup) from() string {
	if rc.file == "" {
		return "environment and flags"
	}
	return "config file " + rc.file + ", environment and flags"
}

// runConfig builds the configuration of `carepipe run` from, in rising
// precedence, the config file (--config, or CAREPIPE_CONFIG), the
// environment and the flags given. code is -1 to go on, else the exit
// code (flag errors, -h, an unreadable config file).
func runConfig(name string, args []string, stdout, stderr io.Writer) (rc runSetup, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var (
		fl         app.Config
		configFile = fs.String("config", "", "YAML config file (env CAREPIPE_CONFIG); the environment and flags win over it")
		pipelines  = fs.String("pipelines", "", "pipelines to run, comma-separated (default all built: alerts, priorauth, datasync, orders)")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
	)
	conn := addConnFlags(fs, "; none: embedded demo")
	fs.StringVar(&fl.HTTPAddr, "http", "", "serve /metrics, /healthz, /readyz and the query API on this address: host:port, or :port for every interface (as in Go); a bare port number binds loopback only; port 0 picks one. The query API off loopback needs CAREPIPE_API_TOKEN")
	fs.StringVar(&fl.AdvertiseHTTP, "advertise-http", "", "host:port at which the other instances reach this one's --http server (a pod's IP or stable DNS name; env CAREPIPE_ADVERTISE_HTTP): an instance asked for a key another instance holds sends the query on to it, as Kafka Streams' application.server (default: none: queries for this instance's partitions cannot be sent on to it, and the others answer them 404)")
	fs.BoolVar(&fl.CreateTopics, "create-topics", false, "create missing topics from the built-in specs")
	fs.StringVar(&fl.RulesFile, "rules", "", "alert rules YAML file (default: built-in rules)")
	fs.StringVar(&fl.SourcesFile, "sources", "", "datasync: sources YAML file, which topics carry which source's entities and how their columns map (env CAREPIPE_SOURCES; default: built-in sources)")
	fs.StringVar(&fl.SiteTimeZone, "site-time-zone", "", "alerts: IANA time zone (Europe/Berlin) of observation times sent without an offset (default: none, such observations are error records)")
	fs.StringVar(&fl.PayerTimeZone, "payer-time-zone", "", "priorauth: IANA time zone (America/New_York) of payer dates without an offset; a date-only expiration ends with that day there (env CAREPIPE_PAYER_TIME_ZONE; default UTC)")
	urgent := fs.String("urgent-categories", "", "priorauth: medication categories submitted as urgent, comma-separated, synonyms as entries; case, hyphens and plurals do not count (env CAREPIPE_URGENT_CATEGORIES; default antibiotic, anticoagulant, insulin and their synonyms)")
	carry := fs.String("carry-headers", "", "input headers carried to the records derived from each input, comma-separated, besides W3C traceparent and tracestate, which always are (env CAREPIPE_CARRY_HEADERS; default none)")
	fs.DurationVar(&fl.ReconcileDeadline, "reconcile-deadline", 0, "datasync: how long a validated version may wait for every target's acknowledgement (default 5m; embedded 10s)")
	fs.DurationVar(&fl.Duration, "duration", 0, "exit by itself after this long (0: run until SIGINT/SIGTERM)")
	fs.StringVar(&fl.InstanceID, "instance-id", "", "stable instance name; makes transactional ids stable across restarts")
	fs.DurationVar(&fl.CommitInterval, "commit-interval", 0, "transaction commit interval (default 100ms)")
	fs.DurationVar(&fl.TransactionTimeout, "transaction-timeout", 0, "how long the broker keeps a crashed instance's open transaction before aborting it, holding read_committed readers (and so the failover of its partitions) back meanwhile (env CAREPIPE_TRANSACTION_TIMEOUT; default 10s; at most the broker's transaction.max.timeout.ms)")
	fs.DurationVar(&fl.SessionTimeout, "session-timeout", 0, "consumer group session timeout: how long a crashed instance's partitions wait, and how long an --instance-id may be away without a rebalance (env CAREPIPE_SESSION_TIMEOUT; default 10s)")
	demo := &textFlag{isBool: true}
	fs.Var(demo, "demo", "run the embedded demo (in-process Kafka, simulated traffic; not for production): auto (when no brokers are given), on (a bare --demo) or off (env CAREPIPE_DEMO; default auto; the container image sets off)")
	fs.IntVar(&fl.DemoRate, "demo-rate", 0, "embedded mode: observations per second (default 500)")
	fs.Int64Var(&fl.Seed, "seed", 0, "embedded mode: demo workload seed (default 1)")
	fs.Var(everyValue{&fl.SummaryEvery}, "summary-every", "print a summary line this often (default 5s; -1 or any negative value: never)")
	embeddedListen := fs.String("embedded-listen", app.DefaultEmbeddedListen, "embedded mode: the cluster's loopback address, for kcat or a script to attach (port 0: any free port)")
	if code := parseFlags(fs, runSynopsis[name], args, stdout, stderr); code >= 0 {
		return rc, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v (a config file is --config FILE)\n", fs.Args())
		return rc, 2
	}

	path := *configFile
	if path == "" {
		path = os.Getenv("CAREPIPE_CONFIG")
	}
	var file *app.FileConfig
	if path != "" {
		rc.file = path
		var err error
		file, err = app.LoadConfigFile(path)
		if file == nil {
			fmt.Fprintln(stderr, err)
			return rc, 2
		}
		if err != nil {
			rc.problems = append(rc.problems, err)
		}
		file.Apply(&rc.cfg)
	}
	rc.problems = append(rc.problems, conn.apply(&rc.cfg)...)
	rc.cfg.EmbeddedListen = *embeddedListen
	env := func(key, name string, set func(v string) error) {
		if v, ok := os.LookupEnv(name); ok {
			rc.cfg.SetOrigin(key, name)
			if err := set(v); err != nil {
				rc.problems = append(rc.problems, &app.KeyError{Key: key, Origin: name, Err: err})
			}
		}
	}
	env("api.token", "CAREPIPE_API_TOKEN", func(v string) error { rc.cfg.APIToken = v; return nil })
	env("advertiseHttp", "CAREPIPE_ADVERTISE_HTTP", func(v string) error { rc.cfg.AdvertiseHTTP = v; return nil })
	env("sessionTimeout", "CAREPIPE_SESSION_TIMEOUT", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", v)
		}
		rc.cfg.SessionTimeout = d
		return nil
	})
	env("transactionTimeout", "CAREPIPE_TRANSACTION_TIMEOUT", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", v)
		}
		rc.cfg.TransactionTimeout = d
		return nil
	})
	env("payerTimeZone", "CAREPIPE_PAYER_TIME_ZONE", func(v string) error { rc.cfg.PayerTimeZone = v; return nil })
	env("urgentCategories", "CAREPIPE_URGENT_CATEGORIES", func(v string) error { rc.cfg.UrgentCategories = splitList(v); return nil })
	env("sources", "CAREPIPE_SOURCES", func(v string) error { rc.cfg.SourcesFile = v; return nil })
	env("demo.mode", "CAREPIPE_DEMO", func(v string) (err error) { rc.cfg.Demo, err = app.ParseDemo(v); return err })
	env("carryHeaders", "CAREPIPE_CARRY_HEADERS", func(v string) error { rc.cfg.CarryHeaders = splitList(v); return nil })

	lvl := "info"
	if file != nil && file.LogLevel != nil {
		lvl = *file.LogLevel
	}
	fs.Visit(func(f *flag.Flag) {
		key, ok := runFlagKeys[f.Name]
		if !ok {
			return
		}
		rc.cfg.SetOrigin(key, "--"+f.Name)
		switch f.Name {
		case "pipelines":
			rc.cfg.Pipelines = splitList(*pipelines)
		case "log-level":
			lvl = *logLevel
		case "http":
			rc.cfg.HTTPAddr = fl.HTTPAddr
		case "advertise-http":
			rc.cfg.AdvertiseHTTP = fl.AdvertiseHTTP
		case "create-topics":
			rc.cfg.CreateTopics = fl.CreateTopics
		case "rules":
			rc.cfg.RulesFile = fl.RulesFile
		case "sources":
			rc.cfg.SourcesFile = fl.SourcesFile
		case "site-time-zone":
			rc.cfg.SiteTimeZone = fl.SiteTimeZone
		case "payer-time-zone":
			rc.cfg.PayerTimeZone = fl.PayerTimeZone
		case "urgent-categories":
			rc.cfg.UrgentCategories = splitList(*urgent)
		case "carry-headers":
			rc.cfg.CarryHeaders = splitList(*carry)
		case "reconcile-deadline":
			rc.cfg.ReconcileDeadline = fl.ReconcileDeadline
		case "duration":
			rc.cfg.Duration = fl.Duration
		case "instance-id":
			rc.cfg.InstanceID = fl.InstanceID
		case "commit-interval":
			rc.cfg.CommitInterval = fl.CommitInterval
		case "session-timeout":
			rc.cfg.SessionTimeout = fl.SessionTimeout
		case "transaction-timeout":
			rc.cfg.TransactionTimeout = fl.TransactionTimeout
		case "demo":
			var err error
			if rc.cfg.Demo, err = app.ParseDemo(demo.v); err != nil {
				rc.problems = append(rc.problems, &app.KeyError{Key: key, Origin: "--demo", Err: err})
			}
		case "demo-rate":
			rc.cfg.DemoRate = fl.DemoRate
		case "seed":
			rc.cfg.Seed = fl.Seed
		case "summary-every":
			rc.cfg.SummaryEvery = fl.SummaryEvery
		}
	})
	if err := rc.level.UnmarshalText([]byte(lvl)); err != nil {
		rc.problems = append(rc.problems, &app.KeyError{Key: "logLevel", Origin: rc.cfg.Origin("logLevel"), Err: fmt.Errorf("%q: want debug, info, warn or error", lvl)})
	}
	return rc, -1
}

func topicsCmd(apply bool, args []string, stdout, stderr io.Writer) int {
	name := "topics plan"
	if apply {
		name = "topics apply"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	d := topics.SeedDefaults()
	var (
		configFile  = fs.String("config", "", "carepipe run's YAML config file (env CAREPIPE_CONFIG): its connection, pipelines, appId and renamed topics; the environment and flags win over it")
		pipelines   = fs.String("pipelines", "", "pipelines whose topics to plan, comma-separated (default all built)")
		partitions  = fs.Int("partitions", int(d.Partitions), "partitions of every topic")
		replication = fs.Int("replication", int(d.Replication), "replication factor of every topic (default 3, or the brokers' count when fewer; min.insync.replicas follows it: one less, at most 2, at least 1)")
		file        = fs.String("topics", "", "topics file (YAML): defaults and per-topic specs over the built-in ones; flags win over its defaults")
		sources     = fs.String("sources", os.Getenv("CAREPIPE_SOURCES"), "datasync sources YAML file (env CAREPIPE_SOURCES): its topics are datasync's inputs")
	)
	conn := addConnFlags(fs, "; none: plan shows what an empty cluster needs, apply refuses")
	if code := parseFlags(fs, topicsSynopsis, args, stdout, stderr); code >= 0 {
		return code
	}
	if *partitions < 1 || *replication < 0 || *replication > 32767 {
		fmt.Fprintln(stderr, "--partitions and --replication must be positive")
		return 2
	}
	var tf *topics.File
	if *file != "" {
		var err error
		if tf, err = topics.LoadFile(*file); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		d = tf.Layout(d)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "partitions":
			d.Partitions = int32(*partitions)
		case "replication":
			d.Replication = int16(*replication)
		}
	})
	var cfg app.Config
	if err := applyConfigFile(*configFile, &cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if errs := conn.apply(&cfg); len(errs) > 0 {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", errors.Join(errs...))
		return 2
	}
	if ps := splitList(*pipelines); len(ps) > 0 {
		cfg.Pipelines = ps
	}
	if *sources != "" {
		cfg.SourcesFile = *sources
	}
	cfg.Stdout = stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Topics(ctx, cfg, apply, d, tf); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// applyConfigFile applies the config file at path (empty: the one
// CAREPIPE_CONFIG names, if any) to cfg: how topics and loadgen follow the
// configuration of run (its connection, app id and renamed topics).
func applyConfigFile(path string, cfg *app.Config) error {
	path = cmp.Or(path, os.Getenv("CAREPIPE_CONFIG"))
	if path == "" {
		return nil
	}
	f, err := app.LoadConfigFile(path)
	if err != nil {
		return err
	}
	f.Apply(cfg)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func loadgenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		cfg      app.Config
		lg       loadgen.Config
		report   = fs.String("report", "", "write report.txt, report.md, report.json and report.svg into this directory")
		logLevel = fs.String("log-level", "warn", "debug, info, warn or error")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of the whole run (embedded: pipeline, broker and load) to this file")
		memProf  = fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
		cfgFile  = fs.String("config", "", "carepipe run's YAML config file (env CAREPIPE_CONFIG): its connection, appId and renamed topics; the environment and flags win over it")
	)
	fs.StringVar(&lg.Pipeline, "pipeline", "alerts", "the pipeline to load: "+strings.Join(loadgen.Pipelines, ", "))
	fs.Float64Var(&lg.Rate, "rate", 0, "offered rate, records/s (fixed-rate run)")
	fs.DurationVar(&lg.Duration, "duration", 0, "fixed-rate run: how long each step (default 30s)")
	fs.IntVar(&lg.Repeat, "repeat", 0, "fixed-rate run: steps at the rate (default 1; a long run as several steps shows whether latency and memory hold)")
	fs.BoolVar(&lg.FindMax, "find-max", false, "ramp the rate until the p99 latency passes --slo or the lag grows")
	fs.DurationVar(&lg.SLO, "slo", 0, "p99 end-to-end latency a step must stay within (default: alerts 250ms, datasync 500ms, priorauth 5s)")
	fs.Float64Var(&lg.StartRate, "start-rate", 0, "find-max: first rate (default 2000)")
	fs.Float64Var(&lg.MaxRate, "max-rate", 0, "find-max: highest rate tried (default 2000000)")
	fs.Float64Var(&lg.Growth, "growth", 0, "find-max: each step's rate over the last's (default 1.5)")
	fs.DurationVar(&lg.StepDuration, "step", 0, "find-max: each step's length (default 10s)")
	fs.DurationVar(&lg.Warmup, "warmup", 0, "unreported warm-up at the first rate (default 3s)")
	fs.Int64Var(&lg.Seed, "seed", 1, "workload seed")
	fs.IntVar(&lg.Patients, "patients", 0, "alerts: patients in the table (default 10000)")
	fs.Float64Var(&lg.AlertFraction, "alert-fraction", 0, "alerts: share of observations that trip a rule (default 0.1)")
	fs.IntVar(&lg.Entities, "entities", 0, "datasync: entities changed (default 10000)")
	fs.Float64Var(&lg.ConflictFraction, "conflict-fraction", 0, "datasync: share of changes from a second source (default 0.1)")
	fs.Float64Var(&lg.InvalidFraction, "invalid-fraction", 0, "datasync: share of invalid changes (default 0.02)")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", 0, "embedded: the pipeline's transaction commit interval (default 100ms)")
	fs.StringVar(&cfg.RulesFile, "rules", "", "embedded alerts: rules YAML file (default: built-in rules)")
	conn := addConnFlags(fs, "; none: an embedded cluster with the pipeline in this process")
	if code := parseFlags(fs, loadgenSynopsis, args, stdout, stderr); code >= 0 {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "bad --log-level: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The file's own pipeline settings are run's; the flags above are
	// loadgen's.
	commit, rules := cfg.CommitInterval, cfg.RulesFile
	if err := applyConfigFile(*cfgFile, &cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.CommitInterval, cfg.RulesFile = cmp.Or(commit, cfg.CommitInterval), cmp.Or(rules, cfg.RulesFile)
	if errs := conn.apply(&cfg); len(errs) > 0 {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", errors.Join(errs...))
		return 2
	}
	cfg.Stdout = stdout
	cfg.SummaryEvery = -1
	lg.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			lg.Live = true
		}
	}

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := app.Loadgen(ctx, cfg, lg)
	if *memProf != "" {
		if werr := writeHeapProfile(*memProf); werr != nil && err == nil {
			err = werr
		}
	}
	if rep != nil && len(rep.Steps) > 0 {
		if werr := rep.WriteText(stdout); werr != nil && err == nil {
			err = werr
		}
		if *report != "" {
			if werr := writeReport(*report, rep); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	return 0
}

// writeReport writes the report in every format into dir.
func writeReport(dir string, rep *loadgen.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.txt":  rep.WriteText,
		"report.md":   rep.WriteMarkdown,
		"report.json": rep.WriteJSON,
		"report.svg":  rep.WriteSVG,
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
