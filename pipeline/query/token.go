package query

import (
	"crypto/subtle"
	"net/http"
)

// RequireToken wraps h so that it answers only requests bearing token as
// a bearer token (Authorization: Bearer token), and everything else with
// 401; an empty token requires nothing. Forwarded queries are checked
// like any other: the instance that sends one on passes the client's
// Authorization header with it.
func RequireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="carepipe"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
