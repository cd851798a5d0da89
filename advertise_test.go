package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The advertised query address comes from the file (advertiseHttp), the
// environment (CAREPIPE_ADVERTISE_HTTP) over it, and --advertise-http over
// both.
func TestAdvertiseHTTPLayers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carepipe.yaml")
	if err := os.WriteFile(path, []byte("brokers: [k:9092]\npipelines: [orders]\nhttp: 127.0.0.1:8080\nadvertiseHttp: file-host:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAREPIPE_CONFIG", path)
	for _, tt := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"file", "", nil, "file-host:8080"},
		{"environment over the file", "10.0.0.2:8080", nil, "10.0.0.2:8080"},
		{"flag over both", "10.0.0.2:8080", []string{"--advertise-http", "10.0.0.3:8080"}, "10.0.0.3:8080"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("CAREPIPE_ADVERTISE_HTTP", tt.env)
			}
			var out, errOut bytes.Buffer
			if code := run(append([]string{"config", "check"}, tt.args...), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if got := readBack(t, out.String()); got.AdvertiseHTTP != tt.want {
				t.Errorf("advertised %q, want %q", got.AdvertiseHTTP, tt.want)
			}
		})
	}
}
