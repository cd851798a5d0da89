package ops

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
)

// Topology is one pipeline's topology as describe prints it: every topic
// it reads, writes and owns, its state, its timers, and its ids.
type Topology struct {
	Pipeline string `json:"pipeline"`
	Group    string `json:"group"`
	// TransactionalIDs is the pattern of the instances' transactional
	// ids: one per instance.
	TransactionalIDs string        `json:"transactionalIds"`
	Inputs           []string      `json:"inputs"`
	Repartitions     []Repartition `json:"repartitions"`
	Stores           []Store       `json:"stores"`
	GlobalTables     []string      `json:"globalTables"`
	Outputs          []string      `json:"outputs"`
	ErrorTopic       string        `json:"errorTopic"`
	// ReplayLog and ReplayTransactionalID are errors replay's: see
	// [ReplayLogTopic].
	ReplayLog             string `json:"replayLog"`
	ReplayTransactionalID string `json:"replayTransactionalId"`
	// PunctuateEvery is how often timers are checked ("" when the
	// pipeline has none).
	PunctuateEvery string `json:"punctuateEvery,omitempty"`
	// Keys and Timers say in words how the records are keyed and what
	// the timers are: Spec carries neither, its pipeline's notes do.
	Keys   string `json:"keys,omitempty"`
	Timers string `json:"timers,omitempty"`
}

// Repartition is an internal topic through which a pipeline re-keys.
type Repartition struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
}

// Store is a keyed state store and its changelog.
type Store struct {
	Name      string `json:"name"`
	Changelog string `json:"changelog"`
}

// Describe returns the topology of each spec; notes, when set, gives a
// pipeline's notes by its name.
func Describe(specs []pipeline.Spec, notes func(pipeline string) catalog.Notes) []Topology {
	ts := make([]Topology, 0, len(specs))
	for i := range specs {
		s := &specs[i]
		t := Topology{
			Pipeline:              s.Name,
			Group:                 s.Group,
			TransactionalIDs:      s.Group + "-<instance id>, with --instance-id; else " + s.Group + "-<16 random hex digits>, new each start",
			Inputs:                nonNil(s.Inputs),
			Repartitions:          []Repartition{},
			Stores:                []Store{},
			GlobalTables:          []string{},
			Outputs:               nonNil(s.Outputs),
			ErrorTopic:            s.ErrorTopic,
			ReplayLog:             ReplayLogTopic(s.ErrorTopic),
			ReplayTransactionalID: ReplayTransactionalID(s.ErrorTopic),
		}
		for _, r := range s.Repartitions {
			t.Repartitions = append(t.Repartitions, Repartition{Name: r, Topic: pipeline.RepartitionTopic(s.Group, r)})
		}
		for _, st := range s.Stores {
			t.Stores = append(t.Stores, Store{Name: st, Changelog: pipeline.ChangelogTopic(s.Group, st)})
		}
		for _, g := range s.GlobalTables {
			t.GlobalTables = append(t.GlobalTables, g.Topic)
		}
		if s.Punctuate != nil {
			every := s.PunctuateEvery
			if every <= 0 {
				every = pipeline.DefaultPunctuateEvery
			}
			t.PunctuateEvery = every.String()
		}
		if notes != nil {
			n := notes(s.Name)
			t.Keys, t.Timers = n.Keys, n.Timers
		}
		ts = append(ts, t)
	}
	return ts
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}

// WriteJSON writes ts as one JSON document: {"pipelines": [...]}.
func WriteJSON(w io.Writer, ts []Topology) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Pipelines []Topology `json:"pipelines"`
	}{ts})
}

// WriteText writes ts for people.
func WriteText(w io.Writer, ts []Topology) error {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "pipeline %s\n", t.Pipeline)
		fmt.Fprintf(&b, "  group              %s\n", t.Group)
		fmt.Fprintf(&b, "  transactional ids  %s\n", t.TransactionalIDs)
		list := func(label string, items []string) {
			if len(items) == 0 {
				fmt.Fprintf(&b, "  %-18s (none)\n", label)
				return
			}
			for j, it := range items {
				if j == 0 {
					fmt.Fprintf(&b, "  %-18s %s\n", label, it)
				} else {
					fmt.Fprintf(&b, "  %-18s %s\n", "", it)
				}
			}
		}
		list("inputs", t.Inputs)
		var reps, stores []string
		for _, r := range t.Repartitions {
			reps = append(reps, r.Topic+"  ("+r.Name+")")
		}
		for _, s := range t.Stores {
			stores = append(stores, s.Name+"  changelog "+s.Changelog)
		}
		list("repartition", reps)
		list("stores", stores)
		list("global tables", t.GlobalTables)
		list("outputs", t.Outputs)
		fmt.Fprintf(&b, "  %-18s %s\n", "errors", t.ErrorTopic)
		fmt.Fprintf(&b, "  %-18s %s (transactional id %s)\n", "replay log", t.ReplayLog, t.ReplayTransactionalID)
		switch {
		case t.PunctuateEvery != "" && t.Timers != "":
			fmt.Fprintf(&b, "  %-18s every %s: %s\n", "timers", t.PunctuateEvery, t.Timers)
		case t.PunctuateEvery != "":
			fmt.Fprintf(&b, "  %-18s every %s\n", "timers", t.PunctuateEvery)
		default:
			fmt.Fprintf(&b, "  %-18s (none)\n", "timers")
		}
		if t.Keys != "" {
			fmt.Fprintf(&b, "  %-18s %s\n", "keys", t.Keys)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
