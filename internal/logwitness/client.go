package logwitness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// Endpoint is one witness the log pushes its checkpoints to.
type Endpoint struct {
	// URL is the witness's submission prefix; add-checkpoint is under it.
	URL string
	// VKey is the witness's cosignature/v1 verifier key.
	VKey     string
	verifier note.Verifier
}

// Name is the witness's name (from its key).
func (e Endpoint) Name() string { return e.verifier.Name() }

// ParseEndpoint parses "URL+VKEY", e.g.
// "https://witness.example:8444+witness.example/w1+1a2b3c4d+BASE64". The
// URL ends at the first '+': witness URLs with a '+' are not supported.
func ParseEndpoint(s string) (Endpoint, error) {
	u, vkey, ok := strings.Cut(strings.TrimSpace(s), "+")
	if !ok {
		return Endpoint{}, fmt.Errorf("witness %q is not URL+VKEY", s)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return Endpoint{}, fmt.Errorf("witness %q: %q is not an http(s) URL", s, u)
	}
	v, err := tlog.NewVerifier(vkey)
	if err != nil {
		return Endpoint{}, fmt.Errorf("witness %q: %q is not a verifier key: %v", s, vkey, err)
	}
	return Endpoint{URL: strings.TrimSuffix(u, "/"), VKey: vkey, verifier: v}, nil
}

// IsEndpoint reports whether a --log-witness value names a URL (push) and
// not only a verifier key (the witness pulls and submits itself).
func IsEndpoint(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// HTTPClient returns the client the log uses to reach witnesses: TLS
// certificates are checked against the system's roots plus the PEM files
// in caFiles (a witness's self-made certificate). Every answer that
// matters is also authenticated by the witness's key, so TLS here keeps
// the conversation private and its endpoint honest, not the log safe.
func HTTPClient(caFiles []string, timeout time.Duration) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range caFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("witness CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("witness CA %s holds no PEM certificate", f)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// ConflictError is a witness's 409: it has cosigned a checkpoint of Size
// (or a different root at the size sent).
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the witness has cosigned a checkpoint of size %d", e.Size)
}

// StatusError is any other refusal.
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("the witness answered %d: %s", e.Status, e.Msg)
}

// addCheckpoint sends one C2SP tlog-witness add-checkpoint request and
// returns the note signature lines of the answer.
func addCheckpoint(ctx context.Context, c *http.Client, endpoint string, old uint64, proof [][]byte, signed []byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(old, 10) + "\n")
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(signed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/add-checkpoint", &b)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read the witness's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusConflict && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/x.tlog.size"):
		n, err := strconv.ParseUint(strings.TrimSuffix(string(body), "\n"), 10, 64)
		if err != nil {
			return nil, errors.New("the witness answered 409 without a valid size")
		}
		return nil, &ConflictError{Size: n}
	default:
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, &StatusError{Status: resp.StatusCode, Msg: msg}
	}
}
