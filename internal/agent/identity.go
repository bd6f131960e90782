package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
)

// Files in an agent's data directory.
const (
	// certFile holds the client certificate and its PKCS#8 key in one PEM
	// file (0600), so renewal replaces both with one atomic rename.
	certFile     = "agent.pem"
	caFile       = "ca.pem"        // the server's CA, as pinned
	identityFile = "identity.json" // written last: its presence means "enrolled"
	// enrollKeyFile holds the key of an enrollment not finished yet.
	enrollKeyFile = "enroll-key.pem"
	ledgerFile    = "steps.log" // step IDs already started, one per line
)

// identity is what enrollment leaves in the data directory.
type identity struct {
	HostID        string    `json:"host_id"`
	Hostname      string    `json:"hostname"`
	Server        string    `json:"server"`
	CAFingerprint string    `json:"ca_fingerprint"`
	EnrolledAt    time.Time `json:"enrolled_at"`
	Services      []string  `json:"services,omitempty"`

	cert tls.Certificate
}

func loadIdentity(dir string) (identity, error) {
	var id identity
	raw, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		return id, err // os.ErrNotExist: not enrolled
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		return id, fmt.Errorf("read %s: %w", identityFile, err)
	}
	id.cert, err = tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, certFile))
	if err != nil {
		return id, fmt.Errorf("load the agent's key and certificate from %s: %w", dir, err)
	}
	return id, nil
}

// enroll makes a key and CSR, spends the join token, checks what comes back
// and saves the identity (identity.json last).
func enroll(ctx context.Context, cfg Config) (identity, error) {
	key, err := enrollmentKey(cfg)
	if err != nil {
		return identity{}, err
	}
	csr, err := pki.AgentCSR(cfg.Rand, key, cfg.Hostname)
	if err != nil {
		return identity{}, fmt.Errorf("make certificate request: %w", err)
	}
	tlsCfg, err := pki.PinnedTLSConfig(cfg.CAFingerprint)
	if err != nil {
		return identity{}, err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(wire.EnrollRequest{Token: cfg.Token, Hostname: cfg.Hostname, CSR: string(csr)})

	var resp wire.EnrollResponse
	for attempt := 0; ; attempt++ {
		err = postJSON(ctx, client, cfg.Server+"/v1/agent/enroll", body, &resp)
		var pe *problemError
		if err == nil || errors.As(err, &pe) && pe.Status < 500 && pe.Status != http.StatusTooManyRequests || errors.Is(err, pki.ErrPinMismatch) {
			break // done, or refused for good (bad token, bad request, not the pinned server)
		}
		cfg.Log.WarnContext(ctx, "enrollment failed; retrying", slog.String("error", err.Error()))
		if !sleep(ctx, backoff(attempt, cfg.MaxBackoff)) {
			return identity{}, ctx.Err()
		}
	}
	if err != nil {
		return identity{}, fmt.Errorf("enroll: %w", err)
	}

	if err := checkIssued(cfg, key, resp.Certificate, resp.CA, resp.HostID); err != nil {
		return identity{}, fmt.Errorf("enroll: %w", err)
	}
	pair, err := keyPairPEM(resp.Certificate, key)
	if err != nil {
		return identity{}, err
	}
	if resp.LogKey != "" {
		// Pinned before identity.json marks the enrollment done.
		if err := pinLogKey(cfg.DataDir, resp.LogKey); err != nil {
			return identity{}, fmt.Errorf("enroll: %w", err)
		}
	}
	id := identity{HostID: resp.HostID, Hostname: cfg.Hostname, Server: cfg.Server, CAFingerprint: cfg.CAFingerprint,
		EnrolledAt: cfg.Now().UTC(), Services: resp.Services}
	idJSON, _ := json.MarshalIndent(id, "", "  ")
	for _, f := range []struct {
		name string
		data []byte
	}{{certFile, pair}, {caFile, []byte(resp.CA)}, {identityFile, append(idJSON, '\n')}} {
		if err := writeFileAtomic(filepath.Join(cfg.DataDir, f.name), f.data, 0o600); err != nil {
			return identity{}, fmt.Errorf("save %s: %w", f.name, err)
		}
	}
	id.cert, err = tls.X509KeyPair(pair, pair)
	clear(pair)
	if err != nil {
		return identity{}, err
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, enrollKeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		cfg.Log.WarnContext(ctx, "remove the enrollment key file", slog.String("error", err.Error()))
	}
	cfg.Log.InfoContext(ctx, "enrolled", slog.String("host", id.HostID), slog.Any("services", resp.Services))
	return id, nil
}

// enrollmentKey returns the key to enroll with: the one an unfinished
// enrollment left in the data directory, or a new one, saved there (0600)
// before the join token is sent. The server gives the same host back to
// the same token and key, so an agent whose answer was lost (a timeout, a
// failed response after the server committed, a restart mid-enrollment)
// enrolls on its next try instead of stranding a spent token.
func enrollmentKey(cfg Config) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(cfg.DataDir, enrollKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		defer clear(b)
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%s is not a PEM private key; remove it to enroll with a new key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if ek, ok := k.(*ecdsa.PrivateKey); err == nil && ok {
			return ek, nil
		}
		return nil, fmt.Errorf("%s does not hold an ECDSA key; remove it to enroll with a new key", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	key, _, err := pki.NewAgentKey(cfg.Rand, cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("generate agent key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(pkcs8)
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return nil, fmt.Errorf("save the enrollment key: %w", err)
	}
	return key, nil
}

// checkIssued checks a certificate the server issued: the CA is the pinned
// one, the certificate verifies against it for client authentication now,
// it is for key, and it names hostID.
func checkIssued(cfg Config, key *ecdsa.PrivateKey, certPEM, caPEM, hostID string) error {
	ca, err := pki.ParseCertificatePEM([]byte(caPEM))
	if err != nil || !pki.MatchesFingerprint(ca, cfg.CAFingerprint) {
		return errors.New("the server sent a CA that does not match --ca-fingerprint")
	}
	leaf, err := pki.ParseCertificatePEM([]byte(certPEM))
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cfg.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the issued certificate does not verify against the CA: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return errors.New("the issued certificate is not for this agent's key")
	}
	if hid, err := pki.HostID(leaf); err != nil || hid != hostID {
		return fmt.Errorf("the certificate names host %q, not %q", hid, hostID)
	}
	return nil
}

// keyPairPEM is the certificate followed by the PKCS#8 key, one PEM file.
func keyPairPEM(certPEM string, key *ecdsa.PrivateKey) ([]byte, error) {
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(pkcs8)
	return append([]byte(certPEM), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...), nil
}

// problemError is a non-2xx answer from the server.
type problemError struct {
	Status int
	// RetryAfter is the answer's Retry-After (in seconds), 0 if none.
	RetryAfter time.Duration
	wire.Problem
}

func (e *problemError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("server said %d %s: %s", e.Status, e.Code, e.Detail)
	}
	return fmt.Sprintf("server said %d", e.Status)
}

// postJSON POSTs body and decodes a 2xx JSON answer into out (nil: none).
func postJSON(ctx context.Context, client *http.Client, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readProblem(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

func readProblem(resp *http.Response) error {
	pe := &problemError{Status: resp.StatusCode}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		pe.RetryAfter = time.Duration(secs) * time.Second
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&pe.Problem)
	return pe
}

// writeFileAtomic replaces path in one step (see pki.WriteFileAtomic).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return pki.WriteFileAtomic(path, data, mode)
}
