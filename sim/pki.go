package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway certificate authority for TLS and mTLS against the
// embedded cluster: the brokers' and clients' certificates a real
// deployment gets from its own CA. Certificates are for 127.0.0.1 and
// localhost and valid for a day.
type PKI struct {
	CA   *x509.Certificate
	Pool *x509.CertPool // holds CA
	key  *ecdsa.PrivateKey
}

// NewPKI makes a CA named name.
func NewPKI(name string) (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sim: pki: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sim: pki: %w", err)
	}
	p := &PKI{CA: ca, Pool: x509.NewCertPool(), key: key}
	p.Pool.AddCert(ca)
	return p, nil
}

// Issue signs a certificate for 127.0.0.1 and localhost with the given
// extended usages (server, client or both).
func (p *PKI) Issue(serial int64, usages ...x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, p.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sim: pki: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// WriteCA writes the CA's certificate as PEM to dir/name and returns its
// path.
func (p *PKI) WriteCA(dir, name string) (string, error) {
	return writePEM(dir, name, "CERTIFICATE", p.CA.Raw)
}

// WritePair writes c's certificate and key as PEM files dir/name.pem and
// dir/name-key.pem.
func WritePair(dir, name string, c tls.Certificate) (certFile, keyFile string, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", "", err
	}
	if certFile, err = writePEM(dir, name+".pem", "CERTIFICATE", c.Certificate[0]); err != nil {
		return "", "", err
	}
	keyFile, err = writePEM(dir, name+"-key.pem", "PRIVATE KEY", der)
	return certFile, keyFile, err
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
