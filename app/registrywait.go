package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline/datasync"
)

// DefaultSchemaRegistryWait is how long datasync's start-up retries a schema
// registry it cannot reach, unless configured otherwise: long enough for a
// registry deployed beside carepipe to start, short enough that a wrong URL
// is said within minutes.
const DefaultSchemaRegistryWait = 2 * time.Minute

// notReadyRegistry is /readyz's reason while start-up waits on the registry.
const notReadyRegistry = "datasync: schema registry unreachable, retrying"

// registryRetry is how start-up retries a registry it cannot reach: the
// first pause, the longest (each pause doubles up to it), and the bound on
// the whole wait.
type registryRetry struct {
	first, most, total time.Duration
}

func (c *Config) registryRetry() registryRetry {
	total := c.SchemaRegistryWait
	if total == 0 {
		total = DefaultSchemaRegistryWait
	}
	return registryRetry{first: 250 * time.Millisecond, most: 5 * time.Second, total: total}
}

// codecAtStartUp is datasync's codec: carepipe's schemas registered
// ([datasync.Register]) or, with auto-registration off, looked up
// ([datasync.Lookup]). A registry that cannot be reached (no connection, a
// timeout, a 5xx, 408 or 429) is retried with backoff for rr.total, each
// failure logged once, so that a registry started after carepipe does not
// make a pod crash-loop; any other answer (a refused password, an
// incompatible schema, a missing subject) fails at once.
//
// While it retries, /readyz on cfg.HTTPAddr answers not ready, saying why:
// the HTTP server proper starts only once every pipeline is built, and a
// kubelet that found nothing listening would fail the liveness probe and
// restart the pod, the crash loop the wait is there to avoid. The probes'
// listener is closed before this returns, and the server proper listens on
// the same address.
func codecAtStartUp(ctx context.Context, cfg *Config, reg *sr.Client, rr registryRetry) (*datasync.Codec, error) {
	get := datasync.Register
	if cfg.SchemaRegistryLookupOnly {
		get = datasync.Lookup
	}
	deadline := time.Now().Add(rr.total)
	pause := rr.first
	var probes *startupProbes
	defer func() {
		if probes != nil {
			probes.close()
		}
	}()
	for attempt := 1; ; attempt++ {
		codec, err := get(ctx, reg)
		if err == nil || !registryUnreachable(err) || ctx.Err() != nil {
			return codec, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("schema registry %s unreachable for %v (%d attempts), giving up: %s; check --schema-registry (SCHEMA_REGISTRY_URL) and that the registry is up, or wait longer with --schema-registry-wait",
				redactURL(cfg.SchemaRegistryURL), rr.total, attempt, redactErr(err, cfg.SchemaRegistryURL))
		}
		pause = min(pause, left)
		cfg.Logger.Warn("schema registry unreachable, retrying", "attempt", attempt, "retry_in", pause.String(),
			"gives_up_in", left.Round(time.Millisecond).String(), "error", redactErr(err, cfg.SchemaRegistryURL))
		if probes == nil && cfg.HTTPAddr != "" {
			if probes, err = serveStartupProbes(cfg.HTTPAddr, notReadyRegistry); err != nil {
				return nil, err
			}
			cfg.Logger.Info("http listening for probes only while start-up waits", "addr", probes.addr)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("stopped while waiting for the schema registry: %w", ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, rr.most)
	}
}

// registryUnreachable reports whether err says the registry could not be
// reached or could not answer now, rather than answering no.
func registryUnreachable(err error) bool {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout || re.StatusCode == http.StatusTooManyRequests
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return false // a registry that is up, with a certificate not trusted
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// redactErr is err's text, with the HTTP status of an answer (the client
// says only its message), and the credentials of registryURL, if it has
// any, taken out: the registry client names the URL it called.
func redactErr(err error, registryURL string) string {
	msg := err.Error()
	var re *sr.ResponseError
	if errors.As(err, &re) {
		msg += fmt.Sprintf(" (HTTP %d)", re.StatusCode)
	}
	if u, perr := url.Parse(registryURL); perr == nil && u.User != nil {
		msg = strings.ReplaceAll(msg, u.User.String()+"@", "")
	}
	return msg
}

// startupProbes serve /healthz (ok) and /readyz (not ready, with a reason)
// while start-up waits, and nothing else.
type startupProbes struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

func serveStartupProbes(addr, reason string) (*startupProbes, error) {
	addr, _, err := httpAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready\n"+reason, http.StatusServiceUnavailable)
	})
	p := &startupProbes{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// close stops the probes; their address is free again when it returns.
func (p *startupProbes) close() {
	_ = p.srv.Close()
	<-p.done
}
