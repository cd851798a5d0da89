package app

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
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
		want  Config
	}{
		{"environment", envs, nil, Config{
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
		}, Config{
			Brokers: []string{"flag:9093", "flag2:9093"}, SASLMechanism: "SCRAM-SHA-256", Username: "u2", Password: "from-file",
			TLS: true, TLSCAFile: "/f/ca.pem", TLSCertFile: "/f/c.pem", TLSKeyFile: "/f/k.pem",
			KafkaClientID: "cp-flag", KafkaRack: "zone-b", KafkaDialTimeout: 3 * time.Second, KafkaRequestTimeoutOverhead: 20 * time.Second,
			KafkaConnIdleTimeout: time.Minute, KafkaMetadataMaxAge: 30 * time.Second,
			SchemaRegistryURL: "https://sr2:8081", SchemaRegistryUsername: "sru", SchemaRegistryPassword: "from-file", SchemaRegistryCAFile: "/f/sr.pem",
		}},
		{"TLS and SASL by flag alone", nil, []string{"--brokers", "b:9093", "--kafka-tls", "--kafka-username", "u", "--kafka-password-file", pwFile},
			Config{Brokers: []string{"b:9093"}, TLS: true, SASLMechanism: "PLAIN", Username: "u", Password: "from-file"}},
		{"--kafka-tls=false over KAFKA_TLS", map[string]string{"KAFKA_TLS": "1"}, []string{"--kafka-tls=false"}, Config{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			conn := addConnFlags(fs, "")
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			var cfg Config
			if errs := conn.apply(&cfg, envOf(tt.env)); len(errs) > 0 {
				t.Fatal(errs)
			}
			if got, want := FileOf(cfg), FileOf(tt.want); !reflect.DeepEqual(got, want) || cfg.Password != tt.want.Password || cfg.SchemaRegistryPassword != tt.want.SchemaRegistryPassword {
				t.Errorf("got  %+v\nwant %+v", cfg.Redacted(), tt.want.Redacted())
			}
		})
	}
}

// A bad value in the environment or a flag is a mistake reported with its
// key and where it came from, among the others.
func TestConnectionSettingMistakes(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	conn := addConnFlags(fs, "")
	if err := fs.Parse([]string{"--kafka-dial-timeout", "5", "--kafka-password-file", "/nonexistent/pw"}); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	var got []string
	for _, err := range conn.apply(&cfg, envOf(map[string]string{"KAFKA_TLS": "yes please"})) {
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

// The cloud logins' settings come from the environment (the AWS SDK's own
// variables for MSK IAM) and from flags, which win; secrets come from a
// variable or a file, never a flag.
func TestCloudLoginSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{
		"KAFKA_SASL_MECHANISM": "AWS_MSK_IAM", "KAFKA_SASL_OAUTH_TOKEN": "env.token", "KAFKA_SASL_OAUTH_TOKEN_FILE": "/env/token",
		"KAFKA_SASL_OAUTH_EXTENSIONS": "logicalCluster=lkc-1, identityPoolId=pool-1", "AWS_ACCESS_KEY_ID": "AKIAENV",
		"AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-session",
		"KAFKA_SASL_OAUTH_TOKEN_URL": "https://idp.env/token", "KAFKA_SASL_OAUTH_CLIENT_ID": "env-client",
		"KAFKA_SASL_OAUTH_CLIENT_SECRET": "env-client-secret", "KAFKA_SASL_OAUTH_SCOPE": "kafka",
	})
	for _, tt := range []struct {
		name  string
		flags []string
		want  Config
	}{
		{"environment", nil, Config{
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
		}, Config{
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
			var cfg Config
			if errs := conn.apply(&cfg, env); len(errs) > 0 {
				t.Fatal(errs)
			}
			if !reflect.DeepEqual(FileOf(cfg), FileOf(tt.want)) || cfg.OAuthToken != tt.want.OAuthToken ||
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

// Schema auto-registration and the registry wait come from the file, the
// environment and flags, each over the one before; left out, datasync
// registers its schemas and waits the default.
func TestSchemaRegistryStartUpSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("schemaRegistry:\n  autoRegister: false\n  wait: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		file         bool
		env          map[string]string
		flags        []string
		lookupOnly   bool
		wait         time.Duration
		wantMistakes int
	}{
		{name: "defaults"},
		{name: "file", file: true, lookupOnly: true, wait: 30 * time.Second},
		{name: "environment over the file", file: true, env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true", "SCHEMA_REGISTRY_WAIT": "45s"}, wait: 45 * time.Second},
		{name: "flags over the environment", env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true"},
			flags: []string{"--schema-auto-register=false", "--schema-registry-wait", "5m"}, lookupOnly: true, wait: 5 * time.Minute},
		{name: "mistakes", env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "nope"}, flags: []string{"--schema-registry-wait", "soon"}, wantMistakes: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			if tt.file {
				f, err := LoadConfigFile(path)
				if err != nil {
					t.Fatal(err)
				}
				f.Apply(&cfg)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			conn := addConnFlags(fs, "")
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			errs := conn.apply(&cfg, envOf(tt.env))
			if len(errs) != tt.wantMistakes {
				t.Fatalf("mistakes %v, want %d", errs, tt.wantMistakes)
			}
			if tt.wantMistakes > 0 {
				return
			}
			if cfg.SchemaRegistryLookupOnly != tt.lookupOnly || cfg.SchemaRegistryWait != tt.wait {
				t.Fatalf("lookup only %v, wait %v; want %v, %v", cfg.SchemaRegistryLookupOnly, cfg.SchemaRegistryWait, tt.lookupOnly, tt.wait)
			}
		})
	}
}
