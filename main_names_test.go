package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carepipe/carepipe/internal/kafkatest"
)

// `carepipe topics plan` follows run's configuration: the config file's
// app id names the internal topics, its renamed topics replace the
// built-in ones, and --app-id (or CAREPIPE_APP_ID) wins over the file.
func TestTopicsPlanFollowsAppIDAndRenamedTopics(t *testing.T) {
	c := kafkatest.NewCluster(t)
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	file := "pipelines: [alerts]\nappId: staging\ntopics:\n  alerts: {fhir.Observation: staging.observations}\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		env   string
		appID string
	}{
		{"the file's app id", nil, "", "staging"},
		{"the environment's", nil, "blue", "blue"},
		{"the flag's", []string{"--app-id", "green"}, "blue", "green"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("CAREPIPE_APP_ID", tc.env)
			}
			var out, errOut bytes.Buffer
			args := append([]string{"topics", "plan", "--config", path, "--brokers", c.Addrs()[0]}, tc.args...)
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			plan := out.String()
			for _, want := range []string{
				"create staging.observations: 12 partitions, replication 1",
				"create " + tc.appID + "-clinical-alerts-stream-processor-patient-alerts-changelog:",
				"create " + tc.appID + "-clinical-alerts-stream-processor-observations-by-patient-repartition:",
				"create clinical.alerts:",
			} {
				if !strings.Contains(plan, want) {
					t.Errorf("plan does not say %q:\n%s", want, plan)
				}
			}
			for _, not := range []string{"create fhir.Observation:", "create clinical-alerts-stream-processor-"} {
				if strings.Contains(plan, not) {
					t.Errorf("plan says %q:\n%s", not, plan)
				}
			}
		})
	}
}
