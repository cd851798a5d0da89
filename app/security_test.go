package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/sim"
)

const (
	testPass  = "app-Secret-0815"
	testWrong = "not-the-Secret-1234"
)

// testCerts is a throwaway CA and a certificate it signed for 127.0.0.1,
// as PEM files in a test directory.
type testCerts struct {
	caFile, certFile, keyFile string
	leaf                      tls.Certificate
}

func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	dir := t.TempDir()
	pki, err := sim.NewPKI("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCerts{}
	if c.leaf, err = pki.Issue(2, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatal(err)
	}
	if c.caFile, err = pki.WriteCA(dir, "ca.pem"); err != nil {
		t.Fatal(err)
	}
	if c.certFile, c.keyFile, err = sim.WritePair(dir, "cert", c.leaf); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidateTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"certificate and key", Config{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, ""},
		{"certificate without key", Config{TLSCertFile: "c.pem"}, "kafka.tlsKey: a client certificate needs both kafka.tlsCert and kafka.tlsKey (KAFKA_TLS_CERT and KAFKA_TLS_KEY)"},
		{"key without certificate", Config{TLSKeyFile: "k.pem"}, "kafka.tlsCert: a client certificate needs both kafka.tlsCert and kafka.tlsKey"},
		{"registry CA for https", Config{SchemaRegistryURL: "https://sr:8081", SchemaRegistryCAFile: "ca.pem"}, ""},
		{"registry CA for http", Config{SchemaRegistryURL: "http://u:" + testPass + "@sr:8081", SchemaRegistryCAFile: "ca.pem"}, "not https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.setDefaults()
			err := tc.cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate: %v, want an error saying %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), testPass):
				t.Fatalf("validate's error holds the password: %v", err)
			}
		})
	}
}

// The TLS files are read when the client options are built: a missing or
// malformed file is an error there that names the setting and the file, and
// never quotes the key.
func TestKafkaTLSFiles(t *testing.T) {
	certs := newTestCerts(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(certs.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for success
	}{
		{"TLS with system roots", Config{TLS: true}, ""},
		{"CA", Config{TLSCAFile: certs.caFile}, ""},
		{"CA and client certificate", Config{TLSCAFile: certs.caFile, TLSCertFile: certs.certFile, TLSKeyFile: certs.keyFile}, ""},
		{"missing CA", Config{TLSCAFile: "/nonexistent/ca.pem"}, "KAFKA_TLS_CA"},
		{"CA not PEM", Config{TLSCAFile: garbage}, "holds no PEM certificate"},
		{"key not PEM", Config{TLSCertFile: certs.certFile, TLSKeyFile: garbage}, "KAFKA_TLS_KEY " + garbage},
		{"certificate and key swapped", Config{TLSCertFile: certs.keyFile, TLSKeyFile: certs.certFile}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Brokers = []string{"127.0.0.1:9092"}
			opts, err := tc.cfg.kafkaOpts()
			if tc.want == "" {
				if err != nil || len(opts) != 2 {
					t.Fatalf("kafkaOpts: %d options, %v; want brokers and TLS", len(opts), err)
				}
				tc2, _ := tc.cfg.kafkaTLS()
				if got, want := len(tc2.Certificates), map[bool]int{true: 1, false: 0}[tc.cfg.TLSCertFile != ""]; got != want {
					t.Fatalf("%d client certificates, want %d", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("kafkaOpts: %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(keyPEM)) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

// Redacted, which is what gets logged (as JSON), shows the TLS files' paths and hides
// every secret.
func TestRedactedHidesSecrets(t *testing.T) {
	c := Config{
		Brokers: []string{"b:9093"}, SASLMechanism: "SCRAM-SHA-512", Username: "carepipe", Password: testPass,
		TLSCAFile: "/etc/kafka/ca.pem", TLSCertFile: "/etc/kafka/client.pem", TLSKeyFile: "/etc/kafka/client-key.pem",
		SchemaRegistryURL: "https://sr:" + testPass + "@sr.example:8081", SchemaRegistryUsername: "sr-user",
		SchemaRegistryPassword: testPass, SchemaRegistryCAFile: "/etc/sr/ca.pem",
	}
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Contains(got, testPass) {
		t.Fatalf("Redacted holds a password: %s", got)
	}
	for _, want := range []string{"/etc/kafka/ca.pem", "/etc/kafka/client.pem", "/etc/kafka/client-key.pem", "/etc/sr/ca.pem", "[redacted]"} {
		if !strings.Contains(got, want) {
			t.Errorf("Redacted does not show %q: %s", want, got)
		}
	}
}

// The schema registry over https: a private CA from SCHEMA_REGISTRY_CA is
// trusted, the system roots alone are not enough for it, and basic auth goes
// along; no error holds the password.
func TestSchemaRegistryTLS(t *testing.T) {
	certs := newTestCerts(t)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("sr-user:"+testPass))
	reg := srfake.NewRegistry(srfake.WithAuth(auth))
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.leaf}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name     string
		ca, pass string
		want     string // "" for success
	}{
		{"CA and password", certs.caFile, testPass, ""},
		{"system roots only", "", testPass, "certificate"},
		{"wrong password", certs.caFile, testWrong, "not authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{SchemaRegistryURL: srv.URL, SchemaRegistryCAFile: tc.ca, SchemaRegistryUsername: "sr-user", SchemaRegistryPassword: tc.pass}
			if err := c.validate(); err != nil {
				t.Fatal(err)
			}
			cl, err := c.schemaRegistry()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = cl.Subjects(ctx)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("listing subjects: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("listing subjects: %v, want an error saying %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), testPass) || strings.Contains(err.Error(), testWrong)):
				t.Fatalf("the error holds the password: %v", err)
			}
		})
	}
}

// The start-up check against each SASL mechanism: the right password
// passes, a wrong one is an error naming the mechanism and the broker.
// kfake closes the connection on a wrong password, which franz-go reports
// as a bare EOF: the check tells it from a broker going away by the SASL
// answer being what failed to arrive.
func TestCheckKafkaMechanisms(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "carepipe", testPass))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		addr := k.ListenAddrs()[0]
		for _, tc := range []struct {
			name, pass string
		}{
			{"right password", testPass},
			{"wrong password", testWrong},
		} {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				c := Config{Brokers: []string{addr}, SASLMechanism: mech, Username: "carepipe", Password: tc.pass}
				opts, err := c.kafkaOpts()
				if err != nil {
					t.Fatal(err)
				}
				err = c.checkKafka(context.Background(), opts, kafkaCheckTimeout)
				if tc.pass == testPass {
					if err != nil {
						t.Fatalf("checkKafka: %v", err)
					}
					return
				}
				want := "authentication with " + mech + " at " + addr + " failed"
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("checkKafka: %v, want an error saying %q", err, want)
				}
				if strings.Contains(err.Error(), testWrong) || strings.Contains(err.Error(), testPass) {
					t.Fatalf("the error holds a password: %v", err)
				}
			})
		}
	}
}

// A broker that accepts connections and never answers holds the check no
// longer than its timeout (kafkaCheckTimeout in Run), and with SASL
// configured the error says authentication failed or timed out. A seed that
// refuses connections is passed over for the next.
func TestCheckKafkaBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-acceptDone
		close(held)
		for c := range held {
			c.Close()
		}
	})
	// A port nothing listens on: take one and give it back.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := free.Addr().String()
	free.Close()

	c := Config{Brokers: []string{refused, ln.Addr().String()}, SASLMechanism: "SCRAM-SHA-512", Username: "carepipe", Password: testPass}
	opts, err := c.kafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.checkKafka(context.Background(), opts, 2*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the check took %v with a 2s timeout", took)
	}
	want := "authentication with SCRAM-SHA-512 at " + ln.Addr().String() + " failed or timed out"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("checkKafka: %v, want an error saying %q", err, want)
	}
}

// Kafka, unlike kfake, answers a refused SASL exchange with an error code:
// the check reports those as such (injected here on the cluster's SASL
// requests).
func TestCheckKafkaBrokerAnswers(t *testing.T) {
	for _, tc := range []struct {
		key  kmsg.Key
		code *kerr.Error
		want string
	}{
		{kmsg.SASLAuthenticate, kerr.SaslAuthenticationFailed, "authentication with SCRAM-SHA-512 at %s failed: check KAFKA_USERNAME/KAFKA_PASSWORD"},
		{kmsg.SASLHandshake, kerr.UnsupportedSaslMechanism, "the broker at %s does not enable SASL mechanism SCRAM-SHA-512: set KAFKA_SASL_MECHANISM"},
	} {
		t.Run(tc.code.Message, func(t *testing.T) {
			k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "carepipe", testPass))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			var fired atomic.Bool
			k.ControlKey(int16(tc.key), func(req kmsg.Request) (kmsg.Response, error, bool) {
				k.KeepControl()
				fired.Store(true)
				resp := req.ResponseKind()
				switch r := resp.(type) {
				case *kmsg.SASLAuthenticateResponse:
					r.ErrorCode = tc.code.Code
				case *kmsg.SASLHandshakeResponse:
					r.ErrorCode = tc.code.Code
				}
				return resp, nil, true
			})
			addr := k.ListenAddrs()[0]
			c := Config{Brokers: []string{addr}, SASLMechanism: "SCRAM-SHA-512", Username: "carepipe", Password: testPass}
			opts, err := c.kafkaOpts()
			if err != nil {
				t.Fatal(err)
			}
			err = c.checkKafka(context.Background(), opts, kafkaCheckTimeout)
			if !fired.Load() {
				t.Fatal("the injected answer never fired")
			}
			if want := fmt.Sprintf(tc.want, addr); err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, tc.code) {
				t.Fatalf("checkKafka: %v, want an error wrapping %s and saying %q", err, tc.code.Message, want)
			}
		})
	}
}

// Stopped while checking (SIGINT during start-up), the check is no error:
// Run goes on to stop cleanly.
func TestCheckKafkaStopped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := Config{Brokers: []string{ln.Addr().String()}}
	opts, err := c.kafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.checkKafka(ctx, opts, kafkaCheckTimeout); err != nil {
		t.Fatalf("checkKafka after the stop: %v, want nil", err)
	}
}

// TLS to a broker's plaintext listener: kfake takes the TLS ClientHello for
// the start of a huge request and waits for the rest, so the handshake
// hangs until the check's timeout; the error still points at the TLS
// settings and names the broker.
func TestCheckKafkaTLSToPlaintext(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	addr := k.ListenAddrs()[0]
	c := Config{Brokers: []string{addr}, TLS: true}
	opts, err := c.kafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	err = c.checkKafka(context.Background(), opts, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "KAFKA_TLS") {
		t.Fatalf("checkKafka: %v, want an error naming %s and KAFKA_TLS", err, addr)
	}
}
