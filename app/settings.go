package app

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// connSetting is one option of the cluster connection, which every command
// that talks to Kafka or the schema registry takes the same way: its
// config file key, its environment variable and its flag (either may be
// empty), and how a value is set. A flag wins over the environment, the
// environment over the file.
type connSetting struct {
	key, env, flag, usage string
	isBool                bool
	set                   func(c *Config, v string) error
}

// connSettings are the cluster connection's settings. There is no flag
// for a password: a command line is visible to every process on the
// host, so a password comes from the environment, the config file, or a
// file named by --kafka-password-file.
func connSettings() []connSetting {
	str := func(dst func(*Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *dst(c) = v; return nil }
	}
	dur := func(dst func(*Config) *time.Duration) func(*Config, string) error {
		return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", v)
			}
			*dst(c) = d
			return nil
		}
	}
	secretFile := func(dst func(*Config) *string) func(*Config, string) error {
		return func(c *Config, path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			// A file written by echo or a Kubernetes Secret may end in a newline.
			*dst(c) = strings.TrimRight(string(b), "\r\n")
			return nil
		}
	}
	return []connSetting{
		{key: "brokers", env: "KAFKA_BROKERS", flag: "brokers", usage: "Kafka seed brokers, host:port,...",
			set: func(c *Config, v string) error { c.Brokers = splitList(v); return nil }},
		{key: "kafka.saslMechanism", env: "KAFKA_SASL_MECHANISM", flag: "kafka-sasl-mechanism", usage: "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM (default PLAIN when a username is set)",
			set: str(func(c *Config) *string { return &c.SASLMechanism })},
		{key: "kafka.username", env: "KAFKA_USERNAME", flag: "kafka-username", usage: "SASL username",
			set: str(func(c *Config) *string { return &c.Username })},
		{key: "kafka.password", env: "KAFKA_PASSWORD", usage: "SASL password",
			set: str(func(c *Config) *string { return &c.Password })},
		{key: "kafka.password", flag: "kafka-password-file", usage: "file holding the SASL password (a password is never a flag: command lines are visible to every process)",
			set: secretFile(func(c *Config) *string { return &c.Password })},
		{key: "kafka.oauthToken", env: "KAFKA_SASL_OAUTH_TOKEN", usage: "SASL OAUTHBEARER bearer token",
			set: str(func(c *Config) *string { return &c.OAuthToken })},
		{key: "kafka.oauthTokenFile", env: "KAFKA_SASL_OAUTH_TOKEN_FILE", flag: "kafka-sasl-oauth-token-file", usage: "file holding the SASL OAUTHBEARER bearer token, read again for every connection (a mounted token that is refreshed is picked up)",
			set: str(func(c *Config) *string { return &c.OAuthTokenFile })},
		{key: "kafka.oauthTokenURL", env: "KAFKA_SASL_OAUTH_TOKEN_URL", flag: "kafka-sasl-oauth-token-url", usage: "SASL OAUTHBEARER: OAuth 2.0 token endpoint (https) that issues the token to the client id and secret (client credentials grant); the token is kept until shortly before it expires",
			set: str(func(c *Config) *string { return &c.OAuthTokenURL })},
		{key: "kafka.oauthClientId", env: "KAFKA_SASL_OAUTH_CLIENT_ID", flag: "kafka-sasl-oauth-client-id", usage: "SASL OAUTHBEARER: client id at the token endpoint",
			set: str(func(c *Config) *string { return &c.OAuthClientID })},
		{key: "kafka.oauthClientSecret", env: "KAFKA_SASL_OAUTH_CLIENT_SECRET", usage: "SASL OAUTHBEARER: client secret at the token endpoint",
			set: str(func(c *Config) *string { return &c.OAuthClientSecret })},
		{key: "kafka.oauthClientSecret", flag: "kafka-sasl-oauth-client-secret-file", usage: "file holding the SASL OAUTHBEARER client secret",
			set: secretFile(func(c *Config) *string { return &c.OAuthClientSecret })},
		{key: "kafka.oauthScope", env: "KAFKA_SASL_OAUTH_SCOPE", flag: "kafka-sasl-oauth-scope", usage: "SASL OAUTHBEARER: scope asked of the token endpoint (default none)",
			set: str(func(c *Config) *string { return &c.OAuthScope })},
		{key: "kafka.oauthExtensions", env: "KAFKA_SASL_OAUTH_EXTENSIONS", flag: "kafka-sasl-oauth-extensions", usage: "SASL OAUTHBEARER extensions, name=value,... (as a managed Kafka asks, such as logicalCluster=lkc-1,identityPoolId=pool-1)",
			set: func(c *Config, v string) error {
				ext, err := ParseOAuthExtensions(v)
				c.OAuthExtensions = ext
				return err
			}},
		{key: "kafka.awsAccessKeyId", env: "AWS_ACCESS_KEY_ID", flag: "kafka-aws-access-key-id", usage: "SASL AWS_MSK_IAM: AWS access key id",
			set: str(func(c *Config) *string { return &c.AWSAccessKeyID })},
		{key: "kafka.awsSecretAccessKey", env: "AWS_SECRET_ACCESS_KEY", usage: "SASL AWS_MSK_IAM: AWS secret access key",
			set: str(func(c *Config) *string { return &c.AWSSecretAccessKey })},
		{key: "kafka.awsSecretAccessKey", flag: "kafka-aws-secret-access-key-file", usage: "file holding the SASL AWS_MSK_IAM secret access key (a secret is never a flag)",
			set: secretFile(func(c *Config) *string { return &c.AWSSecretAccessKey })},
		{key: "kafka.awsSessionToken", env: "AWS_SESSION_TOKEN", usage: "SASL AWS_MSK_IAM: AWS session token of temporary credentials",
			set: str(func(c *Config) *string { return &c.AWSSessionToken })},
		{key: "kafka.awsSessionToken", flag: "kafka-aws-session-token-file", usage: "file holding the SASL AWS_MSK_IAM session token",
			set: secretFile(func(c *Config) *string { return &c.AWSSessionToken })},
		{key: "kafka.tls", env: "KAFKA_TLS", flag: "kafka-tls", isBool: true, usage: "TLS to the brokers, checked against the system roots",
			set: func(c *Config, v string) error {
				if v == "" {
					// KAFKA_TLS= (an empty value in a manifest) means off.
					c.TLS = false
					return nil
				}
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q: want true or false", v)
				}
				c.TLS = b
				return nil
			}},
		{key: "kafka.tlsCA", env: "KAFKA_TLS_CA", flag: "kafka-tls-ca", usage: "PEM file of the CA that signed the brokers' certificates (turns TLS on; replaces the system roots)",
			set: str(func(c *Config) *string { return &c.TLSCAFile })},
		{key: "kafka.tlsCert", env: "KAFKA_TLS_CERT", flag: "kafka-tls-cert", usage: "PEM client certificate for brokers that require mTLS (with --kafka-tls-key)",
			set: str(func(c *Config) *string { return &c.TLSCertFile })},
		{key: "kafka.tlsKey", env: "KAFKA_TLS_KEY", flag: "kafka-tls-key", usage: "PEM key of the client certificate",
			set: str(func(c *Config) *string { return &c.TLSKeyFile })},
		{key: "kafka.clientId", env: "KAFKA_CLIENT_ID", flag: "kafka-client-id", usage: "client id in the brokers' logs, metrics and quotas (default kgo)",
			set: str(func(c *Config) *string { return &c.KafkaClientID })},
		{key: "kafka.rack", env: "KAFKA_RACK", flag: "kafka-rack", usage: "rack (zone) this instance runs in: consumers fetch from a replica there when the brokers allow it",
			set: str(func(c *Config) *string { return &c.KafkaRack })},
		{key: "kafka.dialTimeout", flag: "kafka-dial-timeout", usage: "bound on a connection's dial and TLS handshake (default 10s)",
			set: dur(func(c *Config) *time.Duration { return &c.KafkaDialTimeout })},
		{key: "kafka.requestTimeoutOverhead", flag: "kafka-request-timeout-overhead", usage: "wait this long past a request's own timeout for its answer, 100ms to 15m (default 10s)",
			set: dur(func(c *Config) *time.Duration { return &c.KafkaRequestTimeoutOverhead })},
		{key: "kafka.connIdleTimeout", flag: "kafka-conn-idle-timeout", usage: "close connections idle this long, 100ms to 15m; keep it under a load balancer's idle cut-off (default 30s)",
			set: dur(func(c *Config) *time.Duration { return &c.KafkaConnIdleTimeout })},
		{key: "kafka.metadataMaxAge", flag: "kafka-metadata-max-age", usage: "refresh cluster metadata this often, 5s to 1h (default 5m)",
			set: dur(func(c *Config) *time.Duration { return &c.KafkaMetadataMaxAge })},
		{key: "appId", env: "CAREPIPE_APP_ID", flag: "app-id", usage: "application id: prefixes every consumer group, changelog, repartition topic and transactional id (<app-id>-<group>), so that deployments share a cluster; default none: the built-in names, which a running deployment must keep (a new group starts without its offsets and state)",
			set: str(func(c *Config) *string { return &c.AppID })},
		{key: "schemaRegistry.url", env: "SCHEMA_REGISTRY_URL", flag: "schema-registry", usage: "schema registry URL (http:// or https://) for datasync's Avro",
			set: str(func(c *Config) *string { return &c.SchemaRegistryURL })},
		{key: "schemaRegistry.username", env: "SCHEMA_REGISTRY_USERNAME", flag: "schema-registry-username", usage: "schema registry basic auth user",
			set: str(func(c *Config) *string { return &c.SchemaRegistryUsername })},
		{key: "schemaRegistry.password", env: "SCHEMA_REGISTRY_PASSWORD", usage: "schema registry basic auth password",
			set: str(func(c *Config) *string { return &c.SchemaRegistryPassword })},
		{key: "schemaRegistry.password", flag: "schema-registry-password-file", usage: "file holding the schema registry password",
			set: secretFile(func(c *Config) *string { return &c.SchemaRegistryPassword })},
		{key: "schemaRegistry.ca", env: "SCHEMA_REGISTRY_CA", flag: "schema-registry-ca", usage: "PEM CA file for an https:// schema registry (default: the system roots)",
			set: str(func(c *Config) *string { return &c.SchemaRegistryCAFile })},
		{key: "schemaRegistry.autoRegister", env: "SCHEMA_REGISTRY_AUTO_REGISTER", flag: "schema-auto-register", isBool: true,
			usage: "register datasync's schemas at start-up (default true); false, as auto.register.schemas=false: use the version registered under each subject that equals carepipe's schema, and fail naming the subjects without one",
			set: func(c *Config, v string) error {
				if v == "" {
					c.SchemaRegistryLookupOnly = false
					return nil
				}
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("%q: want true or false", v)
				}
				c.SchemaRegistryLookupOnly = !b
				return nil
			}},
		{key: "schemaRegistry.wait", env: "SCHEMA_REGISTRY_WAIT", flag: "schema-registry-wait", usage: "how long start-up retries a schema registry it cannot reach before it gives up (default 2m)",
			set: dur(func(c *Config) *time.Duration { return &c.SchemaRegistryWait })},
	}
}

// textFlag is a flag kept as text, parsed by its setting after the
// environment, so that a mistake is reported with the others.
type textFlag struct {
	v      string
	isBool bool
}

func (f *textFlag) String() string     { return f.v }
func (f *textFlag) Set(s string) error { f.v = s; return nil }
func (f *textFlag) IsBoolFlag() bool   { return f.isBool }

// connFlags are the connection settings' flags on one flag set.
type connFlags struct {
	fs    *flag.FlagSet
	flags map[string]*textFlag
}

// addConnFlags defines the connection settings' flags on fs; what extra
// says is added to the brokers flag's usage.
func addConnFlags(fs *flag.FlagSet, brokersUsage string) *connFlags {
	cf := &connFlags{fs: fs, flags: map[string]*textFlag{}}
	for _, s := range connSettings() {
		if s.flag == "" {
			continue
		}
		f := &textFlag{isBool: s.isBool}
		usage := s.usage
		if s.flag == "brokers" {
			usage += brokersUsage
		}
		if s.env != "" {
			usage += " (env " + s.env + ")"
		}
		fs.Var(f, s.flag, usage)
		cf.flags[s.flag] = f
	}
	return cf
}

// apply sets c's connection from the environment, then the flags given,
// recording each option's origin; it returns every mistake, each a
// *KeyError. A username with no mechanism means PLAIN.
func (cf *connFlags) apply(c *Config, env LookupEnv) []error {
	var errs []error
	for _, s := range connSettings() {
		if s.env == "" {
			continue
		}
		if v, ok := env(s.env); ok {
			c.SetOrigin(s.key, s.env)
			if err := s.set(c, v); err != nil {
				errs = append(errs, &KeyError{Key: s.key, Origin: s.env, Err: err})
			}
		}
	}
	given := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range connSettings() {
		if s.flag == "" || !given[s.flag] {
			continue
		}
		c.SetOrigin(s.key, "--"+s.flag)
		if err := s.set(c, cf.flags[s.flag].v); err != nil {
			errs = append(errs, &KeyError{Key: s.key, Origin: "--" + s.flag, Err: err})
		}
	}
	if c.SASLMechanism == "" && c.Username != "" {
		c.SASLMechanism = "PLAIN"
	}
	return errs
}
