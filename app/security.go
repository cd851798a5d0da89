package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// validateTLS checks the TLS settings that need no file read; the files are
// read (and their problems reported) when the clients are configured.
func (c *Config) validateTLS() error {
	var errs []error
	both := errors.New("a client certificate needs both kafka.tlsCert and kafka.tlsKey (KAFKA_TLS_CERT and KAFKA_TLS_KEY)")
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		errs = append(errs, c.keyErr("kafka.tlsKey", both))
	case c.TLSCertFile == "" && c.TLSKeyFile != "":
		errs = append(errs, c.keyErr("kafka.tlsCert", both))
	}
	if c.SchemaRegistryCAFile != "" && c.SchemaRegistryURL != "" {
		if u, err := url.Parse(c.SchemaRegistryURL); err != nil || u.Scheme != "https" {
			errs = append(errs, c.keyErrf("schemaRegistry.ca", "is set but the schema registry URL %s is not https", redactURL(c.SchemaRegistryURL)))
		}
	}
	return errors.Join(errs...)
}

// kafkaTLS is the TLS configuration of broker connections, nil when TLS is
// off. A CA file replaces the system roots (a private CA is the usual reason
// to give one); kgo sets each connection's ServerName to the broker's host.
func (c *Config) kafkaTLS() (*tls.Config, error) {
	if !c.TLS && c.TLSCAFile == "" && c.TLSCertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pool, err := loadCAs("KAFKA_TLS_CA", c.TLSCAFile)
		if err != nil {
			return nil, c.keyErr("kafka.tlsCA", err)
		}
		tc.RootCAs = pool
	}
	// A certificate without its key (or a key alone) is validateTLS's
	// mistake, reported there with the key that is missing.
	if c.TLSCertFile != "" && c.TLSKeyFile != "" {
		// LoadX509KeyPair's errors say what is wrong with the files
		// (missing, no PEM, key not matching), never what they hold.
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, c.keyErrf("kafka.tlsCert", "loading the client certificate (KAFKA_TLS_CERT %s, KAFKA_TLS_KEY %s): %w", c.TLSCertFile, c.TLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// registryTLS is the TLS configuration of the schema registry client, nil
// for the defaults (an https URL is then checked against the system roots).
func (c *Config) registryTLS() (*tls.Config, error) {
	if c.SchemaRegistryCAFile == "" {
		return nil, nil
	}
	pool, err := loadCAs("SCHEMA_REGISTRY_CA", c.SchemaRegistryCAFile)
	if err != nil {
		return nil, c.keyErr("schemaRegistry.ca", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// loadCAs reads a PEM file of CA certificates; setting names it in errors.
func loadCAs(setting, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", setting, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s file %s holds no PEM certificate", setting, path)
	}
	return pool, nil
}

// Bounds of the start-up check of the cluster: each seed broker gets
// kafkaCheckPerBroker, all of them together kafkaCheckTimeout (what Run
// passes), so that a wrong password or an untrusted certificate ends the
// process in seconds.
const (
	kafkaCheckTimeout   = 20 * time.Second
	kafkaCheckPerBroker = 10 * time.Second
)

// checkKafka makes, within timeout, one authenticated request (a Metadata request for no
// topic, which needs no ACL) to each seed broker in turn until one answers,
// and turns a failure that retrying cannot fix into an error that says what
// to change: credentials the broker refuses, a SASL mechanism it does not
// enable, a certificate one side does not trust. The pipelines' clients
// would otherwise retry such failures as connection errors, and report
// them, if at all, as an EOF.
//
// Each broker gets a client of its own and a single attempt (no retries), so
// that what failed, and where, is known. A broker that cannot be reached is
// passed over for the next; when none can, that is an error too.
//
// Errors name the mechanism and the broker, never the credentials. Stopped
// while checking (parent done), it returns nil: a clean stop, as the
// runners make one.
func (c *Config) checkKafka(parent context.Context, opts []kgo.Opt, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var unreachable []error
	for _, addr := range c.Brokers {
		err := c.checkBroker(ctx, opts, addr)
		if err == nil || parent.Err() != nil {
			return nil
		}
		var fatal *kafkaAccessError
		if errors.As(err, &fatal) {
			return err
		}
		unreachable = append(unreachable, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("no Kafka broker answered: check KAFKA_BROKERS, the network, and whether the listener expects TLS (KAFKA_TLS): %w", errors.Join(unreachable...))
}

// kafkaAccessError is a broker refusing carepipe: authentication or TLS.
// Trying another broker would meet the same refusal.
type kafkaAccessError struct {
	msg string
	err error
}

func (e *kafkaAccessError) Error() string { return e.msg }
func (e *kafkaAccessError) Unwrap() error { return e.err }

// checkBroker makes the check's request to the broker at addr. The error is
// a *kafkaAccessError for a refusal, a plain one for a broker not reached.
func (c *Config) checkBroker(ctx context.Context, opts []kgo.Opt, addr string) error {
	var phase connPhase
	cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.SeedBrokers(addr), kgo.WithHooks(&phase))...)
	if err != nil {
		return &kafkaAccessError{msg: fmt.Sprintf("kafka client for %s: %v", addr, err), err: err}
	}
	defer cl.Close()
	bctx, cancel := context.WithTimeout(ctx, kafkaCheckPerBroker)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: a broker-only request
	// A single seed, so the only seed broker. Broker.Request does not retry.
	_, err = cl.SeedBrokers()[0].Request(bctx, req)
	if err == nil {
		return nil
	}
	if ferr := c.accessError(addr, &phase, err); ferr != nil {
		return ferr
	}
	return fmt.Errorf("%s: %w", addr, err)
}

// accessError classifies err, met by the check at addr, into a
// *kafkaAccessError, or nil when the broker was not reached (or said
// nothing that blames the configuration).
func (c *Config) accessError(addr string, phase *connPhase, err error) error {
	mech := strings.ToUpper(c.SASLMechanism)
	fail := func(format string, args ...any) error {
		return &kafkaAccessError{msg: fmt.Sprintf(format, args...) + ": " + err.Error(), err: err}
	}
	var (
		verify  *tls.CertificateVerificationError
		opErr   *net.OpError
		readEOF *kgo.ErrFirstReadEOF
		tokErr  *tokenEndpointError
	)
	switch {
	case errors.As(err, &tokErr):
		// Every broker would need the token that was not issued.
		return &kafkaAccessError{msg: tokErr.Error(), err: err}
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		return fail("authentication with %s at %s failed: %s", mech, addr, credentialsHint(mech))
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fail("the broker at %s does not enable SASL mechanism %s: set KAFKA_SASL_MECHANISM to one it does", addr, mech)
	case mech != "" && phase.saslFailed.Load():
		// What a broker that closes the connection on a wrong password
		// (kfake does; Kafka answers SASL_AUTHENTICATION_FAILED) leaves
		// the client with: an EOF while reading the SASL answer.
		return fail("authentication with %s at %s failed: the broker closed the connection during it: %s, and KAFKA_SASL_MECHANISM", mech, addr, credentialsHint(mech))
	case mech != "" && phase.connected.Load() && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		return fail("authentication with %s at %s failed or timed out: %s", mech, addr, credentialsHint(mech))
	case errors.As(err, &verify):
		return fail("TLS with the broker at %s failed: its certificate is not trusted: set KAFKA_TLS_CA to the CA that signed it", addr)
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the broker. With TLS 1.3 a missing or
		// untrusted client certificate arrives so, after the handshake.
		return fail("the broker at %s refused the TLS connection: if it requires a client certificate, set KAFKA_TLS_CERT and KAFKA_TLS_KEY to one it trusts", addr)
	case errors.As(err, &readEOF):
		// kgo's message guesses which of TLS or SASL is missing.
		return fail("the broker at %s closed the connection at once", addr)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connPhase is a kgo hook that tells how far a connection got: connected is
// set by the first request written (so the TCP and TLS handshakes passed),
// saslFailed by a failure reading or writing a SASL request. A check's
// client makes one connection, so flags suffice.
type connPhase struct {
	connected  atomic.Bool
	saslFailed atomic.Bool
}

var (
	_ kgo.HookBrokerWrite = (*connPhase)(nil)
	_ kgo.HookBrokerRead  = (*connPhase)(nil)
)

func isSASLKey(key int16) bool {
	return key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate)
}

func (p *connPhase) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	p.connected.Store(true)
	if err != nil && isSASLKey(key) {
		p.saslFailed.Store(true)
	}
}

func (p *connPhase) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && isSASLKey(key) {
		p.saslFailed.Store(true)
	}
}

// saslRefusals is how many SASL exchanges in a row, on one broker with no
// connection made in between, must end with the broker closing the
// connection before a running carepipe takes its credentials for refused.
// One or two can be a broker going down mid-exchange.
const saslRefusals = 3

// saslWatch is a kgo hook on every client of the pipelines that notices
// credentials refused after start-up (a rotated password). A broker that
// answers SASL_AUTHENTICATION_FAILED reaches the runners as that error, which
// they treat as fatal; one that closes the connection instead leaves franz-go
// with an EOF, which it retries forever. The watch reports either on failed,
// once; Run then stops.
type saslWatch struct {
	mech   string
	failed chan error // buffered 1

	mu    sync.Mutex
	fails map[string]int // by broker host:port
	done  bool
}

var (
	_ kgo.HookBrokerConnect = (*saslWatch)(nil)
	_ kgo.HookBrokerRead    = (*saslWatch)(nil)
)

func newSASLWatch(mechanism string) *saslWatch {
	return &saslWatch{mech: strings.ToUpper(mechanism), failed: make(chan error, 1), fails: make(map[string]int)}
}

func brokerAddr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

// OnBrokerConnect sees every new connection, after its SASL exchange.
func (w *saslWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := brokerAddr(meta)
	switch {
	case err == nil:
		w.mu.Lock()
		delete(w.fails, addr)
		w.mu.Unlock()
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		w.report(fmt.Errorf("authentication with %s at %s failed after start-up (were the credentials rotated?): %s: %w", w.mech, addr, credentialsHint(w.mech), err))
	}
}

// OnBrokerRead sees the failed read of a SASL answer, on a new connection
// or when re-authenticating an old one.
func (w *saslWatch) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil || !isSASLKey(key) {
		return
	}
	addr := brokerAddr(meta)
	w.mu.Lock()
	w.fails[addr]++
	n := w.fails[addr]
	w.mu.Unlock()
	if n >= saslRefusals {
		w.report(fmt.Errorf("authentication with %s at %s failed after start-up: the broker closed the connection during %d SASL exchanges in a row (were the credentials rotated?): %s: %w", w.mech, addr, n, credentialsHint(w.mech), err))
	}
}

func (w *saslWatch) report(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.done = true
		w.failed <- err
	}
}
