package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// --http reads an address as Go's net.Listen does, so ":8080" is every
// interface; a bare port number, which Go refuses, binds loopback only.
func TestHTTPAddrBindsLoopbackUnlessTold(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		loopback bool
	}{
		{"8080", "127.0.0.1:8080", true},
		{"0", "127.0.0.1:0", true},
		{":8080", ":8080", false},
		{":0", ":0", false},
		{"[::]:8080", "[::]:8080", false},
		{"127.0.0.1:9000", "127.0.0.1:9000", true},
		{"[::1]:9000", "[::1]:9000", true},
		{"localhost:9000", "localhost:9000", true},
		{"0.0.0.0:8080", "0.0.0.0:8080", false},
		{"10.1.2.3:8080", "10.1.2.3:8080", false},
		{"carepipe.internal:8080", "carepipe.internal:8080", false},
	} {
		got, loopback, err := httpAddr(tt.in)
		if err != nil || got != tt.want || loopback != tt.loopback {
			t.Errorf("httpAddr(%q) = %q, %v, %v; want %q, %v", tt.in, got, loopback, err, tt.want, tt.loopback)
		}
	}
	for _, in := range []string{"localhost", ":http", "host:99999", "70000", "-1", ":"} {
		if got, _, err := httpAddr(in); err == nil {
			t.Errorf("httpAddr(%q) = %q, want an error", in, got)
		}
	}
}

// priorAuthBuilt is a prior-authorization pipeline that is not running:
// enough for the HTTP surface (its query API answers 404 for every id).
func priorAuthBuilt(t *testing.T) []*built {
	t.Helper()
	p, _ := catalog.Lookup(priorauth.Name)
	stages, err := p.Build(context.Background(), catalog.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.New(stages[0].Spec, pipeline.WithKafka(kgo.SeedBrokers("127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	return []*built{builtOf(stages[0], r)}
}

// The query API answers with patient data: off loopback it needs a token,
// and with a token it answers only requests bearing it. Metrics and probes
// stay open for scrapers and kubelets.
func TestQueryAPINeedsBearerToken(t *testing.T) {
	ps := priorAuthBuilt(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		if _, _, err := serveHTTP(addr, "", ps, false); err == nil || !strings.Contains(err.Error(), "CAREPIPE_API_TOKEN") {
			t.Fatalf("%s, not loopback, without a token: err = %v, want a refusal naming CAREPIPE_API_TOKEN", addr, err)
		}
	}

	const token = "s3cret-token"
	srv, ln, err := serveHTTP("0", token, ps, false)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	get := func(path, auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/api/priorauth/pa-1", "", http.StatusUnauthorized},
		{"/api/priorauth/pa-1", "Bearer wrong", http.StatusUnauthorized},
		{"/api/priorauth/pa-1", token, http.StatusUnauthorized},
		{"/api/priorauth?status=APPROVED", "", http.StatusUnauthorized},
		{"/api/priorauth/pa-1", "Bearer " + token, http.StatusNotFound}, // past the guard: nobody holds it
		{"/metrics", "", http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusServiceUnavailable}, // not running, but answered without a token
	} {
		if got, body := get(tt.path, tt.auth); got != tt.want {
			t.Errorf("GET %s with %q: %d %q, want %d", tt.path, tt.auth, got, body, tt.want)
		}
	}
	if !strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") {
		t.Errorf("a bare port bound %s, want loopback", ln.Addr())
	}
}

// Regression: with --http, Run never returned after its context ended
// (the server's goroutine was waited for before the server was shut
// down), so SIGTERM or --duration left the process hanging until killed.
func TestRunWithHTTPStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Pipelines: []string{"orders"}, HTTPAddr: "127.0.0.1:0", Duration: 2 * time.Second, SummaryEvery: -1})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run with an HTTP server did not return within a minute of a 2 s run")
	}
}
