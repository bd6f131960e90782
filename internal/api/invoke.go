package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// invokedAsKey carries the principal of an in-process Invoke. The key type
// is unexported, so only Invoke can set it: a request from the network
// never carries it and always authenticates with a session and DPoP proof.
type invokedAsKey struct{}

// Invoke serves one API route in-process for principal p, who has been
// authenticated by another front door (the web console's cookie session).
// Everything after authentication is the route's own: the same Cedar
// decision (recorded when refused), the same handler and service call, the
// same halted check. in, if not nil, is sent as the JSON body; out, if not
// nil, receives the JSON answer. An error answer comes back as a
// *usererr.Error carrying the API's sentence (a 5xx as a plain error).
//
// remoteAddr is the browser's address, so policies on context.source_ip
// see the person, not the console.
func (s *Server) Invoke(ctx context.Context, p wire.Principal, remoteAddr, method, target string, in, out any) error {
	if p.Kind != "person" || p.SessionID == "" {
		return fmt.Errorf("invoke %s %s: only a person's session may be served in-process", method, target)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("invoke %s %s: encode body: %w", method, target, err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(context.WithValue(ctx, invokedAsKey{}, p), method, "https://interlock.invalid"+target, body)
	if err != nil {
		return fmt.Errorf("invoke %s %s: %w", method, target, err)
	}
	// An id of "." or ".." from a console address makes a target such as
	// /v1/ops/../halt, which the mux answers with a redirect to the
	// cleaned path instead of serving it. Such a target names nothing.
	if path.Clean(r.URL.Path) != r.URL.Path {
		return usererr.New(usererr.NotFound, "not_found", "There is no such item: \".\" and \"..\" are not ids.")
	}
	if in != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	r.RemoteAddr = remoteAddr
	rec := &recorder{header: http.Header{}}
	s.mux.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 && rec.status < 400 {
		// No API route redirects: a redirect is the mux refusing the
		// target, and never the route's success.
		return fmt.Errorf("invoke %s %s: redirected (status %d) to %q", method, target, rec.status, rec.header.Get("Location"))
	}
	if rec.status >= 400 {
		var prob wire.Problem
		_ = json.Unmarshal(rec.body.Bytes(), &prob)
		if rec.status >= 500 && rec.status != http.StatusServiceUnavailable {
			return fmt.Errorf("invoke %s %s: status %d (request %s)", method, target, rec.status, prob.RequestID)
		}
		return &usererr.Error{Kind: kindOf(rec.status), Code: prob.Code, Msg: strings.TrimSpace(prob.Detail), Details: prob.Details}
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("invoke %s %s: decode answer: %w", method, target, err)
		}
	}
	return nil
}

func invokedAs(ctx context.Context) (wire.Principal, bool) {
	p, ok := ctx.Value(invokedAsKey{}).(wire.Principal)
	return p, ok
}

func kindOf(status int) usererr.Kind {
	switch status {
	case 401:
		return usererr.Unauthenticated
	case 403:
		return usererr.Forbidden
	case 404:
		return usererr.NotFound
	case 409, 503:
		return usererr.Conflict
	case 413:
		return usererr.TooLarge
	case 429:
		return usererr.RateLimited
	default:
		return usererr.Invalid
	}
}

// recorder is the ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// AllowPublicWrite spends one token of ip's budget for public writes
// (sign-in, bootstrap, invitation, enrollment) and reports whether there
// was one. The console's own sign-in routes share this budget, so a second
// door to sign-in is not a second budget for guessing.
func (s *Server) AllowPublicWrite(ip string) bool { return s.public.allow(ip, time.Now()) }
