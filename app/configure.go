package app

// The configuration of each command, from, in rising precedence, the
// config file, the environment and the flags: one function per command
// (ConfigureRun, ConfigureTopics, ConfigureLoadgen, ConfigureOps), each
// defining its flags, parsing them and layering the three sources, as
// nats-server's ConfigureOptions does for its one command. The environment
// is a parameter, so that a test gives it as a map; main gives
// os.LookupEnv. Each writes its help (-h) to stdout and a flag mistake to
// stderr, and returns an exit code: -1 to go on.

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/carepipe/carepipe/loadgen"
	"github.com/carepipe/carepipe/topics"
)

// LookupEnv reads one environment variable, as os.LookupEnv does: whether
// it is set counts, not only its value (KAFKA_BROKERS= set empty names no
// brokers, and says so as the environment's).
type LookupEnv func(key string) (string, bool)

// getenv is env's value of key, empty when unset.
func (env LookupEnv) getenv(key string) string {
	v, _ := env(key)
	return v
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

// RunSetup is the configuration of `carepipe run` and the mistakes found
// building it.
type RunSetup struct {
	Config Config
	Level  slog.Level
	// File is the config file read; empty: none.
	File string
	// Problems are every mistake found on the way (the file's, the
	// environment's, the log level), each with its key.
	Problems []error
}

// From says where the configuration came from, for the heading of its
// mistakes: the lines they name are the file's.
func (rs *RunSetup) From() string {
	if rs.File == "" {
		return "environment and flags"
	}
	return "config file " + rs.File + ", environment and flags"
}

// ConfigureRun builds the configuration of `carepipe run` (cmd "run") or
// of `carepipe config check` (cmd "config check", the same flags) from,
// in rising precedence, the config file (--config, or CAREPIPE_CONFIG),
// the environment and the flags given. code is -1 to go on, else the exit
// code (flag errors, -h, an unreadable config file).
func ConfigureRun(cmd string, args []string, env LookupEnv, stdout, stderr io.Writer) (rs RunSetup, code int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var (
		fl         Config
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
	embeddedListen := fs.String("embedded-listen", DefaultEmbeddedListen, "embedded mode: the cluster's loopback address, for kcat or a script to attach (port 0: any free port)")
	if code := parseFlags(fs, runSynopsis[cmd], args, stdout, stderr); code >= 0 {
		return rs, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v (a config file is --config FILE)\n", fs.Args())
		return rs, 2
	}

	path := *configFile
	if path == "" {
		path = env.getenv("CAREPIPE_CONFIG")
	}
	var file *FileConfig
	if path != "" {
		rs.File = path
		var err error
		file, err = LoadConfigFile(path)
		if file == nil {
			fmt.Fprintln(stderr, err)
			return rs, 2
		}
		if err != nil {
			rs.Problems = append(rs.Problems, err)
		}
		file.Apply(&rs.Config)
	}
	c := &rs.Config
	rs.Problems = append(rs.Problems, conn.apply(c, env)...)
	c.EmbeddedListen = *embeddedListen
	fromEnv := func(key, name string, set func(v string) error) {
		if v, ok := env(name); ok {
			c.SetOrigin(key, name)
			if err := set(v); err != nil {
				rs.Problems = append(rs.Problems, &KeyError{Key: key, Origin: name, Err: err})
			}
		}
	}
	fromEnv("api.token", "CAREPIPE_API_TOKEN", func(v string) error { c.APIToken = v; return nil })
	fromEnv("advertiseHttp", "CAREPIPE_ADVERTISE_HTTP", func(v string) error { c.AdvertiseHTTP = v; return nil })
	fromEnv("sessionTimeout", "CAREPIPE_SESSION_TIMEOUT", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", v)
		}
		c.SessionTimeout = d
		return nil
	})
	fromEnv("transactionTimeout", "CAREPIPE_TRANSACTION_TIMEOUT", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", v)
		}
		c.TransactionTimeout = d
		return nil
	})
	fromEnv("payerTimeZone", "CAREPIPE_PAYER_TIME_ZONE", func(v string) error { c.PayerTimeZone = v; return nil })
	fromEnv("urgentCategories", "CAREPIPE_URGENT_CATEGORIES", func(v string) error { c.UrgentCategories = splitList(v); return nil })
	fromEnv("sources", "CAREPIPE_SOURCES", func(v string) error { c.SourcesFile = v; return nil })
	fromEnv("demo.mode", "CAREPIPE_DEMO", func(v string) (err error) { c.Demo, err = ParseDemo(v); return err })
	fromEnv("carryHeaders", "CAREPIPE_CARRY_HEADERS", func(v string) error { c.CarryHeaders = splitList(v); return nil })

	lvl := "info"
	if file != nil && file.LogLevel != nil {
		lvl = *file.LogLevel
	}
	fs.Visit(func(f *flag.Flag) {
		key, ok := runFlagKeys[f.Name]
		if !ok {
			return
		}
		c.SetOrigin(key, "--"+f.Name)
		switch f.Name {
		case "pipelines":
			c.Pipelines = splitList(*pipelines)
		case "log-level":
			lvl = *logLevel
		case "http":
			c.HTTPAddr = fl.HTTPAddr
		case "advertise-http":
			c.AdvertiseHTTP = fl.AdvertiseHTTP
		case "create-topics":
			c.CreateTopics = fl.CreateTopics
		case "rules":
			c.RulesFile = fl.RulesFile
		case "sources":
			c.SourcesFile = fl.SourcesFile
		case "site-time-zone":
			c.SiteTimeZone = fl.SiteTimeZone
		case "payer-time-zone":
			c.PayerTimeZone = fl.PayerTimeZone
		case "urgent-categories":
			c.UrgentCategories = splitList(*urgent)
		case "carry-headers":
			c.CarryHeaders = splitList(*carry)
		case "reconcile-deadline":
			c.ReconcileDeadline = fl.ReconcileDeadline
		case "duration":
			c.Duration = fl.Duration
		case "instance-id":
			c.InstanceID = fl.InstanceID
		case "commit-interval":
			c.CommitInterval = fl.CommitInterval
		case "session-timeout":
			c.SessionTimeout = fl.SessionTimeout
		case "transaction-timeout":
			c.TransactionTimeout = fl.TransactionTimeout
		case "demo":
			var err error
			if c.Demo, err = ParseDemo(demo.v); err != nil {
				rs.Problems = append(rs.Problems, &KeyError{Key: key, Origin: "--demo", Err: err})
			}
		case "demo-rate":
			c.DemoRate = fl.DemoRate
		case "seed":
			c.Seed = fl.Seed
		case "summary-every":
			c.SummaryEvery = fl.SummaryEvery
		}
	})
	if err := rs.Level.UnmarshalText([]byte(lvl)); err != nil {
		rs.Problems = append(rs.Problems, &KeyError{Key: "logLevel", Origin: c.Origin("logLevel"), Err: fmt.Errorf("%q: want debug, info, warn or error", lvl)})
	}
	return rs, -1
}

// TopicsSetup is the configuration of `carepipe topics plan|apply`.
type TopicsSetup struct {
	// Config is run's connection, pipelines, app id and renamed topics.
	Config Config
	// Defaults are the topics' partitions, replication and configs: the
	// built-in ones, the topics file's over them, the flags over both.
	Defaults topics.Defaults
	// File is the topics file read; nil: none.
	File *topics.File
}

// ConfigureTopics builds the configuration of `carepipe topics plan`, or
// of apply: run's config file (--config, or CAREPIPE_CONFIG) under the
// environment and flags, and the topic layout, the flags over the topics
// file. code is -1 to go on, else the exit code.
func ConfigureTopics(apply bool, args []string, env LookupEnv, stdout, stderr io.Writer) (ts TopicsSetup, code int) {
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
		sources     = fs.String("sources", env.getenv("CAREPIPE_SOURCES"), "datasync sources YAML file (env CAREPIPE_SOURCES): its topics are datasync's inputs")
	)
	conn := addConnFlags(fs, "; none: plan shows what an empty cluster needs, apply refuses")
	if code := parseFlags(fs, topicsSynopsis, args, stdout, stderr); code >= 0 {
		return ts, code
	}
	if *partitions < 1 || *replication < 0 || *replication > 32767 {
		fmt.Fprintln(stderr, "--partitions and --replication must be positive")
		return ts, 2
	}
	if *file != "" {
		var err error
		if ts.File, err = topics.LoadFile(*file); err != nil {
			fmt.Fprintln(stderr, err)
			return ts, 2
		}
		d = ts.File.Layout(d)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "partitions":
			d.Partitions = int32(*partitions)
		case "replication":
			d.Replication = int16(*replication)
		}
	})
	ts.Defaults = d
	if err := applyConfigFile(*configFile, env, &ts.Config); err != nil {
		fmt.Fprintln(stderr, err)
		return ts, 2
	}
	if errs := conn.apply(&ts.Config, env); len(errs) > 0 {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", errors.Join(errs...))
		return ts, 2
	}
	if ps := splitList(*pipelines); len(ps) > 0 {
		ts.Config.Pipelines = ps
	}
	if *sources != "" {
		ts.Config.SourcesFile = *sources
	}
	return ts, -1
}

// LoadgenSetup is the configuration of `carepipe loadgen`.
type LoadgenSetup struct {
	// Config is the pipeline's: run's config file's connection, app id and
	// renamed topics, under the environment and loadgen's own flags. Its
	// Logger, Stdout are left to the caller.
	Config  Config
	Loadgen loadgen.Config
	Level   slog.Level
	// Report is the directory of the reports; empty: none.
	Report string
	// CPUProfile and MemProfile are the files of the profiles; empty: none.
	CPUProfile, MemProfile string
}

// ConfigureLoadgen builds the configuration of `carepipe loadgen`. code is
// -1 to go on, else the exit code.
func ConfigureLoadgen(args []string, env LookupEnv, stdout, stderr io.Writer) (ls LoadgenSetup, code int) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	cfg, lg := &ls.Config, &ls.Loadgen
	var (
		logLevel = fs.String("log-level", "warn", "debug, info, warn or error")
		cfgFile  = fs.String("config", "", "carepipe run's YAML config file (env CAREPIPE_CONFIG): its connection, appId and renamed topics; the environment and flags win over it")
	)
	fs.StringVar(&ls.Report, "report", "", "write report.txt, report.md, report.json and report.svg into this directory")
	fs.StringVar(&ls.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run (embedded: pipeline, broker and load) to this file")
	fs.StringVar(&ls.MemProfile, "memprofile", "", "write a heap profile at the end of the run to this file")
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
		return ls, code
	}
	if err := ls.Level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "bad --log-level: %v\n", err)
		return ls, 2
	}
	// The file's own pipeline settings are run's; the flags above are
	// loadgen's.
	commit, rules := cfg.CommitInterval, cfg.RulesFile
	if err := applyConfigFile(*cfgFile, env, cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return ls, 2
	}
	cfg.CommitInterval, cfg.RulesFile = cmp.Or(commit, cfg.CommitInterval), cmp.Or(rules, cfg.RulesFile)
	if errs := conn.apply(cfg, env); len(errs) > 0 {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", errors.Join(errs...))
		return ls, 2
	}
	cfg.SummaryEvery = -1
	return ls, -1
}

// OpsCommand is what an operator command (describe, reset, errors) adds
// to the flags ConfigureOps defines for them all.
type OpsCommand struct {
	// Synopsis heads the command's help.
	Synopsis string
	// PipelineUsage is the --pipeline flag's usage.
	PipelineUsage string
	// NeedPipeline makes --pipeline required.
	NeedPipeline bool
	// Connect gives the command the connection's flags: it talks to Kafka.
	Connect bool
	// ArgUsage, when set, makes the command take one argument, which flags
	// may precede and follow; without it, or with --pipeline missing, it
	// is said on stderr. Without ArgUsage, the command takes no arguments.
	ArgUsage string
}

// OpsSetup is the configuration of an operator command.
type OpsSetup struct {
	// Pipeline is --pipeline: a pipeline's or a stage's name; empty: all.
	Pipeline string
	// Sources is datasync's sources file (--sources, CAREPIPE_SOURCES).
	Sources string
	// Arg is the command's argument (OpsCommand.ArgUsage).
	Arg string
	// Conn is the cluster connection, from the environment and the flags;
	// ConnProblems its mistakes, said when the command first needs it.
	Conn         Config
	ConnProblems []error
}

// ConfigureOps defines the flags every operator command takes (--pipeline,
// --sources and, for those that talk to Kafka, the connection's) on fs,
// which holds the command's own, and parses args into them. code is -1 to
// go on, else the exit code.
func ConfigureOps(fs *flag.FlagSet, cmd OpsCommand, args []string, env LookupEnv, stdout, stderr io.Writer) (setup OpsSetup, code int) {
	pipeline := fs.String("pipeline", "", cmd.PipelineUsage)
	sources := fs.String("sources", env.getenv("CAREPIPE_SOURCES"), "datasync sources YAML file (env CAREPIPE_SOURCES): its topics are datasync's inputs")
	var conn *connFlags
	if cmd.Connect {
		conn = addConnFlags(fs, "; required")
	}
	if code := parseFlags(fs, cmd.Synopsis, args, stdout, stderr); code >= 0 {
		return setup, code
	}
	if cmd.ArgUsage != "" {
		// Flags may follow the argument too.
		if fs.NArg() > 0 {
			setup.Arg = fs.Arg(0)
			if err := fs.Parse(fs.Args()[1:]); err != nil {
				return setup, 2
			}
		}
		if setup.Arg == "" || fs.NArg() > 0 || *pipeline == "" {
			fmt.Fprintln(stderr, cmd.ArgUsage)
			return setup, 2
		}
	} else {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
			return setup, 2
		}
		if cmd.NeedPipeline && *pipeline == "" {
			fmt.Fprintln(stderr, "--pipeline is required")
			return setup, 2
		}
	}
	setup.Pipeline, setup.Sources = *pipeline, *sources
	if conn != nil {
		setup.ConnProblems = conn.apply(&setup.Conn, env)
	}
	return setup, -1
}

// applyConfigFile applies the config file at path (empty: the one
// CAREPIPE_CONFIG names, if any) to cfg: how topics and loadgen follow the
// configuration of run (its connection, app id and renamed topics).
func applyConfigFile(path string, env LookupEnv, cfg *Config) error {
	path = cmp.Or(path, env.getenv("CAREPIPE_CONFIG"))
	if path == "" {
		return nil
	}
	f, err := LoadConfigFile(path)
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
