package main

import (
	"bytes"
	"encoding/json"
	"flag"
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

// The connection's settings come from the environment as the README lists
// them, and from flags, which win; a username alone means PLAIN.
func TestConnectionSettings(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envs := map[string]string{
		"KAFKA_BROKERS":        "env:9093",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_USERNAME":       "carepipe",
		"KAFKA_PASSWORD":       "s3cret",
		"KAFKA_TLS":            "true",
		"KAFKA_TLS_CA":         "/etc/kafka/ca.pem",
		"KAFKA_TLS_CERT":       "/etc/kafka/client.pem",
		"KAFKA_TLS_KEY":        "/etc/kafka/client-key.pem",
		"KAFKA_CLIENT_ID":      "carepipe-env",
		"KAFKA_RACK":           "zone-a",
		"SCHEMA_REGISTRY_URL":  "https://sr:8081",
		"SCHEMA_REGISTRY_CA":   "/etc/sr/ca.pem",
	}
	for _, tt := range []struct {
		name  string
		env   map[string]string
		flags []string
		want  app.Config
	}{
		{"environment", envs, nil, app.Config{
			Brokers: []string{"env:9093"}, SASLMechanism: "SCRAM-SHA-512", Username: "carepipe", Password: "s3cret",
			TLS: true, TLSCAFile: "/etc/kafka/ca.pem", TLSCertFile: "/etc/kafka/client.pem", TLSKeyFile: "/etc/kafka/client-key.pem",
			KafkaClientID: "carepipe-env", KafkaRack: "zone-a", SchemaRegistryURL: "https://sr:8081", SchemaRegistryCAFile: "/etc/sr/ca.pem",
		}},
		{"flags over the environment", envs, []string{
			"--brokers", "flag:9093,flag2:9093", "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-username", "u2",
			"--kafka-password-file", pwFile, "--kafka-tls-ca", "/f/ca.pem", "--kafka-tls-cert", "/f/c.pem", "--kafka-tls-key", "/f/k.pem",
			"--kafka-client-id", "cp-flag", "--kafka-rack", "zone-b", "--kafka-dial-timeout", "3s", "--kafka-request-timeout-overhead", "20s",
			"--kafka-conn-idle-timeout", "1m", "--kafka-metadata-max-age", "30s", "--schema-registry", "https://sr2:8081",
			"--schema-registry-username", "sru", "--schema-registry-password-file", pwFile, "--schema-registry-ca", "/f/sr.pem",
		}, app.Config{
			Brokers: []string{"flag:9093", "flag2:9093"}, SASLMechanism: "SCRAM-SHA-256", Username: "u2", Password: "from-file",
			TLS: true, TLSCAFile: "/f/ca.pem", TLSCertFile: "/f/c.pem", TLSKeyFile: "/f/k.pem",
			KafkaClientID: "cp-flag", KafkaRack: "zone-b", KafkaDialTimeout: 3 * time.Second, KafkaRequestTimeoutOverhead: 20 * time.Second,
			KafkaConnIdleTimeout: time.Minute, KafkaMetadataMaxAge: 30 * time.Second,
			SchemaRegistryURL: "https://sr2:8081", SchemaRegistryUsername: "sru", SchemaRegistryPassword: "from-file", SchemaRegistryCAFile: "/f/sr.pem",
		}},
		{"TLS and SASL by flag alone", nil, []string{"--brokers", "b:9093", "--kafka-tls", "--kafka-username", "u", "--kafka-password-file", pwFile},
			app.Config{Brokers: []string{"b:9093"}, TLS: true, SASLMechanism: "PLAIN", Username: "u", Password: "from-file"}},
		{"--kafka-tls=false over KAFKA_TLS", map[string]string{"KAFKA_TLS": "1"}, []string{"--kafka-tls=false"}, app.Config{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k := range envs {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			conn := addConnFlags(fs, "")
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			var cfg app.Config
			if errs := conn.apply(&cfg); len(errs) > 0 {
				t.Fatal(errs)
			}
			if got, want := app.FileOf(cfg), app.FileOf(tt.want); !reflect.DeepEqual(got, want) || cfg.Password != tt.want.Password || cfg.SchemaRegistryPassword != tt.want.SchemaRegistryPassword {
				t.Errorf("got  %+v\nwant %+v", cfg.Redacted(), tt.want.Redacted())
			}
		})
	}
}

// A bad value in the environment or a flag is a mistake reported with its
// key and where it came from, among the others.
func TestConnectionSettingMistakes(t *testing.T) {
	t.Setenv("KAFKA_TLS", "yes please")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	conn := addConnFlags(fs, "")
	if err := fs.Parse([]string{"--kafka-dial-timeout", "5", "--kafka-password-file", "/nonexistent/pw"}); err != nil {
		t.Fatal(err)
	}
	var cfg app.Config
	var got []string
	for _, err := range conn.apply(&cfg) {
		got = append(got, err.Error())
	}
	want := []string{
		`kafka.tls (KAFKA_TLS): "yes please": want true or false`,
		"kafka.password (--kafka-password-file): open /nonexistent/pw: no such file or directory",
		`kafka.dialTimeout (--kafka-dial-timeout): "5" is not a duration (write 100ms, 5s, 2m)`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mistakes\n %q\nwant\n %q", got, want)
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

// The cloud logins' settings come from the environment (the AWS SDK's own
// variables for MSK IAM) and from flags, which win; secrets come from a
// variable or a file, never a flag.
func TestCloudLoginSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"KAFKA_SASL_MECHANISM": "AWS_MSK_IAM", "KAFKA_SASL_OAUTH_TOKEN": "env.token", "KAFKA_SASL_OAUTH_TOKEN_FILE": "/env/token",
		"KAFKA_SASL_OAUTH_EXTENSIONS": "logicalCluster=lkc-1, identityPoolId=pool-1", "AWS_ACCESS_KEY_ID": "AKIAENV",
		"AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-session",
		"KAFKA_SASL_OAUTH_TOKEN_URL": "https://idp.env/token", "KAFKA_SASL_OAUTH_CLIENT_ID": "env-client",
		"KAFKA_SASL_OAUTH_CLIENT_SECRET": "env-client-secret", "KAFKA_SASL_OAUTH_SCOPE": "kafka",
	} {
		t.Setenv(k, v)
	}
	for _, tt := range []struct {
		name  string
		flags []string
		want  app.Config
	}{
		{"environment", nil, app.Config{
			SASLMechanism: "AWS_MSK_IAM", OAuthToken: "env.token", OAuthTokenFile: "/env/token",
			OAuthExtensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-1"},
			AWSAccessKeyID:  "AKIAENV", AWSSecretAccessKey: "env-secret", AWSSessionToken: "env-session",
			OAuthTokenURL: "https://idp.env/token", OAuthClientID: "env-client", OAuthClientSecret: "env-client-secret", OAuthScope: "kafka",
		}},
		{"flags over the environment", []string{
			"--kafka-sasl-mechanism", "OAUTHBEARER", "--kafka-sasl-oauth-token-file", "/flag/token", "--kafka-sasl-oauth-extensions", "logicalCluster=lkc-2",
			"--kafka-aws-access-key-id", "AKIAFLAG", "--kafka-aws-secret-access-key-file", secretFile, "--kafka-aws-session-token-file", secretFile,
			"--kafka-sasl-oauth-token-url", "https://idp.flag/token", "--kafka-sasl-oauth-client-id", "flag-client",
			"--kafka-sasl-oauth-client-secret-file", secretFile, "--kafka-sasl-oauth-scope", "kafka.write",
		}, app.Config{
			SASLMechanism: "OAUTHBEARER", OAuthToken: "env.token", OAuthTokenFile: "/flag/token",
			OAuthExtensions: map[string]string{"logicalCluster": "lkc-2"},
			AWSAccessKeyID:  "AKIAFLAG", AWSSecretAccessKey: "from-file", AWSSessionToken: "from-file",
			OAuthTokenURL: "https://idp.flag/token", OAuthClientID: "flag-client", OAuthClientSecret: "from-file", OAuthScope: "kafka.write",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			conn := addConnFlags(fs, "")
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			var cfg app.Config
			if errs := conn.apply(&cfg); len(errs) > 0 {
				t.Fatal(errs)
			}
			if !reflect.DeepEqual(app.FileOf(cfg), app.FileOf(tt.want)) || cfg.OAuthToken != tt.want.OAuthToken ||
				cfg.AWSSecretAccessKey != tt.want.AWSSecretAccessKey || cfg.AWSSessionToken != tt.want.AWSSessionToken ||
				cfg.OAuthClientSecret != tt.want.OAuthClientSecret {
				t.Errorf("got  %+v\nwant %+v", cfg.Redacted(), tt.want.Redacted())
			}
		})
	}
	for _, secret := range []string{"oauth-token", "oauth-client-secret", "aws-secret-access-key", "aws-session-token"} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		addConnFlags(fs, "")
		if fs.Lookup("kafka-"+secret) != nil || fs.Lookup("kafka-sasl-"+secret) != nil {
			t.Errorf("a secret is a flag: %s", secret)
		}
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
