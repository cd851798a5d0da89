package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// Config is everything Run needs. Zero values mean the documented defaults.
type Config struct {
	// Brokers are the seed brokers; none means embedded mode.
	Brokers []string
	// Pipelines to run; default all in the catalog.
	Pipelines []string
	// AppID namespaces every consumer group, internal topic (changelogs,
	// repartition topics) and transactional id, so that deployments share
	// a cluster: group "<AppID>-<built-in group>". Empty (the default):
	// the built-in names, which a running deployment must keep, since a
	// new group id starts over without committed offsets or changelogs.
	AppID string
	// Topics renames topics per pipeline: pipeline, then built-in topic
	// name, to the deployment's (see catalog.Settings.Topics); none: the
	// built-in names.
	Topics map[string]map[string]string
	// HTTPAddr serves /metrics, /healthz, /readyz and the query API;
	// empty: no HTTP. host:port as Go's net.Listen reads it, so ":8080"
	// is every interface; a bare port number ("8080") binds loopback only.
	HTTPAddr string
	// AdvertiseHTTP is the host:port at which the other instances reach
	// this one's HTTP server, advertised to each pipeline's group so that
	// an instance asked for a key another holds sends the query on to it
	// (Kafka Streams' application.server; see
	// pipeline.WithAdvertisedHTTP). Empty: none; the other instances
	// cannot send queries on to this one, and answer those for its
	// partitions 404, as a lone instance would.
	AdvertiseHTTP string
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
	// CarryHeaders are the input headers, besides the W3C trace context
	// (always carried), that every pipeline copies to the records derived
	// from each input (pipeline.WithCarriedHeaders).
	CarryHeaders []string
	// Duration makes Run return by itself after it; 0: until ctx ends.
	Duration time.Duration
	// InstanceID is a stable instance name; see pipeline.WithInstanceID.
	InstanceID string
	// CommitInterval overrides the transaction interval (default 100ms).
	CommitInterval time.Duration
	// SessionTimeout overrides the consumer group session timeout
	// (default pipeline.DefaultSessionTimeout, 10s).
	SessionTimeout time.Duration
	// TransactionTimeout overrides the transaction timeout (default 10s,
	// see pipeline.WithTransactionTimeout): with the session timeout, it
	// bounds how long a crashed instance's partitions wait.
	TransactionTimeout time.Duration

	// SchemaRegistryURL is the schema registry of the canonical Avro
	// schemas (datasync); embedded mode runs an in-memory one.
	SchemaRegistryURL      string
	SchemaRegistryUsername string
	SchemaRegistryPassword string
	// SchemaRegistryCAFile is a PEM file of the CA that signed an https
	// registry's certificate; empty: the system roots.
	SchemaRegistryCAFile string
	// SchemaRegistryLookupOnly turns schema auto-registration off, as
	// auto.register.schemas=false does for Confluent's serializers:
	// datasync registers nothing and uses the version under each subject
	// that equals its schema (datasync.Lookup), failing start-up naming
	// the subjects without one.
	SchemaRegistryLookupOnly bool
	// SchemaRegistryWait bounds how long datasync's start-up retries a
	// schema registry it cannot reach (default DefaultSchemaRegistryWait).
	SchemaRegistryWait time.Duration
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

	SASLMechanism string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, AWS_MSK_IAM
	Username      string
	Password      string
	// OAUTHBEARER: a bearer token, or a file holding one, read again for
	// every connection (so a token refreshed in place is used), or an
	// OAuth 2.0 token endpoint that issues one to the client id and
	// secret (client credentials grant, with an optional scope); and
	// extensions sent with it (RFC 7628 section 3.1). See app/sasl.go.
	OAuthToken        string
	OAuthTokenFile    string
	OAuthTokenURL     string
	OAuthClientID     string
	OAuthClientSecret string
	OAuthScope        string
	OAuthExtensions   map[string]string
	// AWS_MSK_IAM: the AWS credentials that sign the login; the region
	// comes from the broker's host name (else AWS_REGION).
	AWSAccessKeyID     string
	AWSSecretAccessKey string
	AWSSessionToken    string
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

	// Client settings a cluster may need, passed to every Kafka client;
	// zero: kgo's default.
	//
	// KafkaClientID names carepipe's connections in the brokers' logs,
	// metrics and quotas (kgo.ClientID; default "kgo").
	KafkaClientID string
	// KafkaRack is the rack (availability zone) carepipe runs in; with
	// brokers' replica.selector.class set, consumers fetch from a replica
	// in it (kgo.Rack; default none).
	KafkaRack string
	// KafkaDialTimeout bounds a connection's dial, TLS handshake included
	// (kgo.DialTimeout; default 10s).
	KafkaDialTimeout time.Duration
	// KafkaRequestTimeoutOverhead is how long past a request's own
	// timeout carepipe waits for its answer, 100ms to 15m
	// (kgo.RequestTimeoutOverhead; default 10s).
	KafkaRequestTimeoutOverhead time.Duration
	// KafkaConnIdleTimeout closes a connection idle this long, 100ms to
	// 15m; set it under a load balancer's or firewall's idle cut-off
	// (kgo.ConnIdleTimeout; default 30s).
	KafkaConnIdleTimeout time.Duration
	// KafkaMetadataMaxAge is how often cluster metadata is refreshed, 5s
	// to 1h (kgo.MetadataMaxAge; default 5m).
	KafkaMetadataMaxAge time.Duration

	// Demo says whether Run may start the embedded demo: auto (the
	// default, also when empty) when no brokers are given, on always
	// (brokers are then a mistake), off never (no brokers is then a
	// mistake). See CheckDemo.
	Demo string

	// Embedded mode only.
	DemoRate     int   // observations/s (default 500)
	Seed         int64 // demo workload seed (default 1)
	DemoPatients int   // default 200
	// EmbeddedListen is where the embedded cluster listens, a loopback
	// host:port (see embeddedListener); "" is any free loopback port.
	// carepipe run's --embedded-listen defaults to DefaultEmbeddedListen.
	EmbeddedListen string

	// SummaryEvery prints a one-line summary this often (default 5s);
	// negative disables it.
	SummaryEvery time.Duration
	Stdout       io.Writer
	Logger       *slog.Logger

	// origins say where options came from, by config file key: see
	// SetOrigin.
	origins map[string]string
}

// SetOrigin records where the option of a config file key came from:
// "line 12" of the file, an environment variable, a flag (see KeyError).
// A later origin replaces an earlier one, list items' included, as the
// value did.
func (c *Config) SetOrigin(key, origin string) {
	if c.origins == nil {
		c.origins = map[string]string{}
	}
	for k := range c.origins {
		if strings.HasPrefix(k, key+"[") {
			delete(c.origins, k)
		}
	}
	c.origins[key] = origin
}

// Origin is where key's option came from (see SetOrigin); empty when
// nothing recorded one.
func (c *Config) Origin(key string) string { return c.origin(key) }

// origin is where key's option came from: its own, else its list's.
func (c *Config) origin(key string) string {
	if o, ok := c.origins[key]; ok {
		return o
	}
	if i := strings.IndexByte(key, '['); i > 0 {
		return c.origins[key[:i]]
	}
	return ""
}

// keyErr is a *KeyError at key, with key's origin.
func (c *Config) keyErr(key string, err error) error {
	return &KeyError{Key: key, Origin: c.origin(key), Err: err}
}

func (c *Config) keyErrf(key, format string, args ...any) error {
	return c.keyErr(key, fmt.Errorf(format, args...))
}

func (c *Config) setDefaults() {
	if len(c.Pipelines) == 0 {
		c.Pipelines = catalog.Names()
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

// validate reports every mistake in the options that needs no file read,
// each a *KeyError.
func (c *Config) validate() error {
	errs := []error{c.CheckDemo()}
	for i, p := range c.Pipelines {
		if _, ok := catalog.Lookup(p); !ok {
			errs = append(errs, c.keyErrf(fmt.Sprintf("pipelines[%d]", i), "unknown pipeline %q (known: %s)", p, strings.Join(catalog.Names(), ", ")))
		}
	}
	errs = append(errs, c.validateNames()...)
	for i, b := range c.Brokers {
		if err := checkHostPort(b); err != nil {
			errs = append(errs, c.keyErrf(fmt.Sprintf("brokers[%d]", i), "%q: %v", b, err))
		}
	}
	if c.SchemaRegistryURL != "" {
		if err := checkURL(c.SchemaRegistryURL); err != nil {
			errs = append(errs, c.keyErr("schemaRegistry.url", err))
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := httpAddr(c.HTTPAddr); err != nil {
			errs = append(errs, c.keyErr("http", err))
		}
	}
	if c.AdvertiseHTTP != "" {
		if err := checkHostPort(c.AdvertiseHTTP); err != nil {
			errs = append(errs, c.keyErrf("advertiseHttp", "%q: %v", c.AdvertiseHTTP, err))
		} else if c.HTTPAddr == "" {
			errs = append(errs, c.keyErrf("advertiseHttp", "%s is advertised but no HTTP server runs: set http too", c.AdvertiseHTTP))
		}
	}
	errs = append(errs, c.validateSASL()...)
	errs = append(errs, c.validateTLS())
	errs = append(errs, c.validateClient()...)
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"commitInterval", c.CommitInterval}, {"sessionTimeout", c.SessionTimeout}, {"transactionTimeout", c.TransactionTimeout},
		{"reconcileDeadline", c.ReconcileDeadline}, {"duration", c.Duration},
		{"schemaRegistry.wait", c.SchemaRegistryWait},
	} {
		if d.v < 0 {
			errs = append(errs, c.keyErrf(d.key, "%v: must be positive (leave it out for the default)", d.v))
		}
	}
	if c.TransactionTimeout > 0 && c.TransactionTimeout < time.Second {
		errs = append(errs, c.keyErrf("transactionTimeout", "%v is under 1s", c.TransactionTimeout))
	}
	if c.SessionTimeout > 0 && c.SessionTimeout < time.Second {
		errs = append(errs, c.keyErrf("sessionTimeout", "%v is under 1s (brokers accept 6s and more by default)", c.SessionTimeout))
	}
	if c.Partitions < 0 {
		errs = append(errs, c.keyErrf("partitions", "%d: must be positive", c.Partitions))
	}
	if c.DemoRate < 0 {
		errs = append(errs, c.keyErrf("demo.rate", "%d: must not be negative", c.DemoRate))
	}
	if c.DemoPatients < 0 {
		errs = append(errs, c.keyErrf("demo.patients", "%d: must not be negative", c.DemoPatients))
	}
	if err := pipeline.CheckCarriedHeaders(c.CarryHeaders...); err != nil {
		errs = append(errs, c.keyErr("carryHeaders", err))
	}
	if _, err := c.siteZone(); err != nil {
		errs = append(errs, c.keyErr("siteTimeZone", err))
	}
	if pc, err := c.priorAuthConfig(); err != nil {
		errs = append(errs, c.keyErr("payerTimeZone", err))
	} else if _, err := priorauth.New(priorauth.WithConfig(pc)); err != nil {
		errs = append(errs, c.keyErr("urgentCategories", err))
	}
	return errors.Join(errs...)
}

// validateClient checks the Kafka client settings against kgo's own
// bounds, so that a mistake names its key rather than surfacing from
// kgo.NewClient deep in start-up.
func (c *Config) validateClient() []error {
	var errs []error
	for _, s := range []struct{ key, v string }{{"kafka.clientId", c.KafkaClientID}, {"kafka.rack", c.KafkaRack}} {
		if s.v == "" {
			continue
		}
		if len(s.v) > 249 || strings.IndexFunc(s.v, func(r rune) bool {
			return !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			errs = append(errs, c.keyErrf(s.key, "%q: use up to 249 letters, digits, '.', '_' and '-'", s.v))
		}
	}
	for _, d := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
	}{
		{"kafka.dialTimeout", c.KafkaDialTimeout, time.Millisecond, time.Hour},
		{"kafka.requestTimeoutOverhead", c.KafkaRequestTimeoutOverhead, 100 * time.Millisecond, 15 * time.Minute},
		{"kafka.connIdleTimeout", c.KafkaConnIdleTimeout, 100 * time.Millisecond, 15 * time.Minute},
		{"kafka.metadataMaxAge", c.KafkaMetadataMaxAge, 5 * time.Second, time.Hour},
	} {
		if d.v != 0 && (d.v < d.min || d.v > d.max) {
			errs = append(errs, c.keyErrf(d.key, "%v: must be from %v to %v (leave it out for the default)", d.v, d.min, d.max))
		}
	}
	return errs
}

// checkHostPort is nil for host:port with a host and a port number.
func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("no host (write host:port)")
	}
	return checkPort(port, 1)
}

// checkPort is nil for a port number from min to 65535.
func checkPort(port string, min int) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < min || n > 65535 {
		return fmt.Errorf("port %q is not a number from %d to 65535", port, min)
	}
	return nil
}

// checkURL is nil for an http or https URL with a host; its errors show
// the URL without its password.
func checkURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Errorf("%q has no http:// or https:// scheme", redactURL(u))
	case p.Host == "":
		return fmt.Errorf("%q has no host", redactURL(u))
	case p.Port() != "":
		if err := checkPort(p.Port(), 1); err != nil {
			return fmt.Errorf("%q: %w", redactURL(u), err)
		}
	}
	return nil
}

// Check reports every mistake Run would refuse to start with, without
// connecting to anything: the options, the TLS files (read and parsed),
// the rules file, the datasync sources file, and a query API off loopback
// without its token. Each is a *KeyError, named by its config file key.
func (c Config) Check() error {
	c.setDefaults()
	errs := []error{c.validate(), c.needsRegistry()}
	if !c.Embedded() {
		if _, err := c.kafkaTLS(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, c.checkSASLFiles())
	}
	if _, err := c.registryTLS(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.dataSyncSources(); err != nil {
		errs = append(errs, c.keyErr("sources", err))
	}
	if c.RulesFile != "" && slices.Contains(c.Pipelines, "alerts") {
		if _, err := rules.Load(c.RulesFile); err != nil {
			errs = append(errs, c.keyErr("rules", err))
		}
	}
	if c.HTTPAddr != "" {
		_, loopback, err := httpAddr(c.HTTPAddr)
		api := false
		for _, name := range c.Pipelines {
			p, _ := catalog.Lookup(name)
			api = api || p.Queries
		}
		if err == nil && api && !loopback && c.APIToken == "" {
			errs = append(errs, c.keyErrf("http", "%s is not a loopback address: the query API needs api.token (or CAREPIPE_API_TOKEN)", c.HTTPAddr))
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
		return c.keyErr("schemaRegistry.url", errors.New("pipeline datasync needs a schema registry: --schema-registry or SCHEMA_REGISTRY_URL"))
	}
	return nil
}

// Embedded reports whether Run starts its own cluster.
func (c *Config) Embedded() bool { return len(c.Brokers) == 0 }

// kafkaOpts are the client options for a real cluster: brokers, TLS, SASL
// and the client settings. It reads the TLS files, so a missing or
// malformed one fails here, before any connection.
func (c *Config) kafkaOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.KafkaClientID != "" {
		opts = append(opts, kgo.ClientID(c.KafkaClientID))
	}
	if c.KafkaRack != "" {
		opts = append(opts, kgo.Rack(c.KafkaRack))
	}
	if c.KafkaDialTimeout != 0 {
		opts = append(opts, kgo.DialTimeout(c.KafkaDialTimeout))
	}
	if c.KafkaRequestTimeoutOverhead != 0 {
		opts = append(opts, kgo.RequestTimeoutOverhead(c.KafkaRequestTimeoutOverhead))
	}
	if c.KafkaConnIdleTimeout != 0 {
		opts = append(opts, kgo.ConnIdleTimeout(c.KafkaConnIdleTimeout))
	}
	if c.KafkaMetadataMaxAge != 0 {
		opts = append(opts, kgo.MetadataMaxAge(c.KafkaMetadataMaxAge))
	}
	tc, err := c.kafkaTLS()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech, err := c.saslMechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// redactURL is u without the user and password, query values and fragment
// it may carry: what may be logged and printed of it.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "[unparsable]"
	}
	if p.User != nil {
		p.User = url.User("redacted")
	}
	// A key may ride in the query (?api_key=...) or the fragment too.
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		p.RawQuery = q.Encode()
	}
	p.Fragment, p.RawFragment = "", ""
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

// Redacted is c for logging, in the config file's keys: the secrets that
// are set show as "[redacted]".
func (c Config) Redacted() FileConfig {
	f := FileOf(c)
	redact := func(s string) *string {
		if s == "" {
			return nil
		}
		r := "[redacted]"
		return &r
	}
	f.Kafka.Password = redact(c.Password)
	f.SchemaRegistry.Password = redact(c.SchemaRegistryPassword)
	f.API.Token = redact(c.APIToken)
	f.Kafka.OAuthToken = redact(c.OAuthToken)
	f.Kafka.OAuthClientSecret = redact(c.OAuthClientSecret)
	f.Kafka.AWSSecretAccessKey = redact(c.AWSSecretAccessKey)
	f.Kafka.AWSSessionToken = redact(c.AWSSessionToken)
	return f
}
