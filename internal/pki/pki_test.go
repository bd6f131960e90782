package pki_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/pki"
)

// gcmSealer is a test Sealer: AES-GCM with a fixed key and zero nonce
// (fine for a test; the real one is the KMS root key).
type gcmSealer struct{ key byte }

func (s gcmSealer) aead() cipher.AEAD {
	b, _ := aes.NewCipher(bytes.Repeat([]byte{s.key}, 32))
	a, _ := cipher.NewGCM(b)
	return a
}
func (s gcmSealer) Seal(p, aad []byte) ([]byte, error) {
	return s.aead().Seal(nil, make([]byte, 12), p, aad), nil
}
func (s gcmSealer) Open(c, aad []byte) ([]byte, error) {
	return s.aead().Open(nil, make([]byte, 12), c, aad)
}

func newCA(t *testing.T, now func() time.Time) (*pki.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, gcmSealer{1}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

func TestLoadOrCreateCA(t *testing.T) {
	ca, dir := newCA(t, nil)
	again, err := pki.LoadOrCreateCA(dir, gcmSealer{1}, nil, nil)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if diff := cmp.Diff(ca.Fingerprint(), again.Fingerprint()); diff != "" {
		t.Errorf("reloaded CA differs (-want +got):\n%s", diff)
	}
	if _, err := pki.LoadOrCreateCA(dir, gcmSealer{2}, nil, nil); err == nil {
		t.Error("a different root key opened the CA key")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "ca", pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Error("CA key file holds a PEM private key in plaintext")
	}
	for _, name := range []string{pki.CAKeyFile, pki.CACertFile} {
		st, err := os.Stat(filepath.Join(dir, "ca", name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, st.Mode().Perm())
		}
	}
	if err := os.Remove(filepath.Join(dir, "ca", pki.CACertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadOrCreateCA(dir, gcmSealer{1}, nil, nil); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("half a CA: err = %v, want an 'incomplete' error instead of a new CA", err)
	}
}

// serve runs a TLS 1.3 listener with cert and reports the client's
// handshake error.
func handshake(t *testing.T, cert tls.Certificate, client *tls.Config, serverName string) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	client = client.Clone()
	client.ServerName = serverName
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		c.Close()
	}
	return err
}

func TestPinnedTLSConfig(t *testing.T) {
	ca, _ := newCA(t, nil)
	other, _ := newCA(t, nil)
	srv, err := ca.ServerCertificate([]string{"interlock.example"})
	if err != nil {
		t.Fatal(err)
	}
	key, csr, err := pki.NewAgentKey(nil, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	agentPEM, err := ca.SignAgentCSR(csr, "host_1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agentCert, _ := pki.ParseCertificatePEM(agentPEM)
	asServer := tls.Certificate{Certificate: [][]byte{agentCert.Raw, ca.Certificate().Raw}, PrivateKey: key}

	for _, tt := range []struct {
		name, pin, serverName string
		cert                  tls.Certificate
		wantErr               string
	}{
		{name: "right pin", pin: ca.Fingerprint(), serverName: "127.0.0.1", cert: srv},
		{name: "configured name", pin: ca.Fingerprint(), serverName: "interlock.example", cert: srv},
		{name: "wrong pin", pin: other.Fingerprint(), serverName: "127.0.0.1", cert: srv, wantErr: "does not contain the pinned CA"},
		{name: "name not in certificate", pin: ca.Fingerprint(), serverName: "evil.example", cert: srv, wantErr: "does not verify"},
		{name: "agent certificate cannot serve", pin: ca.Fingerprint(), serverName: "127.0.0.1", cert: asServer, wantErr: "does not verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pki.PinnedTLSConfig(tt.pin)
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(t, tt.cert, cfg, tt.serverName)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("handshake err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	for _, bad := range []string{"", "abc", "SHA256:zz", "SHA1:" + strings.Repeat("0", 64)} {
		if _, err := pki.PinnedTLSConfig(bad); err == nil {
			t.Errorf("PinnedTLSConfig(%q) accepted a malformed pin", bad)
		}
	}
}

func TestServerCertificate(t *testing.T) {
	ca, _ := newCA(t, nil)
	c, err := ca.ServerCertificate([]string{"interlock.example", "10.0.0.5", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range c.Leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "::1", "10.0.0.5"}, ips); diff != "" {
		t.Errorf("IP SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"localhost", "interlock.example"}, c.Leaf.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, c.Leaf.ExtKeyUsage); diff != "" {
		t.Errorf("EKU (-want +got):\n%s", diff)
	}
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], ca.Certificate().Raw) {
		t.Error("the chain does not carry the CA after the leaf; pinned clients could not find it")
	}
}

func TestAgentCertificates(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	ca, _ := newCA(t, func() time.Time { return now })
	other, _ := newCA(t, func() time.Time { return now })
	_, csr, err := pki.NewAgentKey(nil, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignAgentCSR(csr, "host_abc", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage); diff != "" {
		t.Errorf("agent EKU (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name    string
		ca      *pki.CA
		at      time.Time
		want    string
		wantErr bool
	}{
		{name: "valid", ca: ca, at: now.Add(30 * time.Minute), want: "host_abc"},
		{name: "expired", ca: ca, at: now.Add(2 * time.Hour), wantErr: true},
		{name: "other CA", ca: other, at: now, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ca.VerifyAgent(cert, tt.at)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifyAgent err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("host ID = %q, want %q", got, tt.want)
			}
		})
	}
	srv, _ := ca.ServerCertificate(nil)
	if _, err := ca.VerifyAgent(srv.Leaf, now); err == nil {
		t.Error("a server certificate was accepted as an agent's client certificate")
	}

	// A CSR whose signature does not verify is refused.
	block, _ := pem.Decode(csr)
	block.Bytes[len(block.Bytes)-3] ^= 0xff
	if _, err := ca.SignAgentCSR(pem.EncodeToMemory(block), "host_x", time.Hour); err == nil {
		t.Error("signed a CSR with a broken signature")
	}
	if _, err := ca.SignAgentCSR([]byte("nonsense"), "host_x", time.Hour); err == nil {
		t.Error("signed a non-PEM CSR")
	}
	if _, err := ca.SignAgentCSR(csr, "bad id", time.Hour); err == nil {
		t.Error("signed a certificate for a malformed host ID")
	}
}
