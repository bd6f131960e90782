// Package pki owns Interlock's certificate authority: the CA key (sealed at
// rest through a [Sealer]), the server certificate of the HTTPS listener,
// agent client certificates signed from CSRs, and the CA pinning that
// clients use instead of system roots. It does no network or SQL I/O; only
// files under the CA directory. internal/app, internal/agenthub,
// internal/agent, internal/apiclient and internal/cli may import it.
//
// Certificates it issues:
//   - the CA: ECDSA P-256, 10 years, path length 0 (it signs leaves only);
//   - the server certificate: ECDSA P-256, server-auth EKU only, a fresh
//     in-memory key (never written to disk), reissued before it expires;
//   - agent certificates: the agent's own key from its CSR, client-auth EKU
//     only, CommonName = host ID and URI SAN "urn:interlock:host:<host ID>".
//
// TLS 1.3 is the minimum everywhere.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Sealer seals secrets at rest; the KMS root key implements it. aad binds
// a sealed value to its identity so it cannot be swapped for another.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// File names inside the CA directory.
const (
	CACertFile = "ca.pem"        // the CA certificate, PEM (public)
	CAKeyFile  = "ca.key.sealed" // the CA's PKCS#8 private key, sealed
)

// HostURIPrefix is the URI SAN prefix of agent certificates.
const HostURIPrefix = "urn:interlock:host:"

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 30 * 24 * time.Hour
	clockSkew      = 5 * time.Minute
)

// CA is a loaded certificate authority. Its methods are safe for
// concurrent use.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
	now  func() time.Time
	rand io.Reader
}

// LoadOrCreateCA loads the CA from dataDir/ca/, creating it (directory
// 0700, files 0600) on first start. The private key is stored only as
// sealer.Seal(PKCS#8, aad "pki:ca-key:"+fingerprint), so it is never on
// disk in plaintext. If exactly one of the two files exists the CA is
// treated as damaged and an error is returned rather than replacing it:
// replacing a CA would strand every enrolled agent. now and random may be
// nil (time.Now, crypto/rand).
func LoadOrCreateCA(dataDir string, sealer Sealer, now func() time.Time, random io.Reader) (*CA, error) {
	if sealer == nil {
		return nil, errors.New("pki: a Sealer is required to keep the CA key sealed at rest")
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Reader
	}
	dir := filepath.Join(dataDir, "ca")
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	sealed, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return loadCA(certPEM, sealed, sealer, now, random)
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		// first start
	case certErr != nil && !errors.Is(certErr, os.ErrNotExist):
		return nil, fmt.Errorf("read CA certificate: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, os.ErrNotExist):
		return nil, fmt.Errorf("read CA key: %w", keyErr)
	default:
		return nil, fmt.Errorf("the CA in %s is incomplete (one of %s and %s is missing); restore it from a backup — creating a new CA would strand every enrolled agent", dir, CACertFile, CAKeyFile)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	t := now()
	serial, err := newSerial(random)
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 4)
	if _, err := io.ReadFull(random, suffix); err != nil {
		return nil, fmt.Errorf("CA name: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Interlock CA " + hex.EncodeToString(suffix), Organization: []string{"Interlock"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              t.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	sealed, err = sealer.Seal(pkcs8, keyAAD(cert))
	clear(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("seal CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA directory: %w", err)
	}
	// Key first: a crash between the two writes leaves a key without a
	// certificate, which the next start reports instead of overwriting.
	if err := WriteFileAtomic(keyPath, sealed, 0o600); err != nil {
		return nil, fmt.Errorf("write CA key: %w", err)
	}
	if err := WriteFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return newCA(cert, key, now, random), nil
}

func loadCA(certPEM, sealed []byte, sealer Sealer, now func() time.Time, random io.Reader) (*CA, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate is not a CA")
	}
	pkcs8, err := sealer.Open(sealed, keyAAD(cert))
	if err != nil {
		return nil, fmt.Errorf("unseal CA key (wrong root key, or the key file does not belong to this certificate): %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("parse CA key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	return newCA(cert, key, now, random), nil
}

func newCA(cert *x509.Certificate, key crypto.Signer, now func() time.Time, random io.Reader) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool, now: now, rand: random}
}

func keyAAD(cert *x509.Certificate) []byte { return []byte("pki:ca-key:" + Fingerprint(cert)) }

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertificatePEM returns the CA certificate in PEM form.
func (ca *CA) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Fingerprint is the CA's pin, as printed by `interlock serve`.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// Pool returns a pool holding only this CA (for tls.Config.ClientCAs).
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// ServerCertificate issues a server certificate for hosts (IP addresses or
// DNS names; 127.0.0.1, ::1 and localhost are always included) with a new
// in-memory key. The returned chain carries the CA after the leaf, so a
// client pinning the CA's fingerprint finds it in the handshake.
func (ca *CA) ServerCertificate(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := newSerial(ca.rand)
	if err != nil {
		return tls.Certificate{}, err
	}
	t := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "interlock server", Organization: []string{"Interlock"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              minTime(t.Add(serverValidity), ca.cert.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := map[string]bool{}
	for _, h := range append([]string{"127.0.0.1", "::1", "localhost"}, hosts...) {
		h = strings.TrimSpace(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerTLSConfig is the listener's TLS configuration: TLS 1.3 minimum,
// HTTP/2 and HTTP/1.1, a server certificate for hosts that is reissued in
// memory when half its life has passed, and client certificates verified
// against this CA when given (tls.VerifyClientCertIfGiven): people's routes
// carry none, agent routes check for one with agenthub's HostIDFromRequest.
func (ca *CA) ServerTLSConfig(hosts []string) (*tls.Config, error) {
	first, err := ca.ServerCertificate(hosts)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	cur := &first
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  ca.Pool(),
		Time:       ca.now,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			half := cur.Leaf.NotBefore.Add(cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore) / 2)
			if ca.now().After(half) {
				next, err := ca.ServerCertificate(hosts)
				if err != nil {
					return cur, nil // keep serving the still-valid one
				}
				cur = &next
			}
			return cur, nil
		},
	}, nil
}

// SignAgentCSR issues a client certificate for hostID from a PEM CSR. The
// CSR's signature must verify (proof of possession); its subject and
// extensions are ignored: the certificate names only hostID, allows only
// client authentication, and lives ttl (bounded by the CA's own expiry).
func (ca *CA) SignAgentCSR(csrPEM []byte, hostID string, ttl time.Duration) ([]byte, error) {
	if hostID == "" || strings.ContainsAny(hostID, " /\n\r\x00") {
		return nil, fmt.Errorf("host ID %q is not valid", hostID)
	}
	if ttl <= 0 {
		return nil, errors.New("certificate lifetime must be positive")
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(ca.rand)
	if err != nil {
		return nil, err
	}
	uri, err := url.Parse(HostURIPrefix + hostID)
	if err != nil {
		return nil, fmt.Errorf("host URI: %w", err)
	}
	t := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostID, Organization: []string{"Interlock agents"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              minTime(t.Add(ttl), ca.cert.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign agent certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// VerifyAgent checks that cert (with optional intermediates, normally
// none) chains to this CA at now for client authentication, and returns
// the host ID it names.
func (ca *CA) VerifyAgent(cert *x509.Certificate, now time.Time) (string, error) {
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", err
	}
	return HostID(cert)
}

// HostID returns the host ID an agent certificate names: its URI SAN,
// which must agree with its CommonName.
func HostID(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if id, ok := strings.CutPrefix(u.String(), HostURIPrefix); ok && id != "" {
			if id != cert.Subject.CommonName {
				return "", errors.New("agent certificate's URI and CommonName disagree")
			}
			return id, nil
		}
	}
	return "", errors.New("certificate names no Interlock host")
}

// ParseCSR decodes and checks a PEM certificate request: its signature
// must verify and its key must be ECDSA (P-256 or P-384), Ed25519 or RSA
// of at least 2048 bits.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the CSR is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, errors.New("CSR key must be ECDSA P-256 or P-384")
		}
	case interface{ Size() int }: // *rsa.PublicKey
		if k.Size() < 256 {
			return nil, errors.New("CSR RSA key must be at least 2048 bits")
		}
	default:
		if csr.PublicKeyAlgorithm != x509.Ed25519 {
			return nil, errors.New("CSR key type is not supported")
		}
	}
	return csr, nil
}

// NewAgentKey makes an agent's key and a CSR for it (hostname as the
// requested CommonName; the CA replaces it with the host ID).
func NewAgentKey(random io.Reader, hostname string) (key *ecdsa.PrivateKey, csrPEM []byte, err error) {
	if random == nil {
		random = rand.Reader
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, err
	}
	csrPEM, err = AgentCSR(random, key, hostname)
	return key, csrPEM, err
}

// AgentCSR makes a CSR for an existing agent key.
func AgentCSR(random io.Reader, key *ecdsa.PrivateKey, hostname string) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	der, err := x509.CreateCertificateRequest(random, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCertificatePEM decodes the first CERTIFICATE block of data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// Fingerprint is the pin form of a certificate: "SHA256:" and the
// lowercase hex SHA-256 of its DER bytes (the same form as
// apiclient.Fingerprint).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint decodes a "SHA256:<64 hex digits>" pin.
func ParseFingerprint(fp string) ([]byte, error) {
	want, ok := strings.CutPrefix(strings.TrimSpace(fp), "SHA256:")
	if !ok {
		return nil, fmt.Errorf("CA fingerprint %q must start with SHA256: (copy it from `interlock serve`'s output)", fp)
	}
	sum, err := hex.DecodeString(strings.ToLower(want))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("CA fingerprint %q is not SHA256: followed by 64 hex digits", fp)
	}
	return sum, nil
}

// MatchesFingerprint reports in constant time whether cert has the pin.
func MatchesFingerprint(cert *x509.Certificate, fp string) bool {
	want, err := ParseFingerprint(fp)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(cert.Raw)
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

// ErrPinMismatch is the handshake error when the server's chain does not
// contain the pinned CA.
var ErrPinMismatch = errors.New("the server's certificate chain does not contain the pinned CA: wrong server or wrong --ca-fingerprint")

// PinnedTLSConfig returns a TLS 1.3 client config that trusts exactly the
// CA with this fingerprint: the server's handshake chain MUST contain a
// certificate with that fingerprint (compared in constant time), and the
// server's leaf MUST verify against it for server authentication and the
// dialled name. No system roots are consulted and there is no way to skip
// the check. Set Certificates or GetClientCertificate for mTLS.
func PinnedTLSConfig(fingerprint string) (*tls.Config, error) {
	want, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The standard verification would use system roots; VerifyConnection
		// replaces it with the pinned CA, which is strictly narrower.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server presented no certificate")
			}
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				sum := sha256.Sum256(c.Raw)
				if subtle.ConstantTimeCompare(sum[:], want) == 1 {
					ca = c
				}
			}
			if ca == nil {
				return ErrPinMismatch
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				if !bytes.Equal(c.Raw, ca.Raw) {
					inter.AddCert(c)
				}
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				DNSName:       cs.ServerName,
				Roots:         roots,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}); err != nil {
				return fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
			}
			return nil
		},
	}, nil
}

func newSerial(random io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // positive and non-zero
	return new(big.Int).SetBytes(b), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// WriteFileAtomic writes data to path with mode through a synced temporary
// file and a rename, so a crash leaves either the old file or the new one.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
