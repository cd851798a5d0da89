package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// parseFlags parses a command's args into fs. Help asked for (-h, --help)
// goes to stdout, so that it pages and greps, and exits 0; a mistake is
// said on stderr, with where the help is, and exits 2. code is -1 to go
// on. Flags are written with two dashes, as the README writes them (the
// flag package takes either).
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (code int) {
	// The flag package would print its own single-dash usage on every
	// mistake: this says each once, in the README's spelling.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, fs, synopsis)
		return 0
	default:
		fmt.Fprintf(stderr, "%s\nRun 'carepipe %s --help' for its flags.\n", doubleDash(err.Error()), fs.Name())
		return 2
	}
}

// flagNameInError is where the flag package's error messages name a flag
// "-name": after "not defined: ", "needs an argument: ", "for flag ", or
// a boolean's `value "x" for `. "bad flag syntax" quotes what was typed,
// and stays as typed.
var flagNameInError = regexp.MustCompile(`(not defined: |needs an argument: |for flag |value "[^"]*" for )-([^-])`)

// doubleDash rewrites the flag named in one of the flag package's error
// messages as "--name".
func doubleDash(msg string) string {
	return flagNameInError.ReplaceAllString(msg, "$1--$2")
}

// writeHelp writes synopsis and then every flag of fs, in order of name,
// as "--name type" over its usage and default.
func writeHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprint(w, strings.TrimRight(synopsis, "\n")+"\n\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			typ = ""
		}
		if g, ok := f.Value.(flag.Getter); ok && typ == "value" {
			if _, ok := g.Get().(time.Duration); ok {
				typ = "duration"
			}
		}
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		if !isZeroDefault(f.DefValue) && !strings.Contains(usage, "default") {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintln(w, "        "+strings.ReplaceAll(usage, "\n", "\n        "))
	})
}

// isZeroDefault reports a default that says nothing: the zero value, which
// every command reads as "not set" (and whose meaning the usage gives).
func isZeroDefault(v string) bool {
	switch v {
	case "", "0", "0s", "false":
		return true
	}
	return false
}

// everyValue is a flag value that is how often to do something, or never:
// a duration (5s, 1m), or a negative number, which turns it off. A bare
// "-1" is the usual way to write "never", and time.ParseDuration refuses
// it, as it refuses every number without a unit but 0. 0 is the default,
// as it is for every duration option of run, in the flags and the file.
type everyValue struct{ d *time.Duration }

// never is the interval that turns it off: Config reads any negative one
// so. A second rather than a nanosecond, so that config check prints it
// back as -1s.
const never = -time.Second

func (v everyValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v everyValue) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n < 0:
			*v.d = never
		case n == 0:
			*v.d = 0
		default:
			return fmt.Errorf("%s has no unit (write 5s, 1m; or -1 for never)", s)
		}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (write 5s, 1m; or -1 for never)")
	}
	*v.d = d
	return nil
}

func (v everyValue) Get() any { return *v.d }

// The synopses that head each command's help.
var (
	runSynopsis = map[string]string{
		"run": `Usage: carepipe run [flags]

Runs the pipelines until SIGINT, SIGTERM or --duration. With no --brokers
(nor KAFKA_BROKERS), the embedded demo: an in-process Kafka, the simulated
outside world and demo traffic. Options come, in rising precedence, from
the config file (--config), the environment and these flags.`,
		"config check": `Usage: carepipe config check [flags]

Checks the configuration that carepipe run would use with the same config
file, environment and flags: every mistake at once, each with its key and
where it came from; prints the configuration in the config file's keys,
secrets left out.`,
	}
	topicsSynopsis = `Usage: carepipe topics plan|apply [flags]

plan compares the topics the pipelines need with the cluster; apply creates
what is missing, adds partitions and sets configs, idempotently.`
	loadgenSynopsis = `Usage: carepipe loadgen [flags]

Sends a seeded workload to one pipeline, at a fixed rate (--rate) or ramping
it (--find-max), and measures end-to-end latency, throughput, lag, CPU and
memory. With no --brokers, the pipeline runs on an embedded cluster in this
process.`
)
