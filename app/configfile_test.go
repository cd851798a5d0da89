package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileSetsWhatItNames(t *testing.T) {
	f, err := LoadConfigFile(writeFile(t, `
brokers: [k1:9092, k2:9092]
pipelines: [alerts, datasync]
http: 0.0.0.0:8080
createTopics: true
partitions: 24
rules: /etc/rules.yaml
siteTimeZone: Europe/Berlin
payerTimeZone: America/New_York
urgentCategories: [antibiotic, blood thinner]
instanceId: carepipe-0
commitInterval: 250ms
sessionTimeout: 6s
transactionTimeout: 20s
reconcileDeadline: 2m
summaryEvery: 10s
kafka: {saslMechanism: SCRAM-SHA-512, username: u, password: p, tls: true, tlsCA: /ca.pem, tlsCert: /c.pem, tlsKey: /k.pem}
schemaRegistry: {url: "https://r:8081", username: ru, password: rp, ca: /sr.pem}
api: {token: tok}
demo: {rate: 50, seed: 9, patients: 20}
`))
	if err != nil {
		t.Fatal(err)
	}
	// Options the file leaves out keep what they had.
	c := Config{Duration: time.Minute, Seed: 3}
	f.Apply(&c)
	want := Config{
		Brokers: []string{"k1:9092", "k2:9092"}, Pipelines: []string{"alerts", "datasync"},
		HTTPAddr: "0.0.0.0:8080", CreateTopics: true, Partitions: 24, RulesFile: "/etc/rules.yaml",
		SiteTimeZone: "Europe/Berlin", PayerTimeZone: "America/New_York", UrgentCategories: []string{"antibiotic", "blood thinner"},
		InstanceID: "carepipe-0", CommitInterval: 250 * time.Millisecond, Duration: time.Minute,
		SessionTimeout: 6 * time.Second, TransactionTimeout: 20 * time.Second,
		ReconcileDeadline: 2 * time.Minute, SummaryEvery: 10 * time.Second,
		SASLMechanism: "SCRAM-SHA-512", Username: "u", Password: "p", TLS: true, TLSCAFile: "/ca.pem",
		TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem", SchemaRegistryCAFile: "/sr.pem",
		SchemaRegistryURL: "https://r:8081", SchemaRegistryUsername: "ru", SchemaRegistryPassword: "rp",
		APIToken: "tok", DemoRate: 50, Seed: 9, DemoPatients: 20,
	}
	// Each option remembers its line, for config check's errors.
	for key, line := range map[string]string{"brokers": "line 2", "brokers[1]": "line 2", "kafka.tlsCA": "line 17", "demo.seed": "line 20"} {
		if got := c.Origin(key); got != line {
			t.Errorf("origin of %s = %q, want %q", key, got, line)
		}
	}
	c.origins = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("applied config\n %+v\nwant\n %+v", c, want)
	}
}

// What config check prints, FileOf marshalled, reads back as the same
// configuration: it can be pasted into a config file. Secrets are left
// out, to come from where they came from.
func TestFileOfReadsBack(t *testing.T) {
	c := Config{
		Brokers: []string{"k1:9092", "k2:9092"}, Pipelines: []string{"alerts", "datasync"},
		HTTPAddr: ":8080", CreateTopics: true, Partitions: 24, RulesFile: "/etc/rules.yaml",
		SiteTimeZone: "Europe/Berlin", PayerTimeZone: "America/New_York", UrgentCategories: []string{"antibiotic", "blood thinner"},
		InstanceID: "carepipe-0", CommitInterval: 250 * time.Millisecond, Duration: time.Minute, SessionTimeout: 12 * time.Second,
		ReconcileDeadline: 2 * time.Minute, SummaryEvery: -1,
		SASLMechanism: "SCRAM-SHA-512", Username: "u", TLS: true, TLSCAFile: "/ca.pem",
		TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem", SchemaRegistryCAFile: "/sr.pem",
		KafkaClientID: "carepipe-0", KafkaRack: "eu-central-1a", KafkaDialTimeout: 5 * time.Second,
		KafkaRequestTimeoutOverhead: 20 * time.Second, KafkaConnIdleTimeout: time.Minute, KafkaMetadataMaxAge: time.Minute,
		SchemaRegistryURL: "https://r:8081", SchemaRegistryUsername: "ru",
		DemoRate: 50, Seed: 9, DemoPatients: 20, Demo: DemoOff,
		OAuthTokenFile: "/run/kafka/oauth", OAuthExtensions: map[string]string{"logicalCluster": "lkc-1"}, AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE",
		AppID: "staging", Topics: map[string]map[string]string{"alerts": {"fhir.Observation": "staging.fhir.Observation"}},
	}
	out, err := yaml.Marshal(FileOf(c))
	if err != nil {
		t.Fatal(err)
	}
	f, err := LoadConfigFile(writeFile(t, string(out)))
	if err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	var back Config
	f.Apply(&back)
	back.origins = nil
	if !reflect.DeepEqual(back, c) {
		t.Errorf("read back\n %+v\nwant\n %+v\nfrom\n%s", back, c, out)
	}

	c.Password, c.SchemaRegistryPassword, c.APIToken = "pw-1", "pw-2", "pw-3"
	c.SetOrigin("kafka.password", "KAFKA_PASSWORD")
	out, err = yaml.Marshal(FileOf(c))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, "pw-") || strings.Contains(s, "password") || strings.Contains(s, "token") {
		t.Errorf("secrets printed:\n%s", s)
	}
	if got, want := c.Secrets(), []string{"kafka.password (KAFKA_PASSWORD)", "schemaRegistry.password", "api.token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
}

func TestConfigFileRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unknown key", "brokers: [k:9092]\nbrokerz: [x]\n", "line 2: brokerz: unknown key (known here: brokers, "},
		{"unknown nested key", "kafka:\n  sasl: PLAIN\n", "line 2: kafka.sasl: unknown key (known here: saslMechanism, "},
		{"wrong type", "partitions: many\n", `line 1: partitions: "many": want a whole number`},
		{"bare number duration", "commitInterval: 100\n", `line 1: commitInterval: "100": not a duration`},
		{"two documents", "http: :8080\n---\nhttp: :9090\n", "line 2: ---: more than one YAML document"},
		{"a key twice", "http: :8080\nhttp: :9090\n", "line 2: http: given again (first on line 1)"},
		{"not a mapping", "- brokers\n", "line 1: (top): the file must be a mapping"},
		{"a section that is not a mapping", "kafka: true\n", "line 1: kafka: want a mapping of keys"},
		{"not YAML", "brokers: [k:9092\n", "line 1"},
	} {
		_, err := LoadConfigFile(writeFile(t, tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if f, err := LoadConfigFile(writeFile(t, "")); err != nil || f == nil {
		t.Errorf("an empty file: %v, want an empty config", err)
	}
	if _, err := LoadConfigFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file: no error")
	}
}

// TestSiteTimeZoneIsChecked: the alerts site time zone is an IANA name,
// checked before anything starts.
func TestSiteTimeZoneIsChecked(t *testing.T) {
	for _, tt := range []struct {
		name, zone string
		ok         bool
	}{
		{"none", "", true},
		{"IANA name", "Europe/Berlin", true},
		{"UTC", "UTC", true},
		{"not a zone", "Mars/Olympus", false},
		{"an offset is not a zone (it would be wrong half the year)", "+01:00", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Pipelines: []string{"alerts"}, SiteTimeZone: tt.zone}
			err := c.Check()
			if (err == nil) != tt.ok {
				t.Fatalf("Check: %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && !strings.Contains(err.Error(), "site time zone") {
				t.Errorf("error %q does not name the option", err)
			}
		})
	}
}

// TestPriorAuthOptions: the payer time zone and urgent categories reach
// the orchestrator's configuration, and are checked before anything
// starts.
func TestPriorAuthOptions(t *testing.T) {
	c := Config{PayerTimeZone: "America/New_York", UrgentCategories: []string{"Antiepileptics"}}
	pc, err := c.priorAuthConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.PayerTimeZone == nil || pc.PayerTimeZone.String() != "America/New_York" || !reflect.DeepEqual(pc.UrgentCategories, []string{"Antiepileptics"}) {
		t.Errorf("priorauth config: zone %v, urgent %v", pc.PayerTimeZone, pc.UrgentCategories)
	}
	if pc, _ := (&Config{}).priorAuthConfig(); pc.PayerTimeZone != nil || len(pc.UrgentCategories) == 0 {
		t.Errorf("unset: zone %v, urgent %v; want UTC (nil) and the built-in list", pc.PayerTimeZone, pc.UrgentCategories)
	}
	for _, tt := range []struct {
		name string
		c    Config
		want string
	}{
		{"not a zone", Config{PayerTimeZone: "Mars/Olympus"}, "payer time zone"},
		{"an offset is not a zone", Config{PayerTimeZone: "-05:00"}, "payer time zone"},
		{"an empty category", Config{UrgentCategories: []string{"insulin", " - "}}, "urgent category is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Pipelines = []string{"priorauth"}
			if err := tt.c.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSourcesFileIsChecked: config check loads datasync's sources file
// and reports each problem with its key; the file key and the option
// agree.
func TestSourcesFileIsChecked(t *testing.T) {
	bad := writeFile(t, "sources:\n"+
		"  - {topic: ehr.public.patients, system: ehr, entity: patient}\n"+
		"  - {topic: ehr.public.patients, system: ehr, entity: patients}\n"+
		"  - {topic: ehr.public.visits, system: ehr, entity: encounter, columns: {patient: [patient_id], id: ['']}}\n")
	c := Config{Pipelines: []string{"datasync"}, SourcesFile: bad}
	err := c.Check()
	if err == nil {
		t.Fatal("Check: no error")
	}
	for _, want := range []string{
		`sources[1].topic: duplicate topic "ehr.public.patients"`,
		`sources[1].entity: unknown entity "patients"`,
		`sources[2].columns.patient: unknown canonical field of encounter`,
		`sources[2].columns.id[0]: empty column path`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check does not report %q:\n%v", want, err)
		}
	}
	// Only datasync reads it.
	if err := (Config{Pipelines: []string{"orders"}, SourcesFile: bad}).Check(); err != nil {
		t.Errorf("without datasync: %v", err)
	}

	good := writeFile(t, "sources:\n  - {topic: ehr.public.patients, system: ehr, entity: patient, columns: {id: [patient_id]}}\n")
	f, err := LoadConfigFile(writeFile(t, "sources: "+good+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c = Config{Pipelines: []string{"datasync"}}
	f.Apply(&c)
	if c.SourcesFile != good {
		t.Fatalf("sources key gave %q, want %q", c.SourcesFile, good)
	}
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	specs, err := specsOf(&c)
	if err != nil {
		t.Fatal(err)
	}
	if got := specs[0].Inputs; len(got) != 1 || got[0] != "ehr.public.patients" {
		t.Fatalf("datasync's CDC inputs %q, want the file's topic", got)
	}
}

// TestConfigCheckReportsEveryMistakeAtOnce: a config file with many
// mistakes gets every one reported in one run, each named by its key in
// the file's own words and by its line, and nothing else.
func TestConfigCheckReportsEveryMistakeAtOnce(t *testing.T) {
	f, err := LoadConfigFile("testdata/many-mistakes.yaml")
	if f == nil {
		t.Fatal(err)
	}
	var c Config
	f.Apply(&c)
	got := Mistakes(err, c.Check())

	want := []struct {
		line     int // 0: not the file's (an option it left out)
		key, say string
	}{
		{4, "brokers[1]", `"kafka-2": not host:port`},
		{4, "brokers[2]", `":9092": no host`},
		{4, "brokers[3]", `port "99999" is not a number from 1 to 65535`},
		{5, "pipelines[2]", `unknown pipeline "billing"`},
		{6, "http", `port "http" is not a number from 0 to 65535`},
		{7, "partitions", `"many": want a whole number`},
		{8, "commit-interval", "unknown key; did you mean commitInterval?"},
		{9, "commitInterval", `"100": not a duration`},
		{10, "sessionTimeout", "500ms is under 1s"},
		{11, "reconcileDeadline", "must be positive"},
		{12, "duration", "must be positive"},
		{13, "instanceId", "want a single value"},
		{15, "siteTimeZone", `"Mars/Olympus" is not an IANA time zone`},
		{16, "payerTimeZone", `"-05:00" is not an IANA time zone`},
		{17, "rules", "/nonexistent/rules.yaml"},
		{18, "summaryEvery", `"often": not a duration`},
		{20, "kafka.saslMechanism", `unknown SASL mechanism "SCRAM-SHA-1"`},
		{21, "kafka.tls", `"maybe": want true or false`},
		{23, "kafka.clientId", "use up to 249 letters, digits"},
		{24, "kafka.rack", "use up to 249 letters, digits"},
		{25, "kafka.dialTimeout", `"0.5": not a duration`},
		{26, "kafka.requestTimeoutOverhead", "1ms: must be from 100ms to 15m"},
		{27, "kafka.connIdleTimeout", "16m0s: must be from 100ms to 15m"},
		{28, "kafka.metadataMaxAge", "2h0m0s: must be from 5s to 1h"},
		{29, "kafka.sasl", "unknown key (known here: saslMechanism,"},
		{30, "schemaRegistry.url", `"registry:8081" has no http:// or https:// scheme`},
		{30, "schemaRegistry.ca", "is set but the schema registry URL registry:8081 is not https"},
		{30, "schemaRegistry.ca", "no such file"},
		{31, "api.tokn", "unknown key (known here: token)"},
		{32, "demo.rate", "-3: must not be negative"},
		{32, "demo.patients", `"lots": want a whole number`},
		{33, "http", "given again (first on line 6)"},
		{34, "appId", `app id "team/a": use letters, digits, '.', '_' and '-' only`},
		{37, "topics.alerts.fhir.Observationx", "not a topic of alerts that can be renamed (those are: [fhir.Observation clinical.alerts"},
		{38, "topics.alerts.clinical.alerts", `renamed to "staging alerts": use letters, digits`},
		{39, "topics.billing", "no such pipeline"},
		{40, "topics.datasync.data.sync.errors", "cannot be renamed"},
		{0, "kafka.username", "SASL SCRAM-SHA-1 needs a username"},
		{0, "kafka.password", "SASL SCRAM-SHA-1 needs a password"},
		{0, "kafka.tlsKey", "a client certificate needs both kafka.tlsCert and kafka.tlsKey"},
	}
	found := make([]bool, len(got))
	for _, w := range want {
		origin := ""
		if w.line > 0 {
			origin = fmt.Sprintf("line %d", w.line)
		}
		ok := false
		for i, e := range got {
			var ke *KeyError
			if !found[i] && errors.As(e, &ke) && ke.Key == w.key && ke.Origin == origin && strings.Contains(e.Error(), w.say) {
				found[i], ok = true, true
				break
			}
		}
		if !ok {
			t.Errorf("not reported: %s: %s: %s", origin, w.key, w.say)
		}
	}
	for i, e := range got {
		if !found[i] {
			t.Errorf("reported but not expected: %v", e)
		}
		// The file's words, not Go's.
		for _, goWord := range []string{"app.", "FileConfig", "Config.", "int32", "!!str", "unmarshal", "field "} {
			if strings.Contains(e.Error(), goWord) {
				t.Errorf("%q speaks Go (%q)", e, goWord)
			}
		}
	}
	// In the order of the file's lines, the file's first.
	last := 0
	for _, e := range got {
		var ke *KeyError
		if errors.As(e, &ke) && strings.HasPrefix(ke.Origin, "line ") {
			var n int
			fmt.Sscanf(ke.Origin, "line %d", &n)
			if n < last {
				t.Errorf("%v after line %d", e, last)
			}
			last = n
		}
	}
}

// The Kafka client settings reach kgo as the options they name; unset,
// kgo keeps its defaults, which are the ones the documentation states.
func TestKafkaClientSettingsReachKgo(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Config
		want map[string]any
	}{
		{"set", Config{
			KafkaClientID: "carepipe-0", KafkaRack: "eu-central-1a", KafkaDialTimeout: 3 * time.Second,
			KafkaRequestTimeoutOverhead: 20 * time.Second, KafkaConnIdleTimeout: time.Minute, KafkaMetadataMaxAge: 30 * time.Second,
		}, map[string]any{
			"ClientID": "carepipe-0", "Rack": "eu-central-1a", "DialTimeout": 3 * time.Second,
			"RequestTimeoutOverhead": 20 * time.Second, "ConnIdleTimeout": time.Minute, "MetadataMaxAge": 30 * time.Second,
		}},
		{"unset: kgo's defaults", Config{}, map[string]any{
			"ClientID": "kgo", "Rack": "", "DialTimeout": 10 * time.Second,
			"RequestTimeoutOverhead": 10 * time.Second, "ConnIdleTimeout": 30 * time.Second, "MetadataMaxAge": 5 * time.Minute,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Brokers, tt.c.Pipelines = []string{"127.0.0.1:1"}, []string{"orders"}
			if err := tt.c.Check(); err != nil {
				t.Fatal(err)
			}
			opts, err := tt.c.kafkaOpts()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for opt, want := range tt.want {
				if got := cl.OptValue(opt); got != want {
					t.Errorf("%s = %v, want %v", opt, got, want)
				}
			}
		})
	}
}

// The transaction timeout, which with the session timeout bounds how long
// a crashed instance's partitions wait (issue 19), is checked like the
// other durations and reaches the runner's options.
func TestTransactionTimeoutIsChecked(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, "transactionTimeout: 500ms is under 1s"},
		{-time.Second, "transactionTimeout: -1s: must be positive"},
	} {
		err := Config{TransactionTimeout: tt.d}.Check()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check with %v: %v, want %q", tt.d, err, tt.want)
		}
	}
	if err := (Config{TransactionTimeout: 30 * time.Second}).Check(); err != nil {
		t.Errorf("Check with 30s: %v", err)
	}
}
