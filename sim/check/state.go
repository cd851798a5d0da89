package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Changelog folds a compacted topic's records, read in offset order per
// partition, into what a restore of it loads: the last value per key, a
// tombstone (nil value) removing its key.
func Changelog(recs []*kgo.Record) map[string][]byte {
	held := make(map[string][]byte)
	for _, r := range recs {
		if r.Value == nil {
			delete(held, string(r.Key))
		} else {
			held[string(r.Key)] = r.Value
		}
	}
	return held
}

// StateReport is the comparison of a store's contents with a model. The
// problem counts are zero when they are equal.
type StateReport struct {
	// Checked counts the keys both hold.
	Checked int
	// Missing counts keys the model has and the store does not; Extra
	// keys the store holds and the model has not; Mismatched keys both
	// hold with different values.
	Missing, Extra, Mismatched int
	// Examples describe the first problems (at most 10, in key order).
	// They name a key by its rank in the sorted keys, and the paths of
	// the fields that differ, never a key or a value: keys and values may
	// be patient data.
	Examples []string
}

// Problems is the number of keys that differ.
func (r StateReport) Problems() int { return r.Missing + r.Extra + r.Mismatched }

// States compares the state a store holds with a model of it, both as key
// to value maps, values being anything encoding/json encodes. Values are
// compared as JSON: each is encoded and decoded into an any first, so a
// model may say 3 where the store decoded 3.0, or a []string where the
// store has []any. A pure function of its arguments.
func States(model, held map[string]any) StateReport {
	var rep StateReport
	keys := slices.Sorted(maps.Keys(model))
	for k := range held {
		if _, ok := model[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	example := func(f string, args ...any) {
		if len(rep.Examples) < maxExamples {
			rep.Examples = append(rep.Examples, fmt.Sprintf(f, args...))
		}
	}
	for i, k := range keys {
		m, inModel := model[k]
		h, inStore := held[k]
		switch {
		case !inStore:
			rep.Missing++
			example("key %d of %d: in the model, not held", i, len(keys))
		case !inModel:
			rep.Extra++
			example("key %d of %d: held, not in the model", i, len(keys))
		default:
			rep.Checked++
			if fields := differing(asJSON(m), asJSON(h)); len(fields) > 0 {
				rep.Mismatched++
				example("key %d of %d: %s differ", i, len(keys), strings.Join(fields, ", "))
			}
		}
	}
	return rep
}

// asJSON is v encoded and decoded again; a value that does not encode
// stands as its error's type, which equals nothing a model holds.
func asJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(does not encode: %T)", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprintf("(does not decode: %T)", err)
	}
	return out
}

// differing names where a and b differ: the paths of the differing fields
// of two objects, down through nested objects, or "value" when they are
// not both objects and differ.
func differing(a, b any) []string {
	var out []string
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		ma, okA := a.(map[string]any)
		mb, okB := b.(map[string]any)
		if !okA || !okB {
			if !reflect.DeepEqual(a, b) {
				if path == "" {
					path = "value"
				}
				out = append(out, path)
			}
			return
		}
		names := slices.Sorted(maps.Keys(ma))
		for n := range mb {
			if _, ok := ma[n]; !ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			p := n
			if path != "" {
				p = path + "." + n
			}
			walk(p, ma[n], mb[n])
		}
	}
	walk("", a, b)
	return out
}
