package loadgen

import (
	"slices"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// A load follows the deployment's names: it goes to the renamed input,
// waits on the renamed output, and measures the groups the app id names,
// as the catalog builds them.
func TestWorkloadFollowsTheDeploymentsNames(t *testing.T) {
	for _, tc := range []struct {
		pipeline       string
		names          pipeline.Names
		inputs, output string
		groups         []string
	}{
		{"alerts", pipeline.Names{}, alerts.TopicObservations, alerts.TopicAlerts, []string{alerts.Group}},
		{"alerts", pipeline.Names{AppID: "staging", Topics: map[string]string{alerts.TopicObservations: "s.obs", alerts.TopicAlerts: "s.alerts"}},
			"s.obs", "s.alerts", []string{"staging-" + alerts.Group}},
		{"priorauth", pipeline.Names{AppID: "b"}, priorauth.TopicPrescriptions, priorauth.TopicWorkflowCompleted, []string{"b-" + priorauth.Group}},
		{"datasync", pipeline.Names{AppID: "b"}, "", datasync.ValidatedTopic(datasync.Patient), []string{"b-" + datasync.GroupCDC, "b-" + datasync.GroupValidation}},
	} {
		t.Run(tc.pipeline+"/"+tc.names.AppID, func(t *testing.T) {
			cfg := Config{Pipeline: tc.pipeline, Names: tc.names, Seed: 1}
			cfg.setDefaults()
			wl, err := newWorkload(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.inputs != "" && !slices.Equal(wl.inputs, []string{tc.inputs}) {
				t.Errorf("inputs %v, want [%s]", wl.inputs, tc.inputs)
			}
			if !slices.Equal(wl.outputs, []string{tc.output}) {
				t.Errorf("outputs %v, want [%s]", wl.outputs, tc.output)
			}
			if !slices.Equal(wl.groups, tc.groups) || wl.rateGroup != tc.groups[0] {
				t.Errorf("groups %v rate group %s, want %v", wl.groups, wl.rateGroup, tc.groups)
			}
			for range 20 {
				if r := wl.next(); !slices.Contains(wl.inputs, r.Topic) {
					t.Fatalf("a record to %s, not an input %v", r.Topic, wl.inputs)
				}
			}
		})
	}
	cfg := Config{Pipeline: "alerts", Names: pipeline.Names{Topics: map[string]string{"no.such.topic": "x"}}}
	cfg.setDefaults()
	if _, err := newWorkload(&cfg); err == nil {
		t.Error("a rename of a topic alerts does not have: no error")
	}
}
