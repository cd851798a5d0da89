package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
)

// The operator's commands: describe, reset and errors. Their logic is
// package ops; their common flags and the connection are
// app.ConfigureOps's; this file is their own flags and their output.

// opsSpecs returns the specs of the pipeline named name: a name of
// --pipelines (alerts, priorauth, datasync, orders: every stage of it),
// or a stage's own name (datasync_cdc); every pipeline's when name is "".
func opsSpecs(name, sources string) ([]pipeline.Spec, error) {
	cfg := app.Config{SourcesFile: sources}
	if name == "" {
		return app.Specs(cfg)
	}
	cfg.Pipelines = []string{name}
	if specs, err := app.Specs(cfg); err == nil {
		return specs, nil
	}
	cfg.Pipelines = nil
	all, err := app.Specs(cfg)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range all {
		if s.Name == name {
			return []pipeline.Spec{s}, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("unknown pipeline %q: want alerts, priorauth, datasync or orders, or one stage: %s", name, strings.Join(names, ", "))
}

// kafka returns the options of a client of the cluster the connection
// flags and environment name.
func kafka(ctx context.Context, setup app.OpsSetup) ([]kgo.Opt, error) {
	if len(setup.ConnProblems) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n%w", errors.Join(setup.ConnProblems...))
	}
	return app.KafkaOpts(ctx, setup.Conn)
}

func describeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("describe", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON for tools: {\"pipelines\": [...]}")
	o, code := app.ConfigureOps(fs, app.OpsCommand{
		Synopsis:      "Usage: carepipe describe [--pipeline P] [--json]\n\nPrint each pipeline's topology: topics by role, keys, stores, timers, group and transactional ids.",
		PipelineUsage: "the pipeline to describe (default all): alerts, priorauth, datasync, orders, or a datasync stage",
	}, args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	specs, err := opsSpecs(o.Pipeline, o.Sources)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ts := ops.Describe(specs, catalog.NotesOf)
	if *asJSON {
		err = ops.WriteJSON(stdout, ts)
	} else {
		err = ops.WriteText(stdout, ts)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func resetCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	var (
		dryRun   = fs.Bool("dry-run", false, "print the plan, change nothing")
		earliest = fs.Bool("to-earliest", false, "reset the inputs to their earliest offsets: reprocess everything they hold (the default)")
		latest   = fs.Bool("to-latest", false, "reset the inputs to their latest offsets: skip everything they hold")
		at       = fs.String("to-datetime", "", "reset the inputs to the first offsets at or after this time: RFC 3339 (2026-12-06T03:00:00Z), or a duration ago (2h)")
	)
	o, code := app.ConfigureOps(fs, app.OpsCommand{
		Synopsis:      "Usage: carepipe reset --pipeline P [--dry-run] [--to-earliest|--to-latest|--to-datetime T]\n\nReset a stopped pipeline's group offsets and delete its internal topics, as kafka-streams-application-reset does.",
		PipelineUsage: "the pipeline whose groups to reset (required): alerts, priorauth, datasync (its three stages), orders, or one datasync stage",
		NeedPipeline:  true,
		Connect:       true,
	}, args, os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	var to ops.ResetTo
	chosen := 0
	for _, b := range []bool{*earliest, *latest, *at != ""} {
		if b {
			chosen++
		}
	}
	if chosen > 1 {
		fmt.Fprintln(stderr, "give one of --to-earliest, --to-latest, --to-datetime")
		return 2
	}
	to.Latest = *latest
	if *at != "" {
		t, err := parseWhen(*at, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "--to-datetime: %v\n", err)
			return 2
		}
		to.Time = t
	}
	specs, err := opsSpecs(o.Pipeline, o.Sources)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kopts, err := kafka(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "reset:", err)
		return 1
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		fmt.Fprintln(stderr, "reset:", err)
		return 1
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	plans, err := ops.PlanReset(ctx, adm, specs, to)
	if err != nil {
		fmt.Fprintln(stderr, "reset:", err)
		return 1
	}
	ops.WritePlan(stdout, plans)
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing changed")
		return 0
	}
	if err := ops.ApplyReset(ctx, adm, plans); err != nil {
		fmt.Fprintln(stderr, "reset:", err)
		return 1
	}
	fmt.Fprintln(stdout, "reset done: the pipeline reprocesses from these offsets when it next starts, its internal topics created anew")
	return 0
}

// parseWhen reads a time: RFC 3339, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-12-06T03:00:00Z) nor a duration ago (2h)", s)
}

const errorsUsage = `Usage:
  carepipe errors list   --pipeline P [filters]          the error records: coordinates, types, sizes, times (never their content)
  carepipe errors show   --pipeline P TOPIC/PART/OFFSET  one error record whole: headers, key and value (patient data)
  carepipe errors replay --pipeline P [filters] [--dry-run] [--progress]
                                                         send the originals back to their source topics, exactly once
Filters: --error-type, --source-topic, --partition, --from-offset, --to-offset (source offsets), --since, --until.
Run 'carepipe errors list -h' for every flag.
`

func errorsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !slices.Contains([]string{"list", "show", "replay"}, args[0]) {
		fmt.Fprint(stderr, errorsUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("errors "+verb, flag.ContinueOnError)
	var (
		errType     = fs.String("error-type", "", "only records of this error-type (decode, invalid, oversized, processing, panic, conflict, oversized-truncated)")
		sourceTopic = fs.String("source-topic", "", "only records whose original was read from this topic")
		partition   = fs.Int("partition", -1, "only records whose original was read from this partition of its topic")
		fromOffset  = fs.Int64("from-offset", -1, "only records whose original's offset is at least this")
		toOffset    = fs.Int64("to-offset", -1, "only records whose original's offset is at most this")
		since       = fs.String("since", "", "only records from this time on (the original's timestamp): RFC 3339, or a duration ago (2h)")
		until       = fs.String("until", "", "only records before this time: RFC 3339, or a duration ago")
		dryRun      = fs.Bool("dry-run", false, "replay: say what would be replayed, write nothing")
		progress    = fs.Bool("progress", false, "replay: draw a progress bar on stderr even when it is not a terminal")
		asJSON      = fs.Bool("json", false, "list: one JSON object a line, for tools")
	)
	cmd := app.OpsCommand{
		Synopsis:      "Usage: carepipe errors " + verb + " --pipeline P [filters]\n\nRead a pipeline's error topic: list coordinates and types, show one record, or replay originals to their source topic exactly once.",
		PipelineUsage: "the pipeline whose error topic to read (required): alerts, priorauth, datasync, orders",
		NeedPipeline:  true,
		Connect:       true,
	}
	// show takes the record's coordinates.
	if verb == "show" {
		cmd.ArgUsage = "usage: carepipe errors show --pipeline P TOPIC/PARTITION/OFFSET (as errors list prints them)"
	}
	o, code := app.ConfigureOps(fs, cmd, args[1:], os.LookupEnv, stdout, stderr)
	if code >= 0 {
		return code
	}
	at := o.Arg
	now := time.Now()
	f := ops.Filter{ErrorType: *errType, SourceTopic: *sourceTopic}
	if *partition >= 0 {
		f.Partitions = []int32{int32(*partition)}
	}
	if *fromOffset >= 0 {
		f.FromOffset = fromOffset
	}
	if *toOffset >= 0 {
		f.ToOffset = toOffset
	}
	for _, w := range []struct {
		flag, v string
		dst     *time.Time
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if w.v == "" {
			continue
		}
		t, err := parseWhen(w.v, now)
		if err != nil {
			fmt.Fprintf(stderr, "--%s: %v\n", w.flag, err)
			return 2
		}
		*w.dst = t
	}
	specs, err := opsSpecs(o.Pipeline, o.Sources)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kopts, err := kafka(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "errors:", err)
		return 1
	}
	switch verb {
	case "list":
		if *asJSON {
			err = listErrorsJSON(ctx, stdout, kopts, specs, f)
		} else {
			err = listErrors(ctx, stdout, kopts, specs, f)
		}
	case "show":
		err = showError(ctx, stdout, kopts, specs, at)
	case "replay":
		var bar io.Writer
		if *progress || isTerminal(stderr) {
			bar = stderr
		}
		err = replayErrors(ctx, stdout, bar, kopts, specs, f, *dryRun)
	}
	if err != nil {
		fmt.Fprintf(stderr, "errors %s: %v\n", verb, err)
		return 1
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// listErrors prints one line per error record, and counts by type: never
// a key, a value, a header's value or a message.
func listErrors(ctx context.Context, w io.Writer, kopts []kgo.Opt, specs []pipeline.Spec, f ops.Filter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ERROR RECORD\tTIME\tTYPE\tSOURCE\tKEY BYTES\tVALUE BYTES\tREPLAYABLE")
	byType := map[string]int{}
	n := 0
	err := ops.ReadErrors(ctx, kopts, specs, f, func(e *ops.ErrorRecord) error {
		n++
		byType[e.Type]++
		replayable := "yes"
		if e.Original == nil {
			replayable = "no: " + strings.SplitN(e.Unreplayable, ":", 2)[0]
		}
		typ := e.Type
		if e.OriginalType != "" {
			typ += " (" + e.OriginalType + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%d/%d\t%d\t%d\t%s\n", e.Coordinates(), e.Timestamp.UTC().Format(time.RFC3339Nano),
			typ, e.SourceTopic, e.SourcePartition, e.SourceOffset, e.KeyBytes, e.ValueBytes, replayable)
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s %d", t, byType[t]))
	}
	summary := fmt.Sprintf("%d error records in %s", n, strings.Join(ops.ErrorTopics(specs), ", "))
	if len(parts) > 0 {
		summary += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintln(w, summary)
	return nil
}

// listedError is a line of errors list --json: what list prints.
type listedError struct {
	Topic           string    `json:"topic"`
	Partition       int32     `json:"partition"`
	Offset          int64     `json:"offset"`
	Timestamp       time.Time `json:"timestamp"`
	Type            string    `json:"errorType"`
	OriginalType    string    `json:"originalErrorType,omitempty"`
	SourceTopic     string    `json:"sourceTopic"`
	SourcePartition int32     `json:"sourcePartition"`
	SourceOffset    int64     `json:"sourceOffset"`
	KeyBytes        int       `json:"keyBytes"`
	ValueBytes      int       `json:"valueBytes"`
	Replayable      bool      `json:"replayable"`
	Unreplayable    string    `json:"unreplayable,omitempty"`
}

func listErrorsJSON(ctx context.Context, w io.Writer, kopts []kgo.Opt, specs []pipeline.Spec, f ops.Filter) error {
	enc := json.NewEncoder(w)
	return ops.ReadErrors(ctx, kopts, specs, f, func(e *ops.ErrorRecord) error {
		return enc.Encode(listedError{
			Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp.UTC(),
			Type: e.Type, OriginalType: e.OriginalType,
			SourceTopic: e.SourceTopic, SourcePartition: e.SourcePartition, SourceOffset: e.SourceOffset,
			KeyBytes: e.KeyBytes, ValueBytes: e.ValueBytes, Replayable: e.Original != nil, Unreplayable: e.Unreplayable,
		})
	})
}

// showError prints one error record whole: the one place patient data is
// printed, because the operator asked for that record.
func showError(ctx context.Context, w io.Writer, kopts []kgo.Opt, specs []pipeline.Spec, at string) error {
	i := strings.LastIndexByte(at, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(at[:i], '/')
	}
	if j <= 0 {
		return fmt.Errorf("%q: want TOPIC/PARTITION/OFFSET", at)
	}
	p, perr := strconv.ParseInt(at[j+1:i], 10, 32)
	off, oerr := strconv.ParseInt(at[i+1:], 10, 64)
	if perr != nil || oerr != nil || p < 0 || off < 0 {
		return fmt.Errorf("%q: want TOPIC/PARTITION/OFFSET", at)
	}
	e, err := ops.ReadErrorAt(ctx, kopts, specs, at[:j], int32(p), off)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "error record  %s\n", e.Coordinates())
	fmt.Fprintf(w, "time          %s\n", e.Timestamp.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(w, "type          %s\n", e.Type)
	if e.OriginalType != "" {
		fmt.Fprintf(w, "original type %s\n", e.OriginalType)
	}
	fmt.Fprintf(w, "message       %s\n", e.Message)
	fmt.Fprintf(w, "source        %s/%d/%d\n", e.SourceTopic, e.SourcePartition, e.SourceOffset)
	if e.Original != nil {
		fmt.Fprintln(w, "replayable    yes")
	} else {
		fmt.Fprintf(w, "replayable    no: %s\n", e.Unreplayable)
	}
	fmt.Fprintln(w, "headers")
	for _, h := range e.Headers {
		fmt.Fprintf(w, "  %s: %s\n", h.Key, printable(h.Value))
	}
	if e.Original != nil {
		fmt.Fprintf(w, "key           %s\n", printable(e.Original.Key))
		fmt.Fprintf(w, "value         %s\n", printable(e.Original.Value))
	}
	return nil
}

// printable is b as text when it is UTF-8, else base64, said so.
func printable(b []byte) string {
	switch {
	case b == nil:
		return "(null)"
	case utf8.Valid(b):
		return string(b)
	}
	return "(base64) " + base64.StdEncoding.EncodeToString(b)
}

func replayErrors(ctx context.Context, w, bar io.Writer, kopts []kgo.Opt, specs []pipeline.Spec, f ops.Filter, dry bool) error {
	o := ops.ReplayOptions{DryRun: dry, Progress: bar}
	if dry {
		o.Planned = func(e *ops.ErrorRecord) {
			fmt.Fprintf(w, "would replay %s (%s) to %s partition %d, %d key and %d value bytes, %d headers\n",
				e.Coordinates(), e.Type, e.SourceTopic, e.SourcePartition, len(e.Original.Key), len(e.Original.Value), len(e.Original.Headers))
		}
	}
	res, err := ops.Replay(ctx, kopts, specs, f, o)
	verb := "replayed"
	if dry {
		verb = "dry run: would replay"
	}
	fmt.Fprintf(w, "%s %d originals of %d error records selected; %d replayed before\n", verb, res.Replayed, res.Selected, res.AlreadyReplayed)
	reasons := make([]string, 0, len(res.Unreplayable))
	for r := range res.Unreplayable {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "not replayable, %d: %s\n", res.Unreplayable[r], r)
	}
	return err
}
