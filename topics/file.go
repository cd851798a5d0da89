package topics

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/carepipe/carepipe/pipeline"
)

// File is a topics file (`carepipe topics plan --topics FILE`): a layout
// that replaces the built-in defaults where it says so, and per-topic specs
// that override a needed topic's layout or add a topic carepipe does not
// need itself.
//
//	defaults:
//	  partitions: 24
//	  replication: 3
//	  configs: {compression.type: zstd}
//	topics:
//	  - name: clinical.alerts
//	    configs: {retention.ms: "2592000000"}
//	  - name: audit.events
//	    partitions: 6
type File struct {
	Defaults struct {
		Partitions  int32             `yaml:"partitions"`
		Replication int16             `yaml:"replication"`
		Configs     map[string]string `yaml:"configs"`
	} `yaml:"defaults"`
	Topics []struct {
		Name        string            `yaml:"name"`
		Partitions  int32             `yaml:"partitions"`
		Replication int16             `yaml:"replication"`
		Configs     map[string]string `yaml:"configs"`
	} `yaml:"topics"`
}

// LoadFile reads and checks a topics file. Unknown keys are errors, with
// their line.
func LoadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("topics file %s: %w", path, err)
	}
	var errs []error
	if f.Defaults.Partitions < 0 || f.Defaults.Replication < 0 {
		errs = append(errs, errors.New("defaults: partitions and replication must not be negative"))
	}
	seen := map[string]bool{}
	for i, t := range f.Topics {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("topics[%d]: no name", i))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("topics[%d]: %s is listed twice", i, t.Name))
		case t.Partitions < 0 || t.Replication < 0:
			errs = append(errs, fmt.Errorf("topics[%d] %s: partitions and replication must not be negative", i, t.Name))
		}
		seen[t.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("topics file %s: %w", path, err)
	}
	return &f, nil
}

// Layout returns d with the file's defaults in place of those it sets.
func (f *File) Layout(d Defaults) Defaults {
	if f.Defaults.Partitions > 0 {
		d.Partitions = f.Defaults.Partitions
	}
	if f.Defaults.Replication > 0 {
		d.Replication = f.Defaults.Replication
	}
	if len(f.Defaults.Configs) > 0 {
		d.Configs = maps.Clone(d.Configs)
		if d.Configs == nil {
			d.Configs = map[string]string{}
		}
		maps.Copy(d.Configs, f.Defaults.Configs)
	}
	return d
}

// Override applies the file's per-topic specs to desired (laid out by d):
// a listed topic takes the partitions, replication and configs it sets; a
// topic not in desired is added, laid out by d. An error topic whose
// max.message.bytes the file does not set is raised to hold its inputs'
// largest records whole (see fitErrorTopics). It refuses a layout that
// breaks a pipeline's co-partitioning (its inputs, changelogs and
// repartition topics must have as many partitions as each other).
func (f *File) Override(specs []pipeline.Spec, desired []Topic, d Defaults) ([]Topic, error) {
	out := make([]Topic, len(desired))
	copy(out, desired)
	index := map[string]int{}
	for i, t := range out {
		index[t.Name] = i
	}
	for _, ft := range f.Topics {
		i, ok := index[ft.Name]
		if !ok {
			out = append(out, Topic{Name: ft.Name, Partitions: d.Partitions, Replication: d.Replication, Configs: maps.Clone(d.Configs)})
			i = len(out) - 1
			index[ft.Name] = i
		}
		t := &out[i]
		t.Configs = maps.Clone(t.Configs)
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		if ft.Partitions > 0 {
			t.Partitions = ft.Partitions
		}
		if ft.Replication > 0 {
			t.Replication = ft.Replication
		}
		maps.Copy(t.Configs, ft.Configs)
	}
	keep := map[string]bool{}
	for _, ft := range f.Topics {
		if _, ok := ft.Configs["max.message.bytes"]; ok {
			keep[ft.Name] = true
		}
	}
	fitErrorTopics(specs, out, keep)
	for i := range specs {
		var first string
		var n int32
		var odd []string
		for _, ts := range specs[i].Topics() {
			switch ts.Kind {
			case pipeline.TopicInput, pipeline.TopicChangelog, pipeline.TopicRepartition:
			default:
				continue
			}
			i, ok := index[ts.Name]
			if !ok {
				continue
			}
			p := out[i].Partitions
			if first == "" {
				first, n = ts.Name, p
			} else if p != n {
				odd = append(odd, fmt.Sprintf("%s has %d", ts.Name, p))
			}
		}
		if len(odd) > 0 {
			return nil, fmt.Errorf("topics file breaks the co-partitioning of pipeline %s: %s has %d partitions, but %s",
				specs[i].Name, first, n, strings.Join(odd, ", "))
		}
	}
	return out, nil
}
