package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A token endpoint on loopback that answers as RFC 6749 section 4.4
// describes. The client credentials are RFC 6749 section 4.4.2's example
// (client s6BhdRkqt3, secret gX1fBat3bV, sent as "Basic
// czZCaGRSa3F0MzpnWDFmQmF0M2JW"); the token response is RFC 6750
// section 4's example (access token mF_9.B5f-4.1JqM, type Bearer,
// expires_in 3600).
const (
	rfcClientID     = "s6BhdRkqt3"
	rfcClientSecret = "gX1fBat3bV"
	rfcBasicAuth    = "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
	rfc6750Token    = "mF_9.B5f-4.1JqM"
)

// tokenEndpoint counts the requests it answers; each valid one gets the
// next token: rfc6750Token, then rfc6750Token with a suffix.
type tokenEndpoint struct {
	t  *testing.T
	mu sync.Mutex
	n  int
	// refuse answers every request with 401 invalid_client.
	refuse bool
}

func (te *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	te.mu.Lock()
	defer te.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if te.refuse {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "kafka" ||
		r.Header.Get("Authorization") != rfcBasicAuth {
		te.t.Errorf("token request %s %v %v, auth %q: want a client credentials grant with scope kafka and the example's basic auth",
			r.Method, r.Header.Get("Content-Type"), r.PostForm, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request"}`)
		return
	}
	te.n++
	tok := rfc6750Token
	if te.n > 1 {
		tok += fmt.Sprintf(".%d", te.n)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "refresh_token": "tGzv3JOkF0XG5Qx2TlKWIA"})
}

func (te *tokenEndpoint) requests() int {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.n
}

// The client credentials grant: the token is asked for once and kept
// until a minute before it expires, then asked for again; every login
// in between sends the kept one.
func TestOAuthClientCredentials(t *testing.T) {
	te := &tokenEndpoint{t: t}
	srv := httptest.NewServer(te)
	t.Cleanup(srv.Close)
	c := Config{SASLMechanism: "OAUTHBEARER", OAuthTokenURL: srv.URL + "/oauth2/token", OAuthClientID: rfcClientID, OAuthClientSecret: rfcClientSecret, OAuthScope: "kafka"}
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	mech, err := c.saslMechanism()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	login := func() string {
		t.Helper()
		_, msg, err := mech.Authenticate(ctx, "kafka:9093")
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	want := "n,,\x01auth=Bearer " + rfc6750Token + "\x01\x01"
	if got := login(); got != want {
		t.Errorf("first login %q, want %q", got, want)
	}
	if got := login(); got != want || te.requests() != 1 {
		t.Errorf("second login %q after %d token requests, want %q after 1", got, te.requests(), want)
	}

	// The clock, not a sleep: a token source of our own with a clock the
	// test moves.
	now := time.Now()
	cc := newClientCredentials(c.OAuthTokenURL, rfcClientID, rfcClientSecret, "kafka")
	cc.now = func() time.Time { return now }
	first, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(58 * time.Minute)
	if tok, err := cc.Token(ctx); err != nil || tok != first {
		t.Errorf("token 58 minutes into its hour: %q, %v; want the one held, %q", tok, err, first)
	}
	now = now.Add(time.Minute + time.Second)
	if tok, err := cc.Token(ctx); err != nil || tok == first {
		t.Errorf("token in its last minute: %q, %v; want a new one", tok, err)
	}
	if te.requests() != 3 {
		t.Errorf("%d token requests, want 3", te.requests())
	}
}

// A token endpoint that refuses the client credentials is an error that
// says so, names the OAuth error code and not the secret, and is fatal at
// start-up: no broker would take the login.
func TestOAuthClientCredentialsRefused(t *testing.T) {
	srv := httptest.NewServer(&tokenEndpoint{t: t, refuse: true})
	t.Cleanup(srv.Close)
	cc := newClientCredentials(srv.URL, rfcClientID, rfcClientSecret, "kafka")
	_, err := cc.Token(context.Background())
	var te *tokenEndpointError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "KAFKA_SASL_OAUTH_CLIENT_SECRET") {
		t.Fatalf("Token: %v, want a token endpoint error naming invalid_client and the settings", err)
	}
	if strings.Contains(err.Error(), rfcClientSecret) {
		t.Errorf("the error holds the secret: %v", err)
	}
	c := Config{SASLMechanism: "OAUTHBEARER"}
	fatal := c.accessError("kafka:9093", &connPhase{}, fmt.Errorf("broker: %w", err))
	var ae *kafkaAccessError
	if !errors.As(fatal, &ae) {
		t.Errorf("accessError: %v, want a fatal access error", fatal)
	}
}

// The token endpoint's settings are checked: one source of the token, an
// https URL (http only to loopback: the secret travels in it), the client
// id and secret.
func TestOAuthTokenURLValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"https", Config{OAuthTokenURL: "https://login.example/oauth2/token", OAuthClientID: rfcClientID, OAuthClientSecret: rfcClientSecret}, nil},
		{"http to loopback", Config{OAuthTokenURL: "http://127.0.0.1:8080/token", OAuthClientID: rfcClientID, OAuthClientSecret: rfcClientSecret}, nil},
		{"http elsewhere", Config{OAuthTokenURL: "http://login.example/token", OAuthClientID: rfcClientID, OAuthClientSecret: rfcClientSecret}, []string{"kafka.oauthTokenURL"}},
		{"no client", Config{OAuthTokenURL: "https://login.example/token"}, []string{"kafka.oauthClientId", "kafka.oauthClientSecret"}},
		{"and a token", Config{OAuthTokenURL: "https://login.example/token", OAuthToken: rfc6750Token, OAuthClientID: rfcClientID, OAuthClientSecret: rfcClientSecret}, []string{"kafka.oauthTokenURL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SASLMechanism = "OAUTHBEARER"
			var got []string
			for _, err := range tt.cfg.validateSASL() {
				var ke *KeyError
				if !errors.As(err, &ke) {
					t.Fatalf("mistake without a key: %v", err)
				}
				if strings.Contains(err.Error(), rfcClientSecret) {
					t.Errorf("mistake %q holds the secret", err)
				}
				got = append(got, ke.Key)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("mistakes at %q, want %q", got, tt.want)
			}
		})
	}
}
