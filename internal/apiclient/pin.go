package apiclient

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint is the pin form of a CA certificate: "SHA256:" and the
// lowercase hex SHA-256 of its DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// PinnedTLS returns a TLS 1.3 client config that trusts exactly the CA
// whose fingerprint is given: on first contact the server's chain must
// contain that CA, and the server certificate must verify against it.
// No system roots are consulted, and there is no way to skip the check.
func PinnedTLS(fingerprint string) (*tls.Config, error) {
	want, ok := strings.CutPrefix(strings.TrimSpace(fingerprint), "SHA256:")
	if !ok {
		return nil, fmt.Errorf("CA fingerprint %q must start with SHA256: (copy it from `interlock serve`'s output)", fingerprint)
	}
	wantSum, err := hex.DecodeString(strings.ToLower(want))
	if err != nil || len(wantSum) != sha256.Size {
		return nil, fmt.Errorf("CA fingerprint %q is not SHA256: followed by 64 hex digits", fingerprint)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The standard verification would use system roots; we replace it
		// with the pinned CA below, which is strictly narrower.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				sum := sha256.Sum256(c.Raw)
				if subtle.ConstantTimeCompare(sum[:], wantSum) == 1 {
					ca = c
					break
				}
			}
			if ca == nil || len(cs.PeerCertificates) == 0 {
				return errors.New("the server's certificate chain does not contain the pinned CA: wrong server or wrong --ca-fingerprint")
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				DNSName:       cs.ServerName,
				Roots:         roots,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
			}
			return nil
		},
	}, nil
}
