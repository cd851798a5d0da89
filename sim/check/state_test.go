package check

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestChangelogKeepsLastValuePerKeyAndDropsTombstoned(t *testing.T) {
	recs := []*kgo.Record{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2")},
		{Key: []byte("b"), Value: nil},
		{Key: []byte("c"), Value: nil},
		{Key: []byte("c"), Value: []byte("3")},
	}
	got := Changelog(recs)
	if len(got) != 2 || string(got["a"]) != "2" || string(got["c"]) != "3" {
		t.Fatalf("got %q, want a=2 c=3", got)
	}
}

func TestStates(t *testing.T) {
	model := map[string]any{
		"same":    map[string]any{"version": 2, "fields": map[string]any{"line": []string{"x"}, "n": 3}},
		"differs": map[string]any{"version": 2, "fields": map[string]any{"lastName": "A", "address": map[string]any{"city": "C"}}},
		"missing": map[string]any{"version": 1},
	}
	held := map[string]any{
		// Decoded values: float64 and []any where the model has ints and
		// []string.
		"same":    map[string]any{"version": 2.0, "fields": map[string]any{"line": []any{"x"}, "n": 3.0}},
		"differs": map[string]any{"version": 3.0, "fields": map[string]any{"lastName": "B", "address": map[string]any{"city": "C", "state": "S"}}},
		"extra":   map[string]any{"version": 1.0},
	}
	rep := States(model, held)
	if rep.Checked != 2 || rep.Missing != 1 || rep.Extra != 1 || rep.Mismatched != 1 || rep.Problems() != 3 {
		t.Fatalf("report %+v, want 2 checked, 1 missing, 1 extra, 1 mismatched", rep)
	}
	// Keys in order: differs, extra, missing, same.
	want := []string{
		"key 0 of 4: fields.address.state, fields.lastName, version differ",
		"key 1 of 4: held, not in the model",
		"key 2 of 4: in the model, not held",
	}
	if !slices.Equal(rep.Examples, want) {
		t.Fatalf("examples\n %q\nwant\n %q", rep.Examples, want)
	}
	if rep := States(model, model); rep.Problems() != 0 || rep.Checked != 3 {
		t.Fatalf("a model against itself: %+v", rep)
	}
}
