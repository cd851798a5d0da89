package app

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// startLimited serves the HTTP surface of a prior-authorization pipeline
// within lim on a loopback port, until the test ends.
func startLimited(t *testing.T, lim httpLimits) string {
	t.Helper()
	srv, ln, err := serveHTTPLimited("127.0.0.1:0", "", priorAuthBuilt(t), false, lim)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// keepAlive is one client connection that asks for /healthz and keeps the
// connection open.
type keepAlive struct {
	net.Conn
	r *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{Conn: c, r: bufio.NewReader(c)}
}

func (k *keepAlive) ask(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(k, "GET /healthz HTTP/1.1\r\nHost: carepipe\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

// answer reads the answer to ask within limit.
func (k *keepAlive) answer(limit time.Duration) error {
	if err := k.SetReadDeadline(time.Now().Add(limit)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return errors.New("not a kept-alive 200: " + resp.Status)
	}
	return nil
}

// Regression (issue 23): the server had no idle timeout, so idle
// keep-alive connections stayed open for ever (100 of them still open
// after 35 s). Each is now closed by the server once idle for the idle
// timeout: reading from it ends in EOF, not in the test's bound.
func TestHTTPServerClosesIdleKeepAliveConnections(t *testing.T) {
	lim := defaultHTTPLimits()
	lim.idle = 200 * time.Millisecond
	addr := startLimited(t, lim)
	const n = 20
	conns := make([]*keepAlive, n)
	for i := range conns {
		conns[i] = dialKeepAlive(t, addr)
		conns[i].ask(t)
		if err := conns[i].answer(10 * time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	served := time.Now()
	for i, c := range conns {
		// The bound is the test's, far above the idle timeout: a server
		// that keeps the connection makes this read time out.
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := c.r.ReadByte()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("connection %d still open after %s idle, with an idle timeout of %s", i, time.Since(served).Round(time.Millisecond), lim.idle)
		case err != io.EOF:
			t.Fatalf("connection %d: %v, want EOF (closed by the server)", i, err)
		}
	}
	if idle := time.Since(served); idle < lim.idle/2 {
		t.Errorf("connections closed after %s, before they were idle for %s", idle, lim.idle)
	}
}

// The server takes at most maxConns connections at once: the next one is
// not served while they are open, and is served once one of them closes.
func TestHTTPServerBoundsConnections(t *testing.T) {
	lim := defaultHTTPLimits()
	lim.maxConns = 2
	addr := startLimited(t, lim)
	a, b := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	for _, c := range []*keepAlive{a, b} {
		c.ask(t)
		if err := c.answer(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	third := dialKeepAlive(t, addr) // the kernel's backlog takes it
	third.ask(t)
	// Waiting for an answer that must not come has to end somewhere:
	// half a second is long past a loopback /healthz.
	if err := third.answer(500 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection while two are open: %v, want no answer", err)
	}
	a.Close()
	if err := third.answer(10 * time.Second); err != nil {
		t.Fatalf("the third connection once one closed: %v, want its answer", err)
	}
	// And the one still open is served as before.
	b.ask(t)
	if err := b.answer(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// serveHTTP, which Run uses, keeps to the default limits.
func TestServeHTTPUsesTheLimits(t *testing.T) {
	srv, ln, err := serveHTTP("0", "", priorAuthBuilt(t), false)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	lim := defaultHTTPLimits()
	if srv.IdleTimeout != lim.idle || srv.ReadHeaderTimeout != lim.readHeader || srv.ReadTimeout != lim.read ||
		srv.WriteTimeout != lim.write || srv.MaxHeaderBytes != lim.maxHeaderBytes {
		t.Errorf("server: idle %s, read header %s, read %s, write %s, max header %d; want %+v",
			srv.IdleTimeout, srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.MaxHeaderBytes, lim)
	}
	if _, ok := ln.(*limitListener); !ok || cap(ln.(*limitListener).slots) != lim.maxConns {
		t.Errorf("listener %T does not bound connections to %d", ln, lim.maxConns)
	}
	for _, d := range []time.Duration{lim.idle, lim.readHeader, lim.read, lim.write} {
		if d <= 0 {
			t.Errorf("a limit of %s is none: %+v", d, lim)
		}
	}
}
