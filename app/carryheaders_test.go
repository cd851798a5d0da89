package app

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// carryHeaders reads from the file, reads back from what config check
// prints, and a key the runtime refuses is reported with its line.
func TestConfigCarryHeaders(t *testing.T) {
	f, err := LoadConfigFile(writeFile(t, "pipelines: [alerts]\ncarryHeaders: [baggage, x-request-id]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	f.Apply(&c)
	if want := []string{"baggage", "x-request-id"}; !reflect.DeepEqual(c.CarryHeaders, want) {
		t.Fatalf("CarryHeaders = %q, want %q", c.CarryHeaders, want)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	out, err := yaml.Marshal(FileOf(c))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "carryHeaders:") {
		t.Errorf("config check's output leaves carryHeaders out:\n%s", out)
	}

	f, err = LoadConfigFile(writeFile(t, "pipelines: [alerts]\ncarryHeaders: [baggage, event-type, \"x request\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c = Config{}
	f.Apply(&c)
	err = c.Check()
	if err == nil {
		t.Fatal("Check accepted event-type and a key with a space")
	}
	for _, want := range []string{"line 2: carryHeaders:", `"event-type": every output sets its own`, `"x request"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v; want it to say %q", err, want)
		}
	}
}
