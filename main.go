// Command carepipe runs healthcare event pipelines on Kafka, exactly once.
// This file is wiring only: flags and environment into app.Config, signals
// into a context, and the exit code.
package main

import (
	"context"
	"encoding/json"
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
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/topics"
	"github.com/carepipe/carepipe/version"
)

const usage = `carepipe: healthcare event pipelines on Kafka, exactly once.

Usage:
  carepipe run   [flags]          run the pipelines (no --brokers: embedded demo)
  carepipe topics plan|apply ...  compare the pipelines' topics with the cluster, or make them so
  carepipe rules check FILE       validate an alert rules file
  carepipe loadgen [flags]        load a pipeline and measure it (no --brokers: embedded)
  carepipe config check [flags]   check the configuration of run (file, environment, flags),
                                  every mistake at once, and print it in the file's keys
  carepipe version                print the version, VCS revision and Go version (also --version)

Run 'carepipe run -h' or 'carepipe topics plan -h' for the flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
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
		pack, err := alerts.LoadRules(args[2])
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
	cfg, level, code := runConfig("run", args, stderr)
	if code >= 0 {
		return code
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

// configCmd is `carepipe config check`: the effective configuration of
// `carepipe run` with the same file, environment and flags, checked and
// printed with its secrets redacted.
func configCmd(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := runConfig("config check", args, stderr)
	if code >= 0 {
		return code
	}
	out, err := json.MarshalIndent(cfg.Redacted(), "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\nconfiguration valid\n", out)
	return 0
}

// runConfig builds the configuration of `carepipe run` from, in rising
// precedence, the config file (--config, or CAREPIPE_CONFIG), the
// environment and the flags given. code is -1 to go on, else the exit
// code (flag errors, -h, an unreadable config file).
func runConfig(name string, args []string, stderr io.Writer) (cfg app.Config, level slog.Level, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		fl             app.Config
		configFile     = fs.String("config", "", "YAML config file (env CAREPIPE_CONFIG); the environment and flags win over it")
		brokers        = fs.String("brokers", "", "Kafka seed brokers, host:port,... (env KAFKA_BROKERS); none: embedded demo")
		pipelines      = fs.String("pipelines", "", "pipelines to run, comma-separated (default all built: alerts, priorauth, datasync, orders)")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
		schemaRegistry = fs.String("schema-registry", "", "schema registry URL for datasync's Avro (env SCHEMA_REGISTRY_URL); embedded mode runs its own")
	)
	fs.StringVar(&fl.HTTPAddr, "http", "", "serve /metrics, /healthz, /readyz and the query API on this address; a bare port binds loopback only (port 0 picks one; the query API off loopback needs CAREPIPE_API_TOKEN)")
	fs.BoolVar(&fl.CreateTopics, "create-topics", false, "create missing topics from the built-in specs")
	fs.StringVar(&fl.RulesFile, "rules", "", "alert rules YAML file (default: built-in rules)")
	fs.StringVar(&fl.SourcesFile, "sources", "", "datasync: sources YAML file, which topics carry which source's entities and how their columns map (env CAREPIPE_SOURCES; default: built-in sources)")
	fs.StringVar(&fl.SiteTimeZone, "site-time-zone", "", "alerts: IANA time zone (Europe/Berlin) of observation times sent without an offset (default: none, such observations are error records)")
	fs.StringVar(&fl.PayerTimeZone, "payer-time-zone", "", "priorauth: IANA time zone (America/New_York) of payer dates without an offset; a date-only expiration ends with that day there (env CAREPIPE_PAYER_TIME_ZONE; default UTC)")
	urgent := fs.String("urgent-categories", "", "priorauth: medication categories submitted as urgent, comma-separated, synonyms as entries; case, hyphens and plurals do not count (env CAREPIPE_URGENT_CATEGORIES; default antibiotic, anticoagulant, insulin and their synonyms)")
	fs.DurationVar(&fl.ReconcileDeadline, "reconcile-deadline", 0, "datasync: how long a validated version may wait for every target's acknowledgement (default 5m; embedded 10s)")
	fs.DurationVar(&fl.Duration, "duration", 0, "exit by itself after this long (0: run until SIGINT/SIGTERM)")
	fs.StringVar(&fl.InstanceID, "instance-id", "", "stable instance name; makes transactional ids stable across restarts")
	fs.DurationVar(&fl.CommitInterval, "commit-interval", 0, "transaction commit interval (default 100ms)")
	fs.DurationVar(&fl.SessionTimeout, "session-timeout", 0, "consumer group session timeout: how long a crashed instance's partitions wait, and how long an --instance-id may be away without a rebalance (env CAREPIPE_SESSION_TIMEOUT; default 10s)")
	fs.IntVar(&fl.DemoRate, "demo-rate", 0, "embedded mode: observations per second (default 500)")
	fs.Int64Var(&fl.Seed, "seed", 0, "embedded mode: demo workload seed (default 1)")
	fs.DurationVar(&fl.SummaryEvery, "summary-every", 0, "print a summary line this often (default 5s; negative: never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, level, 0
		}
		return cfg, level, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return cfg, level, 2
	}

	path := *configFile
	if path == "" {
		path = os.Getenv("CAREPIPE_CONFIG")
	}
	var file *app.FileConfig
	if path != "" {
		var err error
		if file, err = app.LoadConfigFile(path); err != nil {
			fmt.Fprintln(stderr, err)
			return cfg, level, 2
		}
		file.Apply(&cfg)
	}
	kafkaFromEnv(&cfg, "")
	registryFromEnv(&cfg, "")
	if v, ok := os.LookupEnv("CAREPIPE_API_TOKEN"); ok {
		cfg.APIToken = v
	}
	if v, ok := os.LookupEnv("CAREPIPE_SESSION_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(stderr, "CAREPIPE_SESSION_TIMEOUT: %v\n", err)
			return cfg, level, 2
		}
		cfg.SessionTimeout = d
	}
	if v, ok := os.LookupEnv("CAREPIPE_PAYER_TIME_ZONE"); ok {
		cfg.PayerTimeZone = v
	}
	if v, ok := os.LookupEnv("CAREPIPE_URGENT_CATEGORIES"); ok {
		cfg.UrgentCategories = splitList(v)
	}
	if v, ok := os.LookupEnv("CAREPIPE_SOURCES"); ok {
		cfg.SourcesFile = v
	}

	lvl := "info"
	if file != nil && file.LogLevel != nil {
		lvl = *file.LogLevel
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "brokers":
			cfg.Brokers = splitList(*brokers)
		case "pipelines":
			cfg.Pipelines = splitList(*pipelines)
		case "log-level":
			lvl = *logLevel
		case "schema-registry":
			cfg.SchemaRegistryURL = *schemaRegistry
		case "http":
			cfg.HTTPAddr = fl.HTTPAddr
		case "create-topics":
			cfg.CreateTopics = fl.CreateTopics
		case "rules":
			cfg.RulesFile = fl.RulesFile
		case "sources":
			cfg.SourcesFile = fl.SourcesFile
		case "site-time-zone":
			cfg.SiteTimeZone = fl.SiteTimeZone
		case "payer-time-zone":
			cfg.PayerTimeZone = fl.PayerTimeZone
		case "urgent-categories":
			cfg.UrgentCategories = splitList(*urgent)
		case "reconcile-deadline":
			cfg.ReconcileDeadline = fl.ReconcileDeadline
		case "duration":
			cfg.Duration = fl.Duration
		case "instance-id":
			cfg.InstanceID = fl.InstanceID
		case "commit-interval":
			cfg.CommitInterval = fl.CommitInterval
		case "session-timeout":
			cfg.SessionTimeout = fl.SessionTimeout
		case "demo-rate":
			cfg.DemoRate = fl.DemoRate
		case "seed":
			cfg.Seed = fl.Seed
		case "summary-every":
			cfg.SummaryEvery = fl.SummaryEvery
		}
	})
	if err := level.UnmarshalText([]byte(lvl)); err != nil {
		fmt.Fprintf(stderr, "bad log level: %v\n", err)
		return cfg, level, 2
	}
	return cfg, level, -1
}

// kafkaFromEnv sets cfg's cluster and security from the environment, where
// a variable is set, and the brokers flag; the flag wins over
// KAFKA_BROKERS. The schema registry's
// CA is read here too, with the other TLS files.
func kafkaFromEnv(cfg *app.Config, brokers string) {
	env := func(dst *string, key string) {
		if v, ok := os.LookupEnv(key); ok {
			*dst = v
		}
	}
	if v, ok := os.LookupEnv("KAFKA_BROKERS"); ok {
		cfg.Brokers = splitList(v)
	}
	if brokers != "" {
		cfg.Brokers = splitList(brokers)
	}
	env(&cfg.SASLMechanism, "KAFKA_SASL_MECHANISM")
	env(&cfg.Username, "KAFKA_USERNAME")
	env(&cfg.Password, "KAFKA_PASSWORD")
	if v, ok := os.LookupEnv("KAFKA_TLS"); ok {
		cfg.TLS = v == "true" || v == "1"
	}
	env(&cfg.TLSCAFile, "KAFKA_TLS_CA")
	env(&cfg.TLSCertFile, "KAFKA_TLS_CERT")
	env(&cfg.TLSKeyFile, "KAFKA_TLS_KEY")
	env(&cfg.SchemaRegistryCAFile, "SCHEMA_REGISTRY_CA")
	if cfg.SASLMechanism == "" && cfg.Username != "" {
		cfg.SASLMechanism = "PLAIN"
	}
}

// registryFromEnv sets cfg's schema registry from the environment, where a
// variable is set, and the URL flag; the flag wins over
// SCHEMA_REGISTRY_URL.
func registryFromEnv(cfg *app.Config, url string) {
	for key, dst := range map[string]*string{
		"SCHEMA_REGISTRY_URL":      &cfg.SchemaRegistryURL,
		"SCHEMA_REGISTRY_USERNAME": &cfg.SchemaRegistryUsername,
		"SCHEMA_REGISTRY_PASSWORD": &cfg.SchemaRegistryPassword,
	} {
		if v, ok := os.LookupEnv(key); ok {
			*dst = v
		}
	}
	if url != "" {
		cfg.SchemaRegistryURL = url
	}
}

func topicsCmd(apply bool, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := topics.SeedDefaults()
	var (
		brokers     = fs.String("brokers", "", "Kafka seed brokers, host:port,... (env KAFKA_BROKERS); required")
		pipelines   = fs.String("pipelines", "", "pipelines whose topics to plan, comma-separated (default all built)")
		partitions  = fs.Int("partitions", int(d.Partitions), "partitions of every topic")
		replication = fs.Int("replication", int(d.Replication), "replication factor of every topic")
		registry    = fs.String("schema-registry", "", "schema registry URL (env SCHEMA_REGISTRY_URL): datasync's schemas are planned and registered there")
		file        = fs.String("topics", "", "topics file (YAML): defaults and per-topic specs over the built-in ones; flags win over its defaults")
		sources     = fs.String("sources", os.Getenv("CAREPIPE_SOURCES"), "datasync sources YAML file (env CAREPIPE_SOURCES): its topics are datasync's inputs")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *partitions < 1 || *replication < 1 || *replication > 32767 {
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
	kafkaFromEnv(&cfg, *brokers)
	registryFromEnv(&cfg, *registry)
	cfg.Pipelines = splitList(*pipelines)
	cfg.SourcesFile = *sources
	cfg.Stdout = stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Topics(ctx, cfg, apply, d, tf); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
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
	fs.SetOutput(stderr)
	var (
		cfg      app.Config
		lg       loadgen.Config
		brokers  = fs.String("brokers", "", "Kafka seed brokers, host:port,... (env KAFKA_BROKERS); none: an embedded cluster with the pipeline in this process")
		registry = fs.String("schema-registry", "", "schema registry URL for datasync (env SCHEMA_REGISTRY_URL)")
		report   = fs.String("report", "", "write report.txt, report.md, report.json and report.svg into this directory")
		logLevel = fs.String("log-level", "warn", "debug, info, warn or error")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of the whole run (embedded: pipeline, broker and load) to this file")
		memProf  = fs.String("memprofile", "", "write a heap profile at the end of the run to this file")
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "bad --log-level: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	kafkaFromEnv(&cfg, *brokers)
	registryFromEnv(&cfg, *registry)
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
