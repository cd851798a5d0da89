package main

import (
	"slices"
	"testing"

	"github.com/carepipe/carepipe/app"
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
