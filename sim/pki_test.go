package sim

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// A certificate the PKI issues is trusted by a client holding its CA, and
// by no other; the PEM files it writes load as a key pair and a CA.
func TestPKIIssuesTrustedCertificates(t *testing.T) {
	ca, err := NewPKI("test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewPKI("other CA")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(2, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{server}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(pool *x509.CertPool) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(ca.Pool); err != nil {
		t.Errorf("a client trusting the CA: %v", err)
	}
	if err := dial(other.Pool); err == nil {
		t.Error("a client trusting another CA completed the handshake")
	}

	dir := t.TempDir()
	certFile, keyFile, err := WritePair(dir, "server", server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("written pair: %v", err)
	}
	caFile, err := ca.WriteCA(dir, "ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Error("written CA holds no certificate")
	}
}
