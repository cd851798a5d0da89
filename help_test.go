package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// helpCommands are the commands with flags, as the README invokes them.
var helpCommands = [][]string{{"run"}, {"config", "check"}, {"topics", "plan"}, {"topics", "apply"}, {"loadgen"},
	{"describe"}, {"errors", "list"}, {"errors", "show"}, {"errors", "replay"}, {"reset"}}

// foreignFlags are flags of other tools that the README names.
var foreignFlags = map[string]string{"--isolation-level": "kafka-console-consumer", "--reset-offsets": "kafka-consumer-groups"}

// Regression (issue 23): help went to stderr, so `carepipe run -h | less`
// showed nothing, and named flags with one dash while the README uses
// two. Help asked for goes to stdout and exits 0, every flag written
// --name; nothing goes to stderr.
func TestHelpGoesToStdoutWithDoubleDashes(t *testing.T) {
	for _, cmd := range helpCommands {
		for _, h := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			if code := run(append(append([]string(nil), cmd...), h), &stdout, &stderr); code != 0 {
				t.Errorf("%v %s: exit %d, want 0", cmd, h, code)
			}
			if stderr.Len() > 0 {
				t.Errorf("%v %s wrote to stderr:\n%s", cmd, h, stderr.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, "Usage: carepipe "+cmd[0]) {
				t.Errorf("%v %s: help does not start with its usage:\n%s", cmd, h, out)
			}
			flags := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "  -") {
					flags++
					if !strings.HasPrefix(line, "  --") {
						t.Errorf("%v %s: flag written with one dash: %q", cmd, h, line)
					}
				}
			}
			if flags == 0 {
				t.Errorf("%v %s: %d flags in the help, want them all:\n%s", cmd, h, flags, out)
			}
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"topics", "-h"}, {"config", "--help"}, {"rules", "--help"}, {"rules", "check", "-h"}, {"version", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), "Usage:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want the usage on stdout, exit 0", args, code, stdout.String(), stderr.String())
		}
	}
}

// A mistake on the command line still goes to stderr with exit 2, names
// the flag as the README does and says where the help is; stdout stays
// clean for what a script reads.
func TestFlagMistakeGoesToStderr(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--no-such-flag"}, "flag provided but not defined: --no-such-flag"},
		{[]string{"run", "--duration", "soon"}, `invalid value "soon" for flag --duration`},
		{[]string{"loadgen", "--rate"}, "flag needs an argument: --rate"},
		{[]string{"topics", "plan", "--partitions", "many"}, `invalid value "many" for flag --partitions`},
		{[]string{"run", "--create-topics=maybe"}, `invalid boolean value "maybe" for --create-topics`},
		{[]string{"run", "-=x"}, "bad flag syntax: -=x"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if stdout.Len() > 0 {
			t.Errorf("%v wrote to stdout: %q", tc.args, stdout.String())
		}
		if e := stderr.String(); !strings.Contains(e, tc.want) || !strings.Contains(e, "--help") {
			t.Errorf("%v: stderr %q, want %q and a pointer to --help", tc.args, e, tc.want)
		}
	}
}

// Every flag the README names exists: a flag in a command line of the
// README (`carepipe CMD ...` or `go run . CMD ...`, in a code block or a
// code span) is one of that command's, and every other --flag it mentions
// is one of some command's. The commands' help is what is checked, so
// the help and the README agree.
func TestREADMEFlagsExist(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	helps := map[string]string{}
	all := ""
	for _, cmd := range helpCommands {
		var stdout, stderr bytes.Buffer
		run(append(append([]string(nil), cmd...), "--help"), &stdout, &stderr)
		helps[strings.Join(cmd, " ")] = stdout.String()
		all += stdout.String()
	}
	defined := func(help, flag string) bool {
		return strings.Contains(help, "\n  "+flag+" ") || strings.Contains(help, "\n  "+flag+"\n")
	}
	flagRE := regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	cmdRE := regexp.MustCompile(`(?:carepipe|go run \.) (run|config check|topics plan\|apply|topics plan|topics apply|topics|loadgen|describe|errors list|errors show|errors replay|reset)\b([^\n]*)`)
	var code []string
	fences := strings.Split(string(readme), "```")
	for i, part := range fences {
		if i%2 == 1 {
			code = append(code, part)
			continue
		}
		for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(part, -1) {
			code = append(code, m[1])
		}
	}
	checked := 0
	for _, c := range code {
		for _, m := range cmdRE.FindAllStringSubmatch(c, -1) {
			cmd := m[1]
			switch cmd {
			case "topics", "topics plan|apply":
				cmd = "topics plan"
			}
			for _, f := range flagRE.FindAllString(m[2], -1) {
				if f == "--help" {
					continue
				}
				checked++
				if !defined(helps[cmd], f) {
					t.Errorf("README: %q names %s, which carepipe %s --help does not list", strings.TrimSpace(m[0]), f, cmd)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no command line with a flag found in the README")
	}
	for _, f := range flagRE.FindAllString(string(readme), -1) {
		if f != "--version" && f != "--help" && foreignFlags[f] == "" && !defined(all, f) {
			t.Errorf("README names %s, which no command's help lists", f)
		}
	}
}
