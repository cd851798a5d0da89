package app

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/carepipe/carepipe/sim"
)

// DefaultEmbeddedListen is where carepipe run's embedded cluster listens
// unless --embedded-listen says otherwise: loopback, and not Kafka's 9092,
// so that a local Kafka and the demo do not fight over a port.
const DefaultEmbeddedListen = "127.0.0.1:29092"

// embeddedListenAddr checks addr, the embedded cluster's address: a
// loopback host:port, ":port" or a bare port (both loopback), port 0 for
// any free one; "" is 127.0.0.1:0. Only loopback: the embedded cluster has
// no authentication, and it tells clients the address it listens on, so a
// wildcard address would be one they cannot dial.
func embeddedListenAddr(addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	if _, err := strconv.Atoi(addr); err == nil {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("embedded-listen %q is not host:port, :port or a port number", addr)
	}
	if err := checkPort(port, 0); err != nil {
		return "", fmt.Errorf("embedded-listen %q: %w", addr, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || host == "localhost":
		host = "127.0.0.1"
	case ip == nil || !ip.IsLoopback():
		return "", fmt.Errorf("embedded-listen %q: not a loopback address; the embedded cluster has no authentication and is for this machine only (use 127.0.0.1:PORT)", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// newEmbeddedCluster starts the embedded cluster on cfg's listen address.
// A port already taken is said so, with what to do.
func newEmbeddedCluster(cfg *Config) (*sim.Cluster, error) {
	addr, err := embeddedListenAddr(cfg.EmbeddedListen)
	if err != nil {
		return nil, err
	}
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }
	cluster, err := sim.NewCluster(sim.KafkaOpts(kfake.ListenFn(listen)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("embedded cluster: %s is in use (another carepipe demo, or a Kafka?): choose another address with --embedded-listen 127.0.0.1:PORT, or 127.0.0.1:0 for any free port: %w", addr, err)
	}
	return cluster, err
}
