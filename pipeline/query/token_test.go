package query_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/carepipe/carepipe/pipeline/query"
)

// Only a request bearing the token reaches the handler, forwarded or not:
// the forwarded marker grants nothing.
func TestRequireToken(t *testing.T) {
	reached := false
	h := query.RequireToken("s3cret", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached = true
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tt := range []struct {
		name, auth, forwardedFrom string
		want                      int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"no token, marked forwarded", "", "10.0.0.1:8080", http.StatusUnauthorized},
		{"wrong token, marked forwarded", "Bearer nope", "10.0.0.1:8080", http.StatusUnauthorized},
		{"the token without its scheme", "s3cret", "", http.StatusUnauthorized},
		{"the token", "Bearer s3cret", "", http.StatusNoContent},
		{"the token, marked forwarded", "Bearer s3cret", "10.0.0.1:8080", http.StatusNoContent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reached = false
			req := httptest.NewRequest(http.MethodGet, "/api/priorauth/x", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.forwardedFrom != "" {
				req.Header.Set(query.ForwardedHeader, tt.forwardedFrom)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want || reached != (tt.want == http.StatusNoContent) {
				t.Fatalf("%d (handler reached: %v), want %d", rec.Code, reached, tt.want)
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
