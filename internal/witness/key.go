package witness

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// KeyPrefix starts a witness key file: "ilk_witness_" and the base64url
// Ed25519 seed (the format `interlock log witness --init` writes), so
// interlock's scanner recognises a leaked one.
const KeyPrefix = "ilk_witness_"

// LoadOrCreateKey returns the witness's cosigner from keyFile, creating
// the key (0600) on first start. The witness's name is fixed at creation
// and kept in keyFile+".name": a name changed later would change the
// verifier key that logs and clients pinned. name may be empty to keep the
// stored one. created reports a new key.
func LoadOrCreateKey(keyFile, name string) (c *tlog.Cosigner, created bool, err error) {
	nameFile := keyFile + ".name"
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		if name == "" {
			return nil, false, errors.New("witness: name the new witness with --name")
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, false, err
		}
		c, err := tlog.NewCosigner(name, ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
			return nil, false, fmt.Errorf("witness: create key directory: %w", err)
		}
		if err := writeFileAtomic(nameFile, []byte(name+"\n"), 0o644); err != nil {
			return nil, false, fmt.Errorf("witness: write name: %w", err)
		}
		f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("witness: create key: %w", err)
		}
		if _, err := f.WriteString(KeyPrefix + base64.RawURLEncoding.EncodeToString(seed) + "\n"); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("witness: write key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("witness: write key: %w", err)
		}
		return c, true, f.Close()
	}
	if err != nil {
		return nil, false, fmt.Errorf("witness: read key: %w", err)
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("witness: %s is readable by others (mode %v); chmod 600 it", keyFile, fi.Mode().Perm())
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), KeyPrefix)
	seed, err := base64.RawURLEncoding.DecodeString(s)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, false, fmt.Errorf("witness: %s is not a witness key file", keyFile)
	}
	stored := ""
	if nb, err := os.ReadFile(nameFile); err == nil {
		stored = strings.TrimSpace(string(nb))
	}
	switch {
	case stored == "" && name == "":
		return nil, false, fmt.Errorf("witness: %s has no name file %s; give the witness's name with --name", keyFile, nameFile)
	case stored != "" && name != "" && stored != name:
		return nil, false, fmt.Errorf("witness: this key is named %q (%s); a different --name %q would change the verifier key everyone pinned", stored, nameFile, name)
	case stored == "":
		stored = name
	}
	c, err = tlog.NewCosigner(stored, ed25519.NewKeyFromSeed(seed))
	return c, false, err
}

// LoadOrCreateTLS returns the witness's TLS certificate from certFile and
// keyFile, creating a self-signed ECDSA P-256 certificate for hosts (DNS
// names or IPs) on first start. The certificate file is public: give it to
// the log (`interlock serve --log-witness-ca FILE`) so it can check whom
// it talks to. fingerprint is the SHA-256 of the certificate.
func LoadOrCreateTLS(certFile, keyFile string, hosts []string) (cert tls.Certificate, fingerprint string, err error) {
	if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
		if err := createSelfSigned(certFile, keyFile, hosts); err != nil {
			return tls.Certificate{}, "", err
		}
	}
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("witness: load TLS certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return cert, "SHA256:" + hex.EncodeToString(sum[:]), nil
}

func createSelfSigned(certFile, keyFile string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "interlock witness"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own trust anchor
	}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("witness: create TLS certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("witness: write TLS key: %w", err)
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("witness: write TLS certificate: %w", err)
	}
	return nil
}
