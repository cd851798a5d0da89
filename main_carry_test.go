package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The carried headers come from the file, the environment and the flag,
// each winning over the one before, as every option does.
func TestConfigCheckCarryHeaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("pipelines: [alerts]\ncarryHeaders: [from-file]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAREPIPE_CONFIG", path)
	for _, tt := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{name: "file", want: []string{"from-file"}},
		{name: "environment", env: "baggage, x-request-id", want: []string{"baggage", "x-request-id"}},
		{name: "flag", env: "baggage", args: []string{"--carry-headers", "x-tenant"}, want: []string{"x-tenant"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("CAREPIPE_CARRY_HEADERS", tt.env)
			}
			var out, errOut bytes.Buffer
			if code := run(append([]string{"config", "check"}, tt.args...), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if got := readBack(t, out.String()); !reflect.DeepEqual(got.CarryHeaders, tt.want) {
				t.Errorf("carryHeaders %q, want %q", got.CarryHeaders, tt.want)
			}
		})
	}
}
