package app

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileConfig is carepipe's config file (YAML): every option of `carepipe
// run`. A key left out leaves the option to the environment, the flags or
// the default; flags win over the environment, the environment over the
// file. Unknown keys are errors. Secrets may be written here, but the
// environment (a Kubernetes Secret, say) is the better place for them.
//
// The file's keys are the one vocabulary of `carepipe config check`: its
// errors name them (kafka.tlsCA, brokers[1]), and it prints the effective
// configuration in them, so that its output can be pasted back.
//
//	brokers: [kafka-1:9092, kafka-2:9092]
//	pipelines: [alerts, priorauth, datasync]
//	appId: staging
//	topics:
//	  alerts: {fhir.Observation: staging.fhir.Observation, clinical.alerts: staging.clinical.alerts}
//	http: 0.0.0.0:8080
//	createTopics: false
//	partitions: 12
//	rules: /etc/carepipe/rules.yaml
//	siteTimeZone: Europe/Berlin
//	payerTimeZone: America/New_York
//	urgentCategories: [antibiotic, antibacterial, anticoagulant, blood thinner, insulin]
//	carryHeaders: [baggage]
//	instanceId: carepipe-0
//	commitInterval: 100ms
//	sessionTimeout: 10s
//	transactionTimeout: 10s
//	reconcileDeadline: 5m
//	sources: /etc/carepipe/sources.yaml
//	summaryEvery: 5s
//	logLevel: info
//	kafka: {saslMechanism: SCRAM-SHA-512, username: carepipe, tls: true, tlsCA: /etc/kafka/ca.pem,
//	        clientId: carepipe, rack: eu-central-1a, dialTimeout: 10s}
//	schemaRegistry: {url: "https://registry:8081", username: carepipe}
//	demo: {mode: auto, rate: 500, seed: 1, patients: 200}
type FileConfig struct {
	Brokers            []string     `yaml:"brokers,omitempty" json:"brokers,omitempty"`
	Pipelines          []string     `yaml:"pipelines,omitempty" json:"pipelines,omitempty"`
	AppID              *string      `yaml:"appId,omitempty" json:"appId,omitempty"`
	HTTP               *string      `yaml:"http,omitempty" json:"http,omitempty"`
	AdvertiseHTTP      *string      `yaml:"advertiseHttp,omitempty" json:"advertiseHttp,omitempty"`
	CreateTopics       *bool        `yaml:"createTopics,omitempty" json:"createTopics,omitempty"`
	Partitions         *int32       `yaml:"partitions,omitempty" json:"partitions,omitempty"`
	Rules              *string      `yaml:"rules,omitempty" json:"rules,omitempty"`
	SiteTimeZone       *string      `yaml:"siteTimeZone,omitempty" json:"siteTimeZone,omitempty"`
	PayerTimeZone      *string      `yaml:"payerTimeZone,omitempty" json:"payerTimeZone,omitempty"`
	UrgentCategories   []string     `yaml:"urgentCategories,omitempty" json:"urgentCategories,omitempty"`
	CarryHeaders       []string     `yaml:"carryHeaders,omitempty" json:"carryHeaders,omitempty"`
	InstanceID         *string      `yaml:"instanceId,omitempty" json:"instanceId,omitempty"`
	CommitInterval     *Duration    `yaml:"commitInterval,omitempty" json:"commitInterval,omitempty"`
	SessionTimeout     *Duration    `yaml:"sessionTimeout,omitempty" json:"sessionTimeout,omitempty"`
	TransactionTimeout *Duration    `yaml:"transactionTimeout,omitempty" json:"transactionTimeout,omitempty"`
	Duration           *Duration    `yaml:"duration,omitempty" json:"duration,omitempty"`
	ReconcileDeadline  *Duration    `yaml:"reconcileDeadline,omitempty" json:"reconcileDeadline,omitempty"`
	Sources            *string      `yaml:"sources,omitempty" json:"sources,omitempty"`
	SummaryEvery       *Duration    `yaml:"summaryEvery,omitempty" json:"summaryEvery,omitempty"`
	LogLevel           *string      `yaml:"logLevel,omitempty" json:"logLevel,omitempty"`
	Kafka              FileKafka    `yaml:"kafka,omitempty" json:"kafka,omitempty"`
	SchemaRegistry     FileRegistry `yaml:"schemaRegistry,omitempty" json:"schemaRegistry,omitempty"`
	API                FileAPI      `yaml:"api,omitempty" json:"api,omitempty"`
	Demo               FileDemo     `yaml:"demo,omitempty" json:"demo,omitempty"`

	// Topics renames topics: pipeline, then built-in name, to the
	// deployment's name (see Config.Topics).
	Topics map[string]map[string]string `yaml:"topics,omitempty" json:"topics,omitempty"`

	// lines are the file's line of each key it sets, list items included
	// (brokers[1]): config check's errors point at them.
	lines map[string]int
}

// FileKafka is the file's kafka section: security, and the client
// settings a cluster may need (see Config.KafkaClientID and below).
type FileKafka struct {
	SASLMechanism          *string   `yaml:"saslMechanism,omitempty" json:"saslMechanism,omitempty"`
	Username               *string   `yaml:"username,omitempty" json:"username,omitempty"`
	Password               *string   `yaml:"password,omitempty" json:"password,omitempty"`
	TLS                    *bool     `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSCA                  *string   `yaml:"tlsCA,omitempty" json:"tlsCA,omitempty"`
	TLSCert                *string   `yaml:"tlsCert,omitempty" json:"tlsCert,omitempty"`
	TLSKey                 *string   `yaml:"tlsKey,omitempty" json:"tlsKey,omitempty"`
	ClientID               *string   `yaml:"clientId,omitempty" json:"clientId,omitempty"`
	Rack                   *string   `yaml:"rack,omitempty" json:"rack,omitempty"`
	DialTimeout            *Duration `yaml:"dialTimeout,omitempty" json:"dialTimeout,omitempty"`
	RequestTimeoutOverhead *Duration `yaml:"requestTimeoutOverhead,omitempty" json:"requestTimeoutOverhead,omitempty"`
	ConnIdleTimeout        *Duration `yaml:"connIdleTimeout,omitempty" json:"connIdleTimeout,omitempty"`
	MetadataMaxAge         *Duration `yaml:"metadataMaxAge,omitempty" json:"metadataMaxAge,omitempty"`

	// SASL OAUTHBEARER and AWS_MSK_IAM (app/sasl.go).
	OAuthToken         *string           `yaml:"oauthToken,omitempty" json:"oauthToken,omitempty"`
	OAuthTokenFile     *string           `yaml:"oauthTokenFile,omitempty" json:"oauthTokenFile,omitempty"`
	OAuthTokenURL      *string           `yaml:"oauthTokenURL,omitempty" json:"oauthTokenURL,omitempty"`
	OAuthClientID      *string           `yaml:"oauthClientId,omitempty" json:"oauthClientId,omitempty"`
	OAuthClientSecret  *string           `yaml:"oauthClientSecret,omitempty" json:"oauthClientSecret,omitempty"`
	OAuthScope         *string           `yaml:"oauthScope,omitempty" json:"oauthScope,omitempty"`
	OAuthExtensions    map[string]string `yaml:"oauthExtensions,omitempty" json:"oauthExtensions,omitempty"`
	AWSAccessKeyID     *string           `yaml:"awsAccessKeyId,omitempty" json:"awsAccessKeyId,omitempty"`
	AWSSecretAccessKey *string           `yaml:"awsSecretAccessKey,omitempty" json:"awsSecretAccessKey,omitempty"`
	AWSSessionToken    *string           `yaml:"awsSessionToken,omitempty" json:"awsSessionToken,omitempty"`
}

// FileRegistry is the file's schemaRegistry section.
type FileRegistry struct {
	URL      *string `yaml:"url,omitempty" json:"url,omitempty"`
	Username *string `yaml:"username,omitempty" json:"username,omitempty"`
	Password *string `yaml:"password,omitempty" json:"password,omitempty"`
	CA       *string `yaml:"ca,omitempty" json:"ca,omitempty"`
	// AutoRegister false: auto.register.schemas=false (Config.SchemaRegistryLookupOnly).
	AutoRegister *bool     `yaml:"autoRegister,omitempty" json:"autoRegister,omitempty"`
	Wait         *Duration `yaml:"wait,omitempty" json:"wait,omitempty"`
}

// FileAPI is the file's api section.
type FileAPI struct {
	Token *string `yaml:"token,omitempty" json:"token,omitempty"`
}

// FileDemo is the file's demo section (embedded mode only).
type FileDemo struct {
	Rate     *int   `yaml:"rate,omitempty" json:"rate,omitempty"`
	Seed     *int64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	Patients *int   `yaml:"patients,omitempty" json:"patients,omitempty"`

	// Mode is auto, on or off (Config.Demo; not embedded mode only).
	Mode *string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// secretKeys are the file keys whose values are never printed, quoted in
// an error or logged.
var secretKeys = []string{"kafka.password", "schemaRegistry.password", "api.token", "kafka.oauthToken", "kafka.oauthClientSecret", "kafka.awsSecretAccessKey", "kafka.awsSessionToken"}

// Duration is a time.Duration written as Go writes one ("100ms", "5m").
type Duration time.Duration

// UnmarshalYAML reads "100ms"; a bare number is refused, since its unit
// would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return errors.New("not a duration (write 100ms, 5s, 2m)")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (write 100ms, 5s, 2m)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as it is read.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes d as the file has it, for the start-up log.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// KeyError is a mistake in one option, named by its config file key
// (kafka.tlsCA, brokers[1]) wherever the value came from; Origin says
// where that was: "line 12" of the config file, an environment variable
// (KAFKA_TLS_CA) or a flag (--kafka-tls-ca); empty when unknown, or when
// the option is unset and its absence is the mistake.
type KeyError struct {
	Key    string
	Origin string
	Err    error
}

func (e *KeyError) Error() string {
	switch {
	case strings.HasPrefix(e.Origin, "line "):
		return fmt.Sprintf("%s: %s: %v", e.Origin, e.Key, e.Err)
	case e.Origin != "":
		return fmt.Sprintf("%s (%s): %v", e.Key, e.Origin, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// LoadConfigFile reads a config file and reports every mistake in it at
// once: unknown keys, a key given twice, values of the wrong kind, a
// second document; each as a *KeyError with its line, joined. The file
// comes back even then, with what could be read, so that config check can
// go on to check the rest; run stops.
func LoadConfigFile(path string) (*FileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	f := &FileConfig{lines: map[string]int{}}
	d := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := d.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		// Not YAML at all: the parser's own message has the line.
		return f, err
	}
	var errs []error
	var extra yaml.Node
	if err := d.Decode(&extra); err == nil {
		errs = append(errs, &KeyError{Key: "---", Origin: fmt.Sprintf("line %d", extra.Line), Err: errors.New("more than one YAML document")})
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
	case root.Kind != yaml.MappingNode:
		errs = append(errs, &KeyError{Key: "(top)", Origin: fmt.Sprintf("line %d", root.Line), Err: errors.New("the file must be a mapping of keys (brokers: [...], http: ...)")})
	default:
		errs = append(errs, f.decode(root, "", reflect.ValueOf(f).Elem())...)
	}
	return f, errors.Join(errs...)
}

// Mistakes are errs and the errors they join, as one flat list: the
// config file's first, in the order of their lines, then the others in
// the order found.
func Mistakes(errs ...error) []error {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if err != nil {
			flat = append(flat, err)
		}
	}
	for _, err := range errs {
		walk(err)
	}
	line := func(err error) int {
		var ke *KeyError
		if errors.As(err, &ke) && strings.HasPrefix(ke.Origin, "line ") {
			n, _ := strconv.Atoi(strings.TrimPrefix(ke.Origin, "line "))
			return n
		}
		return math.MaxInt
	}
	slices.SortStableFunc(flat, func(a, b error) int { return cmp.Compare(line(a), line(b)) })
	return flat
}

// decode sets the fields of v, a struct of yaml-tagged fields, from the
// mapping n, and returns every mistake, going on past each.
func (f *FileConfig) decode(n *yaml.Node, prefix string, v reflect.Value) []error {
	var errs []error
	fields := map[string]reflect.Value{}
	var names []string
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" {
			fields[name] = v.Field(i)
			names = append(names, name)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		line := fmt.Sprintf("line %d", k.Line)
		fv, ok := fields[k.Value]
		if !ok {
			errs = append(errs, &KeyError{Key: key, Origin: line, Err: unknownKey(k.Value, names)})
			continue
		}
		if first, seen := f.lines[key]; seen {
			errs = append(errs, &KeyError{Key: key, Origin: line, Err: fmt.Errorf("given again (first on line %d)", first)})
			continue
		}
		f.lines[key] = k.Line
		if fv.Kind() == reflect.Struct {
			switch {
			case val.Kind == yaml.MappingNode:
				errs = append(errs, f.decode(val, key+".", fv)...)
			case val.Tag != "!!null":
				errs = append(errs, &KeyError{Key: key, Origin: line, Err: fmt.Errorf("want a mapping of keys (%s: {%s: ...})", k.Value, names0(fv))})
			}
			continue
		}
		if val.Kind == yaml.SequenceNode {
			for j, item := range val.Content {
				f.lines[fmt.Sprintf("%s[%d]", key, j)] = item.Line
			}
		}
		if fv.Kind() == reflect.Map && val.Kind == yaml.MappingNode {
			// topics: each pipeline's, and each renamed topic's, line.
			for j := 0; j+1 < len(val.Content); j += 2 {
				sub := key + "." + val.Content[j].Value
				f.lines[sub] = val.Content[j].Line
				if m := val.Content[j+1]; m.Kind == yaml.MappingNode {
					for k := 0; k+1 < len(m.Content); k += 2 {
						f.lines[sub+"."+m.Content[k].Value] = m.Content[k].Line
					}
				}
			}
		}
		if err := decodeValue(val, fv); err != nil {
			if !slices.Contains(secretKeys, key) && val.Kind == yaml.ScalarNode {
				err = fmt.Errorf("%q: %w", val.Value, err)
			}
			errs = append(errs, &KeyError{Key: key, Origin: fmt.Sprintf("line %d", val.Line), Err: err})
		}
	}
	return errs
}

// decodeValue decodes n into fv, saying in the file's terms what kind of
// value was wanted (yaml's own errors name Go types).
func decodeValue(n *yaml.Node, fv reflect.Value) error {
	p := reflect.New(fv.Type())
	if n.Decode(p.Interface()) != nil {
		return errors.New(wantOf(fv.Type()))
	}
	fv.Set(p.Elem())
	return nil
}

// wantOf says what a value of type t is written as.
func wantOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf((*Duration)(nil)):
		return "not a duration (write 100ms, 5s, 2m)"
	case t.Kind() == reflect.Slice:
		return "want a list of strings ([a, b])"
	case t.Kind() == reflect.Map:
		if t.Elem().Kind() == reflect.Map {
			return "want pipelines, each a mapping of built-in topic names to new ones ({alerts: {fhir.Observation: staging.fhir.Observation}})"
		}
		return "want a mapping of names to text ({name: value})"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "want true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "want a whole number"
	}
	return "want a single value, not a list or mapping"
}

// unknownKey is the error of key, with the known key it most likely meant
// (commit-interval, commit_interval and CommitInterval mean
// commitInterval), else the known keys.
func unknownKey(key string, known []string) error {
	fold := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s)) }
	for _, k := range known {
		if fold(k) == fold(key) {
			return fmt.Errorf("unknown key; did you mean %s?", k)
		}
	}
	return fmt.Errorf("unknown key (known here: %s)", strings.Join(known, ", "))
}

// names0 is the first key of a section, for an example.
func names0(v reflect.Value) string {
	name, _, _ := strings.Cut(v.Type().Field(0).Tag.Get("yaml"), ",")
	return name
}

// Apply sets c's options from the file, where the file sets them, and
// records each one's line as its origin.
func (f *FileConfig) Apply(c *Config) {
	if f.Brokers != nil {
		c.Brokers = f.Brokers
	}
	if f.Pipelines != nil {
		c.Pipelines = f.Pipelines
	}
	set(&c.AppID, f.AppID)
	if f.Topics != nil {
		c.Topics = f.Topics
	}
	set(&c.HTTPAddr, f.HTTP)
	set(&c.AdvertiseHTTP, f.AdvertiseHTTP)
	set(&c.CreateTopics, f.CreateTopics)
	set(&c.Partitions, f.Partitions)
	set(&c.RulesFile, f.Rules)
	set(&c.SiteTimeZone, f.SiteTimeZone)
	set(&c.PayerTimeZone, f.PayerTimeZone)
	if f.UrgentCategories != nil {
		c.UrgentCategories = f.UrgentCategories
	}
	if f.CarryHeaders != nil {
		c.CarryHeaders = f.CarryHeaders
	}
	set(&c.InstanceID, f.InstanceID)
	setDuration(&c.CommitInterval, f.CommitInterval)
	setDuration(&c.SessionTimeout, f.SessionTimeout)
	setDuration(&c.TransactionTimeout, f.TransactionTimeout)
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
	set(&c.KafkaClientID, f.Kafka.ClientID)
	set(&c.KafkaRack, f.Kafka.Rack)
	setDuration(&c.KafkaDialTimeout, f.Kafka.DialTimeout)
	setDuration(&c.KafkaRequestTimeoutOverhead, f.Kafka.RequestTimeoutOverhead)
	setDuration(&c.KafkaConnIdleTimeout, f.Kafka.ConnIdleTimeout)
	setDuration(&c.KafkaMetadataMaxAge, f.Kafka.MetadataMaxAge)
	set(&c.OAuthToken, f.Kafka.OAuthToken)
	set(&c.OAuthTokenFile, f.Kafka.OAuthTokenFile)
	set(&c.OAuthTokenURL, f.Kafka.OAuthTokenURL)
	set(&c.OAuthClientID, f.Kafka.OAuthClientID)
	set(&c.OAuthClientSecret, f.Kafka.OAuthClientSecret)
	set(&c.OAuthScope, f.Kafka.OAuthScope)
	if f.Kafka.OAuthExtensions != nil {
		c.OAuthExtensions = f.Kafka.OAuthExtensions
	}
	set(&c.AWSAccessKeyID, f.Kafka.AWSAccessKeyID)
	set(&c.AWSSecretAccessKey, f.Kafka.AWSSecretAccessKey)
	set(&c.AWSSessionToken, f.Kafka.AWSSessionToken)
	set(&c.SchemaRegistryCAFile, f.SchemaRegistry.CA)
	set(&c.SchemaRegistryURL, f.SchemaRegistry.URL)
	set(&c.SchemaRegistryUsername, f.SchemaRegistry.Username)
	set(&c.SchemaRegistryPassword, f.SchemaRegistry.Password)
	if f.SchemaRegistry.AutoRegister != nil {
		c.SchemaRegistryLookupOnly = !*f.SchemaRegistry.AutoRegister
	}
	setDuration(&c.SchemaRegistryWait, f.SchemaRegistry.Wait)
	set(&c.APIToken, f.API.Token)
	set(&c.Demo, f.Demo.Mode)
	set(&c.DemoRate, f.Demo.Rate)
	set(&c.Seed, f.Demo.Seed)
	set(&c.DemoPatients, f.Demo.Patients)
	for k, line := range f.lines {
		c.SetOrigin(k, fmt.Sprintf("line %d", line))
	}
}

// FileOf is c in the config file's terms: what Apply would read back into
// c, options at their zero value left out. Secrets are left out too:
// Secrets lists which are set, and where from.
func FileOf(c Config) FileConfig {
	var f FileConfig
	f.Brokers = c.Brokers
	f.Pipelines = c.Pipelines
	f.AppID = ptr(c.AppID)
	f.Topics = c.Topics
	f.HTTP = ptr(c.HTTPAddr)
	f.AdvertiseHTTP = ptr(c.AdvertiseHTTP)
	f.CreateTopics = ptr(c.CreateTopics)
	f.Partitions = ptr(c.Partitions)
	f.Rules = ptr(c.RulesFile)
	f.SiteTimeZone = ptr(c.SiteTimeZone)
	f.PayerTimeZone = ptr(c.PayerTimeZone)
	f.UrgentCategories = c.UrgentCategories
	f.CarryHeaders = c.CarryHeaders
	f.InstanceID = ptr(c.InstanceID)
	f.CommitInterval = ptrDuration(c.CommitInterval)
	f.SessionTimeout = ptrDuration(c.SessionTimeout)
	f.TransactionTimeout = ptrDuration(c.TransactionTimeout)
	f.Duration = ptrDuration(c.Duration)
	f.ReconcileDeadline = ptrDuration(c.ReconcileDeadline)
	f.Sources = ptr(c.SourcesFile)
	f.SummaryEvery = ptrDuration(c.SummaryEvery)
	f.Kafka = FileKafka{
		SASLMechanism: ptr(c.SASLMechanism), Username: ptr(c.Username), TLS: ptr(c.TLS),
		TLSCA: ptr(c.TLSCAFile), TLSCert: ptr(c.TLSCertFile), TLSKey: ptr(c.TLSKeyFile),
		ClientID: ptr(c.KafkaClientID), Rack: ptr(c.KafkaRack),
		DialTimeout: ptrDuration(c.KafkaDialTimeout), RequestTimeoutOverhead: ptrDuration(c.KafkaRequestTimeoutOverhead),
		ConnIdleTimeout: ptrDuration(c.KafkaConnIdleTimeout), MetadataMaxAge: ptrDuration(c.KafkaMetadataMaxAge),
		OAuthTokenFile: ptr(c.OAuthTokenFile), OAuthTokenURL: ptr(redactURL(c.OAuthTokenURL)), OAuthClientID: ptr(c.OAuthClientID),
		OAuthScope: ptr(c.OAuthScope), OAuthExtensions: c.OAuthExtensions, AWSAccessKeyID: ptr(c.AWSAccessKeyID),
	}
	f.SchemaRegistry = FileRegistry{URL: ptr(redactURL(c.SchemaRegistryURL)), Username: ptr(c.SchemaRegistryUsername), CA: ptr(c.SchemaRegistryCAFile),
		Wait: ptrDuration(c.SchemaRegistryWait)}
	if c.SchemaRegistryLookupOnly {
		f.SchemaRegistry.AutoRegister = new(bool)
	}
	f.Demo = FileDemo{Mode: ptr(c.Demo), Rate: ptr(c.DemoRate), Seed: ptr(c.Seed), Patients: ptr(c.DemoPatients)}
	return f
}

// Secrets are the secret keys c sets, each with where it came from.
func (c Config) Secrets() []string {
	var out []string
	for _, s := range []struct {
		key, v string
	}{{"kafka.password", c.Password}, {"schemaRegistry.password", c.SchemaRegistryPassword}, {"api.token", c.APIToken},
		{"kafka.oauthToken", c.OAuthToken}, {"kafka.oauthClientSecret", c.OAuthClientSecret}, {"kafka.awsSecretAccessKey", c.AWSSecretAccessKey}, {"kafka.awsSessionToken", c.AWSSessionToken}} {
		if s.v == "" {
			continue
		}
		if o := c.origin(s.key); o != "" {
			out = append(out, s.key+" ("+o+")")
		} else {
			out = append(out, s.key)
		}
	}
	return out
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

// ptr is &v, nil for the zero value: an unset option.
func ptr[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func ptrDuration(d time.Duration) *Duration {
	if d == 0 {
		return nil
	}
	v := Duration(d)
	return &v
}
