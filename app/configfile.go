package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileConfig is carepipe's config file (YAML): every option of `carepipe
// run`. A key left out leaves the option to the environment, the flags or
// the default; flags win over the environment, the environment over the
// file. Unknown keys are errors. Secrets may be written here, but the
// environment (a Kubernetes Secret, say) is the better place for them.
//
//	brokers: [kafka-1:9092, kafka-2:9092]
//	pipelines: [alerts, priorauth, datasync]
//	http: 0.0.0.0:8080
//	createTopics: false
//	partitions: 12
//	rules: /etc/carepipe/rules.yaml
//	siteTimeZone: Europe/Berlin
//	payerTimeZone: America/New_York
//	urgentCategories: [antibiotic, antibacterial, anticoagulant, blood thinner, insulin]
//	instanceId: carepipe-0
//	commitInterval: 100ms
//	sessionTimeout: 10s
//	reconcileDeadline: 5m
//	sources: /etc/carepipe/sources.yaml
//	summaryEvery: 5s
//	logLevel: info
//	kafka: {saslMechanism: SCRAM-SHA-512, username: carepipe, tls: true, tlsCA: /etc/kafka/ca.pem}
//	schemaRegistry: {url: https://registry:8081, username: carepipe}
//	demo: {rate: 500, seed: 1, patients: 200}
type FileConfig struct {
	Brokers           []string  `yaml:"brokers"`
	Pipelines         []string  `yaml:"pipelines"`
	HTTP              *string   `yaml:"http"`
	CreateTopics      *bool     `yaml:"createTopics"`
	Partitions        *int32    `yaml:"partitions"`
	Rules             *string   `yaml:"rules"`
	SiteTimeZone      *string   `yaml:"siteTimeZone"`
	PayerTimeZone     *string   `yaml:"payerTimeZone"`
	UrgentCategories  []string  `yaml:"urgentCategories"`
	InstanceID        *string   `yaml:"instanceId"`
	CommitInterval    *Duration `yaml:"commitInterval"`
	SessionTimeout    *Duration `yaml:"sessionTimeout"`
	Duration          *Duration `yaml:"duration"`
	ReconcileDeadline *Duration `yaml:"reconcileDeadline"`
	Sources           *string   `yaml:"sources"`
	SummaryEvery      *Duration `yaml:"summaryEvery"`
	LogLevel          *string   `yaml:"logLevel"`
	Kafka             struct {
		SASLMechanism *string `yaml:"saslMechanism"`
		Username      *string `yaml:"username"`
		Password      *string `yaml:"password"`
		TLS           *bool   `yaml:"tls"`
		TLSCA         *string `yaml:"tlsCA"`
		TLSCert       *string `yaml:"tlsCert"`
		TLSKey        *string `yaml:"tlsKey"`
	} `yaml:"kafka"`
	SchemaRegistry struct {
		URL      *string `yaml:"url"`
		Username *string `yaml:"username"`
		Password *string `yaml:"password"`
		CA       *string `yaml:"ca"`
	} `yaml:"schemaRegistry"`
	API struct {
		Token *string `yaml:"token"`
	} `yaml:"api"`
	Demo struct {
		Rate     *int   `yaml:"rate"`
		Seed     *int64 `yaml:"seed"`
		Patients *int   `yaml:"patients"`
	} `yaml:"demo"`
}

// Duration is a time.Duration written as Go writes one ("100ms", "5m").
type Duration time.Duration

// UnmarshalYAML reads "100ms"; a bare number is refused, since its unit
// would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write 100ms, 5s, 2m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// LoadConfigFile reads a config file. Unknown keys, wrong types and a
// second document are errors naming their line.
func LoadConfigFile(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var f FileConfig
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var extra any
	if err := d.Decode(&extra); err == nil {
		return nil, fmt.Errorf("config file %s: more than one YAML document", path)
	}
	return &f, nil
}

// Apply sets c's options from the file, where the file sets them.
func (f *FileConfig) Apply(c *Config) {
	if f.Brokers != nil {
		c.Brokers = f.Brokers
	}
	if f.Pipelines != nil {
		c.Pipelines = f.Pipelines
	}
	set(&c.HTTPAddr, f.HTTP)
	set(&c.CreateTopics, f.CreateTopics)
	set(&c.Partitions, f.Partitions)
	set(&c.RulesFile, f.Rules)
	set(&c.SiteTimeZone, f.SiteTimeZone)
	set(&c.PayerTimeZone, f.PayerTimeZone)
	if f.UrgentCategories != nil {
		c.UrgentCategories = f.UrgentCategories
	}
	set(&c.InstanceID, f.InstanceID)
	setDuration(&c.CommitInterval, f.CommitInterval)
	setDuration(&c.SessionTimeout, f.SessionTimeout)
	setDuration(&c.Duration, f.Duration)
	setDuration(&c.ReconcileDeadline, f.ReconcileDeadline)
	set(&c.SourcesFile, f.Sources)
	setDuration(&c.SummaryEvery, f.SummaryEvery)
	set(&c.SASLMechanism, f.Kafka.SASLMechanism)
	set(&c.Username, f.Kafka.Username)
	set(&c.Password, f.Kafka.Password)
	set(&c.TLS, f.Kafka.TLS)
	set(&c.TLSCAFile, f.Kafka.TLSCA)
	set(&c.TLSCertFile, f.Kafka.TLSCert)
	set(&c.TLSKeyFile, f.Kafka.TLSKey)
	set(&c.SchemaRegistryCAFile, f.SchemaRegistry.CA)
	set(&c.SchemaRegistryURL, f.SchemaRegistry.URL)
	set(&c.SchemaRegistryUsername, f.SchemaRegistry.Username)
	set(&c.SchemaRegistryPassword, f.SchemaRegistry.Password)
	set(&c.APIToken, f.API.Token)
	set(&c.DemoRate, f.Demo.Rate)
	set(&c.Seed, f.Demo.Seed)
	set(&c.DemoPatients, f.Demo.Patients)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setDuration(dst *time.Duration, v *Duration) {
	if v != nil {
		*dst = time.Duration(*v)
	}
}
