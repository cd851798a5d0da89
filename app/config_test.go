package app

import (
	"strings"
	"testing"
)

// What is logged or printed of a registry's or a token endpoint's URL keeps
// its host and path and loses every credential it may carry: the user and
// password, a key in the query, and the fragment.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://registry.example:8081", "https://registry.example:8081"},
		{"https://user:s3cret@registry.example:8081/sr", "https://redacted@registry.example:8081/sr"},
		{"https://registry.example/sr?api_key=s3cret&region=eu", "https://registry.example/sr?api_key=redacted&region=redacted"},
		{"https://idp.example/token#s3cret", "https://idp.example/token"},
		{"://", "[unparsable]"},
	} {
		got := redactURL(tc.in)
		if got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("redactURL(%q) keeps the secret: %q", tc.in, got)
		}
	}
}
