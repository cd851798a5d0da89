package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// Pipelines carepipe knows, in start order.
var knownPipelines = []string{"alerts", "priorauth", "datasync", "orders"}

// builtPipelines are those this version can run.
var builtPipelines = []string{"alerts", "priorauth", "datasync", "orders"}

// Config is everything Run needs. Zero values mean the documented defaults.
type Config struct {
	// Brokers are the seed brokers; none means embedded mode.
	Brokers []string
	// Pipelines to run; default all that are built.
	Pipelines []string
	// HTTPAddr serves /metrics, /healthz, /readyz and the query API;
	// empty: no HTTP. A bare port binds loopback only.
	HTTPAddr string
	// APIToken, when set, is the bearer token the query API requires;
	// it must be set for a non-loopback HTTPAddr when a pipeline with a
	// query API runs.
	APIToken string
	// CreateTopics creates missing topics (always on in embedded mode).
	CreateTopics bool
	// Partitions for created topics (default 12).
	Partitions int32
	// RulesFile is a YAML alert rules file; empty: built-in rules.
	RulesFile string
	// SiteTimeZone is the IANA time zone (Europe/Berlin) that alerts
	// reads observation times sent without an offset in; empty: none, and
	// such an observation is an error record (see
	// alerts.WithSiteTimeZone).
	SiteTimeZone string
	// PayerTimeZone is the IANA time zone priorauth reads payer dates
	// without an offset in, a date-only expiration ending at that day's
	// end there; empty: UTC (see priorauth.Config.PayerTimeZone).
	PayerTimeZone string
	// UrgentCategories are the medication categories priorauth submits as
	// urgent, synonyms included; none: the built-in list
	// (priorauth.DefaultUrgentCategories).
	UrgentCategories []string
	// Duration makes Run return by itself after it; 0: until ctx ends.
	Duration time.Duration
	// InstanceID is a stable instance name; see pipeline.WithInstanceID.
	InstanceID string
	// CommitInterval overrides the transaction interval (default 100ms).
	CommitInterval time.Duration
	// SessionTimeout overrides the consumer group session timeout
	// (default pipeline.DefaultSessionTimeout, 10s).
	SessionTimeout time.Duration

	// SchemaRegistryURL is the schema registry of the canonical Avro
	// schemas (datasync); embedded mode runs an in-memory one.
	SchemaRegistryURL      string
	SchemaRegistryUsername string
	SchemaRegistryPassword string
	// SchemaRegistryCAFile is a PEM file of the CA that signed an https
	// registry's certificate; empty: the system roots.
	SchemaRegistryCAFile string
	// SourcesFile is a YAML sources file for datasync: which topics carry
	// which source system's entity and how their columns map to the
	// canonical fields (datasync.LoadSources); empty: the built-in
	// sources. A source record in the schema registry's wire format
	// (Debezium's Avro converter) is read with the schema registry above.
	SourcesFile string
	// ReconcileDeadline is how long a validated version may wait for its
	// targets' acknowledgements (default 5m; 10s in embedded mode, so the
	// demo shows overdue reconciliations).
	ReconcileDeadline time.Duration

	SASLMechanism string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username      string
	Password      string
	// TLS turns TLS on with the system roots; any of the files below turns
	// it on too.
	TLS bool
	// TLSCAFile is a PEM file of the CA that signed the brokers'
	// certificates, trusted instead of the system roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the PEM client certificate and key
	// presented to brokers that require one (mTLS): both or neither.
	TLSCertFile string
	TLSKeyFile  string

	// Embedded mode only.
	DemoRate     int   // observations/s (default 500)
	Seed         int64 // demo workload seed (default 1)
	DemoPatients int   // default 200

	// SummaryEvery prints a one-line summary this often (default 5s);
	// negative disables it.
	SummaryEvery time.Duration
	Stdout       io.Writer
	Logger       *slog.Logger
}

func (c *Config) setDefaults() {
	if len(c.Pipelines) == 0 {
		c.Pipelines = slices.Clone(builtPipelines)
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.DemoRate == 0 {
		c.DemoRate = 500
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.DemoPatients == 0 {
		c.DemoPatients = 200
	}
	if c.ReconcileDeadline == 0 && c.Embedded() {
		c.ReconcileDeadline = 10 * time.Second
	}
	if c.SummaryEvery == 0 {
		c.SummaryEvery = 5 * time.Second
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// siteZone is SiteTimeZone loaded; nil when empty.
func (c *Config) siteZone() (*time.Location, error) {
	if c.SiteTimeZone == "" {
		return nil, nil
	}
	loc, err := time.LoadLocation(c.SiteTimeZone)
	if err != nil {
		return nil, fmt.Errorf("site time zone %q is not an IANA time zone: %w", c.SiteTimeZone, err)
	}
	return loc, nil
}

// priorAuthConfig is the orchestrator's configuration: the defaults with
// the payer time zone and urgent categories set here.
func (c *Config) priorAuthConfig() (priorauth.Config, error) {
	pc := priorauth.DefaultConfig()
	if c.PayerTimeZone != "" {
		loc, err := time.LoadLocation(c.PayerTimeZone)
		if err != nil {
			return pc, fmt.Errorf("payer time zone %q is not an IANA time zone: %w", c.PayerTimeZone, err)
		}
		pc.PayerTimeZone = loc
	}
	if len(c.UrgentCategories) > 0 {
		pc.UrgentCategories = c.UrgentCategories
	}
	return pc, nil
}

func (c *Config) validate() error {
	var errs []error
	for _, p := range c.Pipelines {
		switch {
		case !slices.Contains(knownPipelines, p):
			errs = append(errs, fmt.Errorf("unknown pipeline %q (known: %s)", p, strings.Join(knownPipelines, ", ")))
		case !slices.Contains(builtPipelines, p):
			errs = append(errs, fmt.Errorf("pipeline %q is not built in this version (built: %s)", p, strings.Join(builtPipelines, ", ")))
		}
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("unknown SASL mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", c.SASLMechanism))
	}
	if c.SASLMechanism != "" && (c.Username == "" || c.Password == "") {
		errs = append(errs, errors.New("SASL needs KAFKA_USERNAME and KAFKA_PASSWORD"))
	}
	errs = append(errs, c.validateTLS())
	if c.ReconcileDeadline < 0 {
		errs = append(errs, errors.New("reconcile deadline must not be negative"))
	}
	if c.Duration < 0 {
		errs = append(errs, errors.New("duration must not be negative"))
	}
	if c.DemoRate < 0 {
		errs = append(errs, errors.New("demo rate must not be negative"))
	}
	if c.SessionTimeout != 0 && c.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("session timeout %v is under 1s (brokers accept 6s and more by default)", c.SessionTimeout))
	}
	if _, err := c.siteZone(); err != nil {
		errs = append(errs, err)
	}
	if pc, err := c.priorAuthConfig(); err != nil {
		errs = append(errs, err)
	} else if _, err := priorauth.New(priorauth.WithConfig(pc)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Check reports what Run would refuse to start with, without connecting
// to anything: the options, the TLS files (read and parsed), the rules
// file, the datasync sources file, and a query API off loopback without
// its token.
func (c Config) Check() error {
	c.setDefaults()
	errs := []error{c.validate(), c.needsRegistry()}
	if !c.Embedded() {
		if _, err := c.kafkaOpts(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := c.dataSyncSources(); err != nil {
		errs = append(errs, err)
	}
	if c.RulesFile != "" && slices.Contains(c.Pipelines, "alerts") {
		if _, err := alerts.LoadRules(c.RulesFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.HTTPAddr != "" {
		_, loopback, err := httpAddr(c.HTTPAddr)
		api := slices.Contains(c.Pipelines, "priorauth") || slices.Contains(c.Pipelines, "datasync")
		switch {
		case err != nil:
			errs = append(errs, err)
		case api && !loopback && c.APIToken == "":
			errs = append(errs, fmt.Errorf("http %s is not a loopback address: the query API needs CAREPIPE_API_TOKEN", c.HTTPAddr))
		}
	}
	return errors.Join(errs...)
}

// dataSyncSources are the sources file loaded when datasync runs with one,
// else nil (the built-in sources).
func (c *Config) dataSyncSources() (*datasync.Sources, error) {
	if c.SourcesFile == "" || !slices.Contains(c.Pipelines, "datasync") {
		return nil, nil
	}
	return datasync.LoadSources(c.SourcesFile)
}

// needsRegistry is the error of running datasync against a real cluster
// with no schema registry.
func (c *Config) needsRegistry() error {
	if slices.Contains(c.Pipelines, "datasync") && !c.Embedded() && c.SchemaRegistryURL == "" {
		return errors.New("pipeline datasync needs a schema registry: --schema-registry or SCHEMA_REGISTRY_URL")
	}
	return nil
}

// Embedded reports whether Run starts its own cluster.
func (c *Config) Embedded() bool { return len(c.Brokers) == 0 }

// kafkaOpts are the client options for a real cluster: brokers, TLS, SASL.
// It reads the TLS files, so a missing or malformed one fails here, before
// any connection.
func (c *Config) kafkaOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	tc, err := c.kafkaTLS()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

// redactURL is u without the user and password it may carry.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "[unparsable]"
	}
	if p.User != nil {
		p.User = url.User("redacted")
	}
	return p.String()
}

// schemaRegistry is a client of the configured schema registry.
func (c *Config) schemaRegistry() (*sr.Client, error) {
	opts := []sr.ClientOpt{sr.URLs(c.SchemaRegistryURL)}
	tc, err := c.registryTLS()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		// On sr's own http.Client, which keeps its request timeout.
		opts = append(opts, sr.DialTLSConfig(tc))
	}
	if c.SchemaRegistryUsername != "" {
		opts = append(opts, sr.BasicAuth(c.SchemaRegistryUsername, c.SchemaRegistryPassword))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return cl, nil
}

// Redacted is c for logging: secrets replaced.
func (c Config) Redacted() map[string]any {
	redact := func(s string) string {
		if s != "" {
			return "[redacted]"
		}
		return ""
	}
	pw := redact(c.Password)
	return map[string]any{
		"brokers": c.Brokers, "pipelines": c.Pipelines, "http": c.HTTPAddr, "api_token": redact(c.APIToken),
		"create_topics": c.CreateTopics, "rules": c.RulesFile, "site_time_zone": c.SiteTimeZone, "duration": c.Duration.String(),
		"payer_time_zone": c.PayerTimeZone, "urgent_categories": c.UrgentCategories,
		"instance_id": c.InstanceID, "session_timeout": c.SessionTimeout.String(), "sasl_mechanism": c.SASLMechanism, "username": c.Username,
		"password": pw, "tls": c.TLS, "tls_ca": c.TLSCAFile, "tls_cert": c.TLSCertFile, "tls_key": c.TLSKeyFile,
		"schema_registry": redactURL(c.SchemaRegistryURL), "schema_registry_username": c.SchemaRegistryUsername,
		"schema_registry_password": redact(c.SchemaRegistryPassword), "schema_registry_ca": c.SchemaRegistryCAFile,
		"reconcile_deadline": c.ReconcileDeadline.String(), "sources": c.SourcesFile,
	}
}
