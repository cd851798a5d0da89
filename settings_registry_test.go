package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carepipe/carepipe/app"
)

// Schema auto-registration and the registry wait come from the file, the
// environment and flags, each over the one before; left out, datasync
// registers its schemas and waits the default.
func TestSchemaRegistryStartUpSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("schemaRegistry:\n  autoRegister: false\n  wait: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		file         bool
		env          map[string]string
		flags        []string
		lookupOnly   bool
		wait         time.Duration
		wantMistakes int
	}{
		{name: "defaults"},
		{name: "file", file: true, lookupOnly: true, wait: 30 * time.Second},
		{name: "environment over the file", file: true, env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true", "SCHEMA_REGISTRY_WAIT": "45s"}, wait: 45 * time.Second},
		{name: "flags over the environment", env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true"},
			flags: []string{"--schema-auto-register=false", "--schema-registry-wait", "5m"}, lookupOnly: true, wait: 5 * time.Minute},
		{name: "mistakes", env: map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "nope"}, flags: []string{"--schema-registry-wait", "soon"}, wantMistakes: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"SCHEMA_REGISTRY_AUTO_REGISTER", "SCHEMA_REGISTRY_WAIT"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var cfg app.Config
			if tt.file {
				f, err := app.LoadConfigFile(path)
				if err != nil {
					t.Fatal(err)
				}
				f.Apply(&cfg)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			conn := addConnFlags(fs, "")
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			errs := conn.apply(&cfg)
			if len(errs) != tt.wantMistakes {
				t.Fatalf("mistakes %v, want %d", errs, tt.wantMistakes)
			}
			if tt.wantMistakes > 0 {
				return
			}
			if cfg.SchemaRegistryLookupOnly != tt.lookupOnly || cfg.SchemaRegistryWait != tt.wait {
				t.Fatalf("lookup only %v, wait %v; want %v, %v", cfg.SchemaRegistryLookupOnly, cfg.SchemaRegistryWait, tt.lookupOnly, tt.wait)
			}
		})
	}
}
