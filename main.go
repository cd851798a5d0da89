// Command carepipe runs healthcare event pipelines on Kafka, exactly once.
// This file is wiring only: the command dispatch, the environment and the
// arguments into app's Configure function of each command (which layers
// the config file, the environment and the flags), signals into a
// context, and the exit code.
package main

import (
	"context"
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
	rs, code := app.ConfigureRun("run", args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg, level := rs.Config, rs.Level
	// No brokers with the demo off (as in the container image) is said
	// plainly, with how to run the demo, rather than as a failed start.
	if err := cfg.CheckDemo(); err != nil {
		rs.Problems = append(rs.Problems, err)
	}
	if len(rs.Problems) > 0 {
		fmt.Fprintf(stderr, "invalid configuration (%s; carepipe config check shows it all):\n", rs.From())
		for _, p := range app.Mistakes(rs.Problems...) {
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
	rs, code := app.ConfigureRun("config check", args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg, level, problems := rs.Config, rs.Level, rs.Problems
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
		fmt.Fprintf(stderr, "invalid configuration (%s): %d mistakes\n", rs.From(), len(mistakes))
		for _, p := range mistakes {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	fmt.Fprintln(stdout, "# configuration valid")
	return 0
}

func topicsCmd(apply bool, args []string, stdout, stderr io.Writer) int {
	ts, code := app.ConfigureTopics(apply, args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg := ts.Config
	cfg.Stdout = stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Topics(ctx, cfg, apply, ts.Defaults, ts.File); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func loadgenCmd(args []string, stdout, stderr io.Writer) int {
	ls, code := app.ConfigureLoadgen(args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	cfg, lg := ls.Config, ls.Loadgen
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: ls.Level}))
	cfg.Stdout = stdout
	lg.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			lg.Live = true
		}
	}

	if ls.CPUProfile != "" {
		f, err := os.Create(ls.CPUProfile)
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
	if ls.MemProfile != "" {
		if werr := writeHeapProfile(ls.MemProfile); werr != nil && err == nil {
			err = werr
		}
	}
	if rep != nil && len(rep.Steps) > 0 {
		if werr := rep.WriteText(stdout); werr != nil && err == nil {
			err = werr
		}
		if ls.Report != "" {
			if werr := writeReport(ls.Report, rep); werr != nil && err == nil {
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
