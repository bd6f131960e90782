// Package apiclient is the typed HTTPS client of Interlock's API, used by
// the CLI and the agent. It pins the server's CA (the caller builds the
// TLS config), attaches the session token with a fresh DPoP proof to every
// request, and turns RFC 9457 problem bodies into *Error values.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// Prover makes a DPoP proof for one request. token is the session token
// ("" before login); the proof binds to it.
type Prover func(method, url, token string) (string, error)

// Config configures a Client.
type Config struct {
	// Server is the base URL, e.g. https://127.0.0.1:8443.
	Server string
	// TLS pins the server's CA. It MUST be set; there is no insecure mode.
	TLS *tls.Config
	// Token is the session token; empty for public routes.
	Token string
	// Prove signs each request with the device key; nil sends no proof.
	Prove Prover
	// Timeout bounds each non-streaming request; 0 means 30 s.
	Timeout time.Duration
}

// Client talks to one Interlock server.
type Client struct {
	base    string
	http    *http.Client
	stream  *http.Client
	token   string
	prove   Prover
	timeout time.Duration
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.TLS == nil {
		return nil, errors.New("apiclient: a pinned TLS config is required")
	}
	base := strings.TrimRight(cfg.Server, "/")
	if !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("server %q must be an https:// URL", cfg.Server)
	}
	tr := &http.Transport{TLSClientConfig: cfg.TLS, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &Client{
		base:    base,
		http:    &http.Client{Transport: tr, Timeout: timeout},
		stream:  &http.Client{Transport: tr},
		token:   cfg.Token,
		prove:   cfg.Prove,
		timeout: timeout,
	}, nil
}

// Error is a refusal or failure reported by the server.
type Error struct {
	Status  int
	Problem wire.Problem
}

func (e *Error) Error() string {
	if e.Problem.Detail != "" {
		return e.Problem.Detail
	}
	return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
}

// Code returns the problem's stable code ("" if err is not an *Error).
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Code
	}
	return ""
}

// Do sends in (if not nil) as JSON and decodes the answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, c.http, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Stream sends a request whose answer is read for as long as ctx lives
// (JSON lines). The caller MUST close the body.
func (c *Client) Stream(ctx context.Context, method, path string, in any) (io.ReadCloser, error) {
	resp, err := c.send(ctx, c.stream, method, path, in)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.prove != nil {
		u := *req.URL
		u.RawQuery, u.Fragment = "", ""
		proof, err := c.prove(method, u.String(), c.token)
		if err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "DPoP "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e.Problem) != nil || e.Problem.Detail == "" {
			e.Problem.Detail = fmt.Sprintf("server answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), strings.TrimSpace(string(b)))
		}
		return nil, e
	}
	return resp, nil
}
