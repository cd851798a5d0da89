package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/version"
)

// config check prints the configuration run would use: the file, then the
// environment over it, then the flags over both; secrets redacted.
func TestConfigCheckLayersFileEnvironmentAndFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "carepipe.yaml")
	file := "brokers: [file:9092]\npipelines: [orders]\nhttp: 127.0.0.1:8080\ncommitInterval: 250ms\ninstanceId: from-file\nkafka: {saslMechanism: SCRAM-SHA-512, username: file-user}\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAREPIPE_CONFIG", path)
	t.Setenv("KAFKA_BROKERS", "env:9092")
	t.Setenv("KAFKA_PASSWORD", "pw-from-env")
	var out, errOut bytes.Buffer
	if code := run([]string{"config", "check", "--instance-id", "from-flag"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := readBack(t, out.String())
	if !slices.Equal(got.Brokers, []string{"env:9092"}) || got.InstanceID != "from-flag" || got.Username != "file-user" ||
		got.SASLMechanism != "SCRAM-SHA-512" || got.HTTPAddr != "127.0.0.1:8080" || got.CommitInterval != 250*time.Millisecond {
		t.Errorf("printed %+v", got.Redacted())
	}
	if strings.Contains(out.String(), "pw-from-env") || got.Password != "" {
		t.Error("the password is printed")
	}
	if !strings.Contains(out.String(), "# Secrets set, not printed: kafka.password (KAFKA_PASSWORD).") {
		t.Errorf("the set password is not mentioned:\n%s", out.String())
	}

	// An unknown key is a mistake, naming its line; so is an invalid option.
	if err := os.WriteFile(path, []byte("brokers: [k:9092]\ncommit-interval: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"config", "check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "line 2: commit-interval: unknown key; did you mean commitInterval?") {
		t.Errorf("unknown key: exit %d, %q", code, errOut.String())
	}
	// run refuses it before starting anything.
	errOut.Reset()
	if code := run([]string{"run"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "line 2: commit-interval") {
		t.Errorf("run with an unknown key: exit %d, %q", code, errOut.String())
	}
	if err := os.WriteFile(path, []byte("pipelines: [billing]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"config", "check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `unknown pipeline "billing"`) {
		t.Errorf("unknown pipeline: exit %d, %q", code, errOut.String())
	}

	// datasync's sources file, by flag or environment, is checked too.
	sources := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(sources, []byte("sources:\n  - {topic: ehr.public.patients, system: ehr, entity: patients}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("pipelines: [datasync]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_BROKERS", "")
	for _, args := range [][]string{{"config", "check", "--sources", sources}, {"config", "check"}} {
		if len(args) == 2 {
			t.Setenv("CAREPIPE_SOURCES", sources)
		}
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `sources[0].entity: unknown entity "patients"`) {
			t.Errorf("%v: exit %d, %q", args, code, errOut.String())
		}
	}
}

// readBack is config check's output read as a config file, as a user
// pasting it into one would.
func readBack(t *testing.T, out string) app.Config {
	t.Helper()
	if !strings.HasSuffix(out, "# configuration valid\n") {
		t.Fatalf("no verdict at the end:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "pasted.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := app.LoadConfigFile(path)
	if err != nil {
		t.Fatalf("the output does not read back: %v\n%s", err, out)
	}
	var c app.Config
	f.Apply(&c)
	return c
}

// The priorauth options layer as the others do: the environment over the
// file, the flags over both.
func TestConfigCheckPriorAuthOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("pipelines: [priorauth]\npayerTimeZone: Europe/Berlin\nurgentCategories: [statin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAREPIPE_CONFIG", path)
	t.Setenv("CAREPIPE_PAYER_TIME_ZONE", "America/Chicago")
	var out, errOut bytes.Buffer
	if code := run([]string{"config", "check", "--urgent-categories", "insulin, blood thinner"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := readBack(t, out.String())
	if got.PayerTimeZone != "America/Chicago" || !reflect.DeepEqual(got.UrgentCategories, []string{"insulin", "blood thinner"}) {
		t.Errorf("payerTimeZone %v, urgentCategories %v", got.PayerTimeZone, got.UrgentCategories)
	}
	errOut.Reset()
	if code := run([]string{"config", "check", "--payer-time-zone", "Nowhere/Atall"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "payer time zone") {
		t.Errorf("a bad payer time zone: exit %d, %q", code, errOut.String())
	}
}

// `carepipe version` and `--version` print the build's version, revision
// and Go version on one line; an argument after it is a mistake.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			v := version.Get()
			want := fmt.Sprintf("carepipe %s (revision %s, %s)\n", v.Version, v.Revision, runtime.Version())
			if out.String() != want {
				t.Errorf("printed %q, want %q", out.String(), want)
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"version", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}

// The start-up log line says which build runs, before anything can fail.
func TestStartupLogSaysTheVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	// An unknown pipeline stops Run at once, after the start-up line.
	if code := run([]string{"run", "--pipelines", "billing"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	first, _, _ := strings.Cut(errOut.String(), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("%v in %q", err, first)
	}
	v := version.Get()
	for k, want := range map[string]string{"msg": "starting", "version": v.Version, "revision": v.Revision, "go_version": runtime.Version()} {
		if line[k] != want {
			t.Errorf("start-up line %s = %v, want %q", k, line[k], want)
		}
	}
}

// --http reads an address as Go does: ":8080" is every interface, so the
// query API there needs a token, as on any address off loopback; a bare
// port number binds loopback only.
func TestConfigCheckHTTPNeedsTokenOffLoopback(t *testing.T) {
	for _, tt := range []struct {
		name, http, token string
		ok                bool
	}{
		{"every interface, no token", ":8080", "", false},
		{"every interface with a token", ":8080", "tok", true},
		{"0.0.0.0, no token", "0.0.0.0:8080", "", false},
		{"IPv6 every interface, no token", "[::]:8080", "", false},
		{"bare port number: loopback", "8080", "", true},
		{"loopback", "127.0.0.1:8080", "", true},
		{"localhost", "localhost:8080", "", true},
		{"a host name may be anything", "carepipe.internal:8080", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CAREPIPE_CONFIG", "")
			t.Setenv("KAFKA_BROKERS", "")
			if tt.token != "" {
				t.Setenv("CAREPIPE_API_TOKEN", tt.token)
			}
			var out, errOut bytes.Buffer
			code := run([]string{"config", "check", "--pipelines", "priorauth", "--http", tt.http}, &out, &errOut)
			if (code == 0) != tt.ok {
				t.Fatalf("exit %d, want ok=%v: %s", code, tt.ok, errOut.String())
			}
			if !tt.ok && !strings.Contains(errOut.String(), "http (--http): "+tt.http+" is not a loopback address: the query API needs api.token (or CAREPIPE_API_TOKEN)") {
				t.Errorf("the refusal does not say why: %s", errOut.String())
			}
		})
	}
}

// One run reports the mistakes of the file, the environment and the flags
// together, each with its key and where it came from.
func TestConfigCheckReportsFileEnvironmentAndFlagsTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("brokers: [kafka-1]\ncommitInterval: 100\nkafka: {saslMechanism: PLAIN, username: u}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAREPIPE_CONFIG", path)
	t.Setenv("KAFKA_BROKERS", "")
	os.Unsetenv("KAFKA_BROKERS")
	t.Setenv("CAREPIPE_SESSION_TIMEOUT", "10")
	t.Setenv("SCHEMA_REGISTRY_URL", "registry:8081")
	var out, errOut bytes.Buffer
	code := run([]string{"config", "check", "--log-level", "loud", "--kafka-rack", "rack 1", "--pipelines", "alerts,billing"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := []string{
		"invalid configuration (config file " + path + ", environment and flags): 8 mistakes",
		`line 1: brokers[0]: "kafka-1": not host:port`,
		`line 2: commitInterval: "100": not a duration (write 100ms, 5s, 2m)`,
		`sessionTimeout (CAREPIPE_SESSION_TIMEOUT): "10" is not a duration (write 100ms, 5s, 2m)`,
		`logLevel (--log-level): "loud": want debug, info, warn or error`,
		`pipelines[1] (--pipelines): unknown pipeline "billing" (known: alerts, priorauth, datasync, orders)`,
		`schemaRegistry.url (SCHEMA_REGISTRY_URL): "registry:8081" has no http:// or https:// scheme`,
		"kafka.password: SASL PLAIN needs a password (or KAFKA_PASSWORD)",
		`kafka.rack (--kafka-rack): "rack 1": use up to 249 letters, digits, '.', '_' and '-'`,
	}
	got := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	slices.Sort(got[1:])
	slices.Sort(want[1:])
	if !slices.Equal(got, want) {
		t.Errorf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The container image's setting: with the demo off and no brokers, run
// exits 2 at once and says how to give brokers or run the demo; --demo
// (a flag wins over the environment) turns it back on, as config check
// shows.
func TestRunDemoOffWithoutBrokers(t *testing.T) {
	for _, k := range []string{"KAFKA_BROKERS", "CAREPIPE_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("CAREPIPE_DEMO", "off")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run"}, &stdout, &stderr); code != 2 {
		t.Fatalf("run exit %d, want 2; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"no Kafka brokers, and the embedded demo is turned off by CAREPIPE_DEMO", "KAFKA_BROKERS", "carepipe run --demo"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"config", "check", "--demo"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "mode: \"on\"") {
		t.Errorf("config check --demo: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}
