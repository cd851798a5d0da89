package scenarios

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
)

// Issue 21: describe --json checked against the pipelines' specs. The
// JSON is decoded as a tool would (field names, not Go types), for every
// built pipeline with the configuration's defaults, and each pipeline's
// topics are compared with what its spec makes the runner create and
// consume: every topic of Spec.Topics() is described once, in the role it
// has there, and nothing else is, besides the replay log.
func TestDescribeJSONMatchesTheSpecs(t *testing.T) {
	specs, err := app.Specs(app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ops.WriteJSON(&buf, ops.Describe(specs, catalog.NotesOf)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Pipelines []struct {
			Pipeline         string   `json:"pipeline"`
			Group            string   `json:"group"`
			TransactionalIDs string   `json:"transactionalIds"`
			Inputs           []string `json:"inputs"`
			Repartitions     []struct {
				Name, Topic string
			} `json:"repartitions"`
			Stores []struct {
				Name, Changelog string
			} `json:"stores"`
			GlobalTables   []string `json:"globalTables"`
			Outputs        []string `json:"outputs"`
			ErrorTopic     string   `json:"errorTopic"`
			ReplayLog      string   `json:"replayLog"`
			PunctuateEvery string   `json:"punctuateEvery"`
			Keys           string   `json:"keys"`
			Timers         string   `json:"timers"`
		} `json:"pipelines"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Pipelines) != len(specs) {
		t.Fatalf("%d pipelines described, want %d", len(doc.Pipelines), len(specs))
	}
	for i, s := range specs {
		d := doc.Pipelines[i]
		t.Run(s.Name, func(t *testing.T) {
			if d.Pipeline != s.Name || d.Group != s.Group || d.ErrorTopic != s.ErrorTopic {
				t.Errorf("described as %s, group %s, errors %s; spec %s, %s, %s", d.Pipeline, d.Group, d.ErrorTopic, s.Name, s.Group, s.ErrorTopic)
			}
			if d.Keys == "" {
				t.Error("no keys described")
			}
			if (s.Punctuate != nil) != (d.PunctuateEvery != "") || (d.Timers != "") != (d.PunctuateEvery != "") {
				t.Errorf("timers %q every %q, spec punctuates: %v", d.Timers, d.PunctuateEvery, s.Punctuate != nil)
			}
			want := map[string]pipeline.TopicKind{}
			for _, ts := range s.Topics() {
				want[ts.Name] = ts.Kind
			}
			got := map[string]pipeline.TopicKind{}
			add := func(topic string, kind pipeline.TopicKind) {
				if _, dup := got[topic]; dup {
					t.Errorf("%s described twice", topic)
				}
				got[topic] = kind
			}
			for _, x := range d.Inputs {
				add(x, pipeline.TopicInput)
			}
			for _, x := range d.Outputs {
				add(x, pipeline.TopicOutput)
			}
			add(d.ErrorTopic, pipeline.TopicError)
			for _, x := range d.GlobalTables {
				add(x, pipeline.TopicGlobal)
			}
			for _, x := range d.Stores {
				add(x.Changelog, pipeline.TopicChangelog)
				if !slices.Contains(s.Stores, x.Name) {
					t.Errorf("store %s is not the spec's", x.Name)
				}
			}
			for _, x := range d.Repartitions {
				add(x.Topic, pipeline.TopicRepartition)
				if !slices.Contains(s.Repartitions, x.Name) {
					t.Errorf("repartition %s is not the spec's", x.Name)
				}
			}
			for topic, kind := range want {
				if g, ok := got[topic]; !ok || g != kind {
					t.Errorf("%s: described as kind %v (present %v), spec's kind %v", topic, g, ok, kind)
				}
			}
			for topic := range got {
				if _, ok := want[topic]; !ok {
					t.Errorf("%s described, not in the spec", topic)
				}
			}
			if _, clash := want[d.ReplayLog]; clash || d.ReplayLog != ops.ReplayLogTopic(s.ErrorTopic) {
				t.Errorf("replay log %s, want %s, a topic of its own", d.ReplayLog, ops.ReplayLogTopic(s.ErrorTopic))
			}
		})
	}
}
