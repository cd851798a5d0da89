package app

import (
	"errors"
	"strings"
	"testing"
)

// The app id and renamed topics are checked by their file keys; renamed
// topics need a real cluster, since the embedded demo's simulated world
// writes and reads the built-in names.
func TestAppIDAndTopicsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		key  string // "": valid
		say  string
	}{
		{"app id", Config{Brokers: []string{"k:9092"}, AppID: "staging"}, "", ""},
		{"app id in the demo", Config{AppID: "staging"}, "", ""},
		{"bad app id", Config{Brokers: []string{"k:9092"}, AppID: "a b"}, "appId", "letters, digits"},
		{"renamed topic", Config{Brokers: []string{"k:9092"}, Topics: map[string]map[string]string{"orders": {"medication.order.processed": "o.done"}}}, "", ""},
		{"renamed topic in the demo", Config{Topics: map[string]map[string]string{"orders": {"medication.order.processed": "o.done"}}}, "topics", "need a cluster"},
		{"unknown topic", Config{Brokers: []string{"k:9092"}, Topics: map[string]map[string]string{"orders": {"orders.in": "x"}}}, "topics.orders.orders.in", "not a topic of orders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Pipelines = []string{"orders"}
			err := tc.cfg.Check()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("Check() = %v, want a mistake at %s saying %q", err, tc.key, tc.say)
			}
		})
	}
}
