package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
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
		ReconcileDeadline: 2 * time.Minute, SummaryEvery: 10 * time.Second,
		SASLMechanism: "SCRAM-SHA-512", Username: "u", Password: "p", TLS: true, TLSCAFile: "/ca.pem",
		TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem", SchemaRegistryCAFile: "/sr.pem",
		SchemaRegistryURL: "https://r:8081", SchemaRegistryUsername: "ru", SchemaRegistryPassword: "rp",
		APIToken: "tok", DemoRate: 50, Seed: 9, DemoPatients: 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("applied config\n %+v\nwant\n %+v", c, want)
	}
}

func TestConfigFileRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unknown key", "brokers: [k:9092]\nbrokerz: [x]\n", "line 2: field brokerz not found"},
		{"unknown nested key", "kafka:\n  sasl: PLAIN\n", "line 2: field sasl not found"},
		{"wrong type", "partitions: many\n", "line 1"},
		{"bare number duration", "commitInterval: 100\n", `line 1: "100" is not a duration`},
		{"two documents", "http: :8080\n---\nhttp: :9090\n", "more than one YAML document"},
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
