package app

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// httpLimits bound what a client can hold of the HTTP server: time on a
// connection, header size and connections at once. The server's clients
// are scrapers, kubelets and a few query callers, so the bounds are far
// above what they need and far below what piles up from clients that
// connect and then wait.
type httpLimits struct {
	// idle closes a keep-alive connection with no request this long. A
	// Prometheus scraping every 15 s keeps its connection; one scraping
	// every minute, and the kubelet, which opens a connection per probe,
	// reconnect, which costs a loopback or in-cluster handshake. Without
	// it, idle connections stayed open for ever.
	idle time.Duration
	// readHeader bounds the request line and headers; read the whole
	// request (every route is a GET without a body). A client that
	// trickles its request (slowloris) is cut off by them.
	readHeader, read time.Duration
	// write bounds a response: an exposition of every pipeline's metrics
	// or a query answer takes milliseconds, and a client that stops
	// reading must not hold its connection.
	write time.Duration
	// maxHeaderBytes is the request header's limit: a bearer token is well
	// under a kilobyte, Go's default is 1 MB.
	maxHeaderBytes int
	// maxConns is how many connections are served at once; the next waits
	// in the listen backlog until one closes.
	maxConns int
}

func defaultHTTPLimits() httpLimits {
	return httpLimits{
		idle:           30 * time.Second,
		readHeader:     5 * time.Second,
		read:           10 * time.Second,
		write:          30 * time.Second,
		maxHeaderBytes: 64 << 10,
		maxConns:       128,
	}
}

// server is an HTTP server of h within the limits.
func (lim httpLimits) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		IdleTimeout:       lim.idle,
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		MaxHeaderBytes:    lim.maxHeaderBytes,
	}
}

// limitListener accepts a connection only while fewer than cap(slots) are
// open: Accept waits for a slot before it takes the next connection from
// the backlog, and a connection's Close gives its slot back.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func limitConns(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		// Shutdown closes the listener while Accept waits for a slot.
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitedConn gives its slot back on its first Close; net/http may close a
// connection more than once.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
