package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/carepipe/carepipe/app"
)

// Each setting comes from the file, the environment over it, and its flag
// over both, end to end through config check's output read back. (The
// precedence itself is app's TestConfigureRunPrecedence; this is what a
// user sees.)
func TestConfigCheckLayersEachSetting(t *testing.T) {
	type layer struct {
		name string
		env  string
		args []string
		want any
	}
	for _, s := range []struct {
		setting string
		file    string
		env     string
		get     func(app.Config) any
		layers  []layer
	}{
		{
			setting: "advertiseHttp",
			file:    "brokers: [k:9092]\npipelines: [orders]\nhttp: 127.0.0.1:8080\nadvertiseHttp: file-host:8080\n",
			env:     "CAREPIPE_ADVERTISE_HTTP",
			get:     func(c app.Config) any { return c.AdvertiseHTTP },
			layers: []layer{
				{"file", "", nil, "file-host:8080"},
				{"environment over the file", "10.0.0.2:8080", nil, "10.0.0.2:8080"},
				{"flag over both", "10.0.0.2:8080", []string{"--advertise-http", "10.0.0.3:8080"}, "10.0.0.3:8080"},
			},
		},
		{
			setting: "carryHeaders",
			file:    "pipelines: [alerts]\ncarryHeaders: [from-file]\n",
			env:     "CAREPIPE_CARRY_HEADERS",
			get:     func(c app.Config) any { return c.CarryHeaders },
			layers: []layer{
				{"file", "", nil, []string{"from-file"}},
				{"environment", "baggage, x-request-id", nil, []string{"baggage", "x-request-id"}},
				{"flag", "baggage", []string{"--carry-headers", "x-tenant"}, []string{"x-tenant"}},
			},
		},
	} {
		t.Run(s.setting, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "carepipe.yaml")
			if err := os.WriteFile(path, []byte(s.file), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("CAREPIPE_CONFIG", path)
			for _, l := range s.layers {
				t.Run(l.name, func(t *testing.T) {
					if l.env != "" {
						t.Setenv(s.env, l.env)
					}
					var out, errOut bytes.Buffer
					if code := run(append([]string{"config", "check"}, l.args...), &out, &errOut); code != 0 {
						t.Fatalf("exit %d: %s", code, errOut.String())
					}
					if got := s.get(readBack(t, out.String())); !reflect.DeepEqual(got, l.want) {
						t.Errorf("%s %q, want %q", s.setting, got, l.want)
					}
				})
			}
		})
	}
}
