package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/sim"
)

// fastRetry is registryRetry with pauses short enough for a test.
var fastRetry = registryRetry{first: 5 * time.Millisecond, most: 20 * time.Millisecond, total: time.Minute}

// registryBehind serves registry's API behind outage; the URL carries
// credentials, which no log line and no error may show.
func registryBehind(t *testing.T, outage *sim.RegistryOutage) (*Config, *sr.Client, *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewServer(outage)
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	cfg := &Config{
		SchemaRegistryURL: strings.Replace(srv.URL, "http://", "http://carepipe:s3cret@", 1),
		Logger:            slog.New(slog.NewJSONHandler(&logs, nil)),
	}
	cl, err := cfg.schemaRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cl, &logs
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type codecResult struct {
	codec *datasync.Codec
	err   error
}

// Issue 23: a registry that is down when datasync starts is waited for.
// While start-up waits, /healthz is ok and /readyz says why it is not
// ready; once the registry answers, start-up goes on with the registered
// schemas, and the probes' listener is gone, for the server proper.
func TestRegistryDownAtStartUpIsWaitedFor(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	outage := sim.NewRegistryOutage(reg.Handler(), http.StatusServiceUnavailable, -1)
	cfg, cl, logs := registryBehind(t, outage)
	cfg.HTTPAddr = freeAddr(t)
	done := make(chan codecResult, 1)
	go func() {
		c, err := codecAtStartUp(context.Background(), cfg, cl, fastRetry)
		done <- codecResult{c, err}
	}()

	// Wait (bounded) for the probes to answer.
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.HTTPAddr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/readyz while the registry is down: %d %s", resp.StatusCode, b)
			}
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /readyz within 10s of the registry failing: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "schema registry unreachable, retrying") {
		t.Fatalf("/readyz body %q does not say why", body)
	}
	if resp, err := http.Get("http://" + cfg.HTTPAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while waiting: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	select {
	case r := <-done:
		t.Fatalf("start-up ended while the registry was down: %v", r.err)
	default:
	}

	outage.End()
	r := <-done
	if r.err != nil || r.codec == nil {
		t.Fatalf("start-up after the registry came back: %v", r.err)
	}
	if subjects, err := cl.Subjects(context.Background()); err != nil || len(subjects) != 8 {
		t.Fatalf("registered subjects %v, %v; want the 8 canonical ones", subjects, err)
	}
	if c, err := net.Dial("tcp", cfg.HTTPAddr); err == nil {
		c.Close()
		t.Fatal("the probes still listen after start-up went on")
	}
	failed := outage.Failed()
	if n := strings.Count(logs.String(), `"msg":"schema registry unreachable, retrying"`); n != failed {
		t.Fatalf("%d warnings for %d failed attempts:\n%s", n, failed, logs)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("the logs show the registry's password:\n%s", logs)
	}
}

// A registry that fails its first few requests (a load balancer's 503s
// while it starts) costs one attempt, and one warning, each.
func TestRegistryFailingNRequestsIsRetried(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	outage := sim.NewRegistryOutage(reg.Handler(), http.StatusServiceUnavailable, 3)
	cfg, cl, logs := registryBehind(t, outage)
	c, err := codecAtStartUp(context.Background(), cfg, cl, fastRetry)
	if err != nil || c == nil {
		t.Fatalf("start-up: %v", err)
	}
	if n := strings.Count(logs.String(), `"msg":"schema registry unreachable, retrying"`); n != 3 || outage.Failed() != 3 {
		t.Fatalf("%d warnings, %d failed requests; want 3 and 3:\n%s", n, outage.Failed(), logs)
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(logs.String(), `"attempt":`+string(rune('0'+i))) {
			t.Fatalf("no warning for attempt %d:\n%s", i, logs)
		}
	}
}

// A registry down for longer than the wait: start-up gives up with a
// message that says what it waited for and what to check, and no secret.
func TestRegistryDownGivesUpWithAClearMessage(t *testing.T) {
	outage := sim.NewRegistryOutage(http.NotFoundHandler(), http.StatusServiceUnavailable, -1)
	cfg, cl, _ := registryBehind(t, outage)
	rr := fastRetry
	rr.total = 100 * time.Millisecond
	_, err := codecAtStartUp(context.Background(), cfg, cl, rr)
	if err == nil {
		t.Fatal("start-up went on without a registry")
	}
	for _, want := range []string{"unreachable for 100ms", "giving up", "503", "--schema-registry-wait", "SCHEMA_REGISTRY_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
	if outage.Failed() < 2 {
		t.Fatalf("gave up after %d attempts", outage.Failed())
	}

	// Nothing listening at all: the same.
	var logs bytes.Buffer
	cfg = &Config{SchemaRegistryURL: "http://" + freeAddr(t), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	if cl, err = cfg.schemaRegistry(); err != nil {
		t.Fatal(err)
	}
	_, err = codecAtStartUp(context.Background(), cfg, cl, rr)
	if err == nil || !strings.Contains(err.Error(), "giving up") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("no registry listening: %v", err)
	}
	if n := strings.Count(logs.String(), "unreachable, retrying"); n < 2 {
		t.Fatalf("%d retries of a refused connection", n)
	}
}

// Issue 23 through Run: datasync against a real (kfake) cluster and a
// registry that never comes up exits with the message, not at once.
func TestRunGivesUpOnARegistryThatStaysDown(t *testing.T) {
	c := kafkatest.NewCluster(t)
	outage := sim.NewRegistryOutage(http.NotFoundHandler(), http.StatusServiceUnavailable, -1)
	srv := httptest.NewServer(outage)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, Config{Brokers: c.Addrs(), Pipelines: []string{"datasync"}, SchemaRegistryURL: srv.URL,
		SchemaRegistryWait: 600 * time.Millisecond, SummaryEvery: -1})
	if err == nil || !strings.Contains(err.Error(), "unreachable for 600ms") {
		t.Fatalf("Run: %v, want it to give up on the registry", err)
	}
	if outage.Failed() < 2 {
		t.Fatalf("Run exited after %d attempt(s), without waiting", outage.Failed())
	}
}

// Answers that are not an outage are not retried: a refused password, or
// (auto-registration off) a subject without carepipe's schema, which the
// error names.
func TestRegistryRefusalsFailAtOnce(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	outage := sim.NewRegistryOutage(reg.Handler(), http.StatusUnauthorized, -1)
	cfg, cl, _ := registryBehind(t, outage)
	if _, err := codecAtStartUp(context.Background(), cfg, cl, fastRetry); err == nil || outage.Failed() != 1 {
		t.Fatalf("401: %v after %d requests; want an error after 1", err, outage.Failed())
	}

	outage.End()
	cfg.SchemaRegistryLookupOnly = true
	_, err := codecAtStartUp(context.Background(), cfg, cl, fastRetry)
	if !errors.Is(err, datasync.ErrNotRegistered) || !strings.Contains(err.Error(), "canonical.patient.change-value") {
		t.Fatalf("lookup-only, nothing registered: %v", err)
	}
	if subjects, _ := cl.Subjects(context.Background()); len(subjects) != 0 {
		t.Fatalf("lookup-only registered %v", subjects)
	}
	// Registered by someone else (carepipe topics apply): it works.
	if _, err := datasync.Register(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	if c, err := codecAtStartUp(context.Background(), cfg, cl, fastRetry); err != nil || c == nil {
		t.Fatalf("lookup-only, every schema registered: %v", err)
	}
}

// Issue 23 through Run: datasync against a real (kfake) cluster starts
// while the registry is down; /readyz says so on the configured address;
// once the registry answers, Run goes on, the server proper takes over that
// address, and a requested stop is clean.
func TestRunWaitsForTheRegistryThenServes(t *testing.T) {
	c := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	outage := sim.NewRegistryOutage(reg.Handler(), http.StatusServiceUnavailable, -1)
	srv := httptest.NewServer(outage)
	t.Cleanup(srv.Close)
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Brokers: c.Addrs(), Pipelines: []string{"datasync"}, CreateTopics: true, Partitions: 1,
			SchemaRegistryURL: srv.URL, HTTPAddr: addr, SummaryEvery: -1})
	}()
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("Run returned while waiting for %s: %v", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 30s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitUntil("/readyz saying the registry is unreachable", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, notReadyRegistry)
	})
	outage.End()
	// The server proper answers for the pipelines, never again for the
	// registry.
	waitUntil("/readyz from the server proper", func() bool {
		code, body := readyz()
		return code != 0 && !strings.Contains(body, "schema registry")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after a requested stop: %v", err)
	}
}
