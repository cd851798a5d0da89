package app

import (
	"strings"
	"testing"
)

// --advertise-http is a host:port the other instances can dial, and only
// means something with an HTTP server to reach.
func TestConfigValidateAdvertiseHTTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"none", Config{HTTPAddr: "127.0.0.1:8080"}, ""},
		{"pod IP and port", Config{HTTPAddr: "0.0.0.0:8080", APIToken: "t", AdvertiseHTTP: "10.244.1.7:8080"}, ""},
		{"DNS name", Config{HTTPAddr: "0.0.0.0:8080", APIToken: "t", AdvertiseHTTP: "carepipe-0.carepipe.health.svc:8080"}, ""},
		{"IPv6", Config{HTTPAddr: "[::]:8080", APIToken: "t", AdvertiseHTTP: "[fd00::7]:8080"}, ""},
		{"no port", Config{HTTPAddr: "0.0.0.0:8080", APIToken: "t", AdvertiseHTTP: "10.244.1.7"}, "advertiseHttp: \"10.244.1.7\": not host:port"},
		{"no host", Config{HTTPAddr: "0.0.0.0:8080", APIToken: "t", AdvertiseHTTP: ":8080"}, "advertiseHttp: \":8080\": no host"},
		{"port 0", Config{HTTPAddr: "0.0.0.0:8080", APIToken: "t", AdvertiseHTTP: "10.244.1.7:0"}, "advertiseHttp: \"10.244.1.7:0\": port \"0\""},
		{"no HTTP server", Config{AdvertiseHTTP: "10.244.1.7:8080"}, "advertiseHttp: 10.244.1.7:8080 is advertised but no HTTP server runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.setDefaults()
			err := tc.cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
