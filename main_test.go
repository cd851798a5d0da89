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

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/version"
)

// The security settings come from the environment as the README lists
// them; --brokers wins over KAFKA_BROKERS.
func TestKafkaFromEnv(t *testing.T) {
	for k, v := range map[string]string{
		"KAFKA_BROKERS":        "env:9093",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_USERNAME":       "carepipe",
		"KAFKA_PASSWORD":       "s3cret",
		"KAFKA_TLS":            "true",
		"KAFKA_TLS_CA":         "/etc/kafka/ca.pem",
		"KAFKA_TLS_CERT":       "/etc/kafka/client.pem",
		"KAFKA_TLS_KEY":        "/etc/kafka/client-key.pem",
		"SCHEMA_REGISTRY_CA":   "/etc/sr/ca.pem",
	} {
		t.Setenv(k, v)
	}
	var cfg app.Config
	kafkaFromEnv(&cfg, "flag:9093,flag2:9093")
	want := app.Config{
		Brokers: []string{"flag:9093", "flag2:9093"}, SASLMechanism: "SCRAM-SHA-512", Username: "carepipe", Password: "s3cret",
		TLS: true, TLSCAFile: "/etc/kafka/ca.pem", TLSCertFile: "/etc/kafka/client.pem", TLSKeyFile: "/etc/kafka/client-key.pem",
		SchemaRegistryCAFile: "/etc/sr/ca.pem",
	}
	if !slices.Equal(cfg.Brokers, want.Brokers) || cfg.SASLMechanism != want.SASLMechanism || cfg.Username != want.Username ||
		cfg.Password != want.Password || cfg.TLS != want.TLS || cfg.TLSCAFile != want.TLSCAFile || cfg.TLSCertFile != want.TLSCertFile ||
		cfg.TLSKeyFile != want.TLSKeyFile || cfg.SchemaRegistryCAFile != want.SchemaRegistryCAFile {
		t.Fatalf("kafkaFromEnv gave %+v, want %+v", cfg.Redacted(), want.Redacted())
	}

	// A username alone means PLAIN, the brokers come from the environment.
	t.Setenv("KAFKA_SASL_MECHANISM", "")
	cfg = app.Config{}
	kafkaFromEnv(&cfg, "")
	if cfg.SASLMechanism != "PLAIN" || !slices.Equal(cfg.Brokers, []string{"env:9093"}) {
		t.Fatalf("mechanism %q, brokers %v; want PLAIN and env:9093", cfg.SASLMechanism, cfg.Brokers)
	}
}

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
	var got map[string]any
	if err := json.Unmarshal(bytes.TrimSuffix(out.Bytes(), []byte("configuration valid\n")), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	for k, want := range map[string]any{
		"brokers": []any{"env:9092"}, "instance_id": "from-flag", "username": "file-user",
		"sasl_mechanism": "SCRAM-SHA-512", "password": "[redacted]", "http": "127.0.0.1:8080",
	} {
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if strings.Contains(out.String(), "pw-from-env") {
		t.Error("the password is printed")
	}

	// An unknown key stops it, naming the line; so does an invalid option.
	if err := os.WriteFile(path, []byte("brokers: [k:9092]\ncommit-interval: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"config", "check"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "line 2") {
		t.Errorf("unknown key: exit %d, %q", code, errOut.String())
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
	var got map[string]any
	if err := json.Unmarshal(bytes.TrimSuffix(out.Bytes(), []byte("configuration valid\n")), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if got["payer_time_zone"] != "America/Chicago" || !reflect.DeepEqual(got["urgent_categories"], []any{"insulin", "blood thinner"}) {
		t.Errorf("payer_time_zone %v, urgent_categories %v", got["payer_time_zone"], got["urgent_categories"])
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
