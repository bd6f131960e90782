// Package console serves Interlock's web console under /ui/: approvals
// inbox, live operations, fleet, log explorer and passkeys, for approvers
// and on-call people in a browser.
//
// It owns no authorization and no business logic. A browser signs in with a
// password and one-time code, or a passkey, and gets a console session (a
// login session held in a __Host- cookie; see identity.ConsoleSignIn).
// Every page and action then calls the API in-process as that person
// (api.Server.Invoke): the same route, the same Cedar decision, the same
// service call and audit entry as `interlock` on the command line. A
// refusal reads the same too.
//
// Pages are html/template, assets are embedded (go:embed), JavaScript is
// plain files under static/ (no inline script, no build step), and every
// answer carries a Content-Security-Policy that allows nothing but this
// origin. Every POST must carry the session's CSRF token and come from this
// origin (http.CrossOriginProtection).
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

//go:embed templates/*.html templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionCookie is the console's cookie. The __Host- prefix makes the
// browser refuse it unless it is Secure, has Path=/ and no Domain, so no
// other host (not even a sibling subdomain) can set or read it.
const SessionCookie = "__Host-interlock-console"

// API serves one API route in-process as an authenticated person.
// api.Server implements it.
type API interface {
	Invoke(ctx context.Context, p wire.Principal, remoteAddr, method, target string, in, out any) error
}

// Sessions starts and checks console sessions. identity.Service
// implements it.
type Sessions interface {
	ConsoleSignIn(ctx context.Context, req identity.ConsoleSignInRequest) (identity.Session, error)
	StartPasskeySession(ctx context.Context, personID, credentialID, sourceIP, userAgent string) (identity.Session, error)
	AuthenticateConsole(ctx context.Context, token string) (wire.Principal, error)
	RecordPasskeyMFA(ctx context.Context, p wire.Principal, credentialID, purpose string) (time.Time, error)
}

// Config configures the console. API and Sessions are required.
type Config struct {
	API      API
	Sessions Sessions
	// Passkeys, if set, offers sign-in with a passkey.
	Passkeys Passkeys
	// AllowSignIn, if set, spends one of the source address's sign-in
	// attempts and reports whether it had one (api.Server's public write
	// budget, shared with the API's own sign-in).
	AllowSignIn func(ip string) bool
	Now         func() time.Time // nil means time.Now
	Log         *slog.Logger     // nil discards
}

// Console is the /ui/ handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	pages map[string]*template.Template
	mux   *http.ServeMux
	xorg  *http.CrossOriginProtection
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Sessions == nil {
		return nil, errors.New("console: API and Sessions are required")
	}
	c := &Console{cfg: cfg, log: cfg.Log, now: cfg.Now, mux: http.NewServeMux(), xorg: http.NewCrossOriginProtection()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.routes()
	return c, nil
}

func (c *Console) parseTemplates() error {
	c.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/*.tmpl", n)
		if err != nil {
			return fmt.Errorf("console: parse %s: %w", n, err)
		}
		c.pages[base] = t
	}
	return nil
}

// securityHeaders are on every console answer: nothing but this origin may
// run script, load anything, be framed or receive a form; no inline script
// or style at all.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// ServeHTTP serves /ui/….
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	defer func() {
		if v := recover(); v != nil {
			c.log.ErrorContext(r.Context(), "panic in console handler", slog.String("path", r.URL.Path), slog.Any("panic", v))
			http.Error(w, "The console failed to answer; see the server log.", http.StatusInternalServerError)
		}
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Cross-origin writes are refused before anything reads the form.
		if err := c.xorg.Check(r); err != nil {
			c.refuse(w, r, http.StatusForbidden, "This form was not sent from the console's own page (cross-origin request refused).")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		// The form is read here, once, so that a form too large or
		// unreadable is refused as such, not as a missing CSRF token.
		if status, msg := readForm(r); status != 0 {
			c.refuse(w, r, status, msg)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// maxFormBytes bounds a console form: reasons, codes and a passkey's
// answer fit many times over.
const maxFormBytes = 64 << 10

// readForm parses the request's form; status is 0 when it could, else the
// 4xx to answer with msg.
func readForm(r *http.Request) (int, string) {
	var err error
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "multipart/form-data") {
		err = r.ParseMultipartForm(maxFormBytes)
	} else {
		err = r.ParseForm()
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, "The form is too large: a console form holds at most 64 KiB."
	default:
		return http.StatusBadRequest, "The form could not be read: it is not a well-formed form."
	}
}

// signInAllowed spends a sign-in attempt of the caller's address; when
// there is none left it answers 429 and reports false.
func (c *Console) signInAllowed(w http.ResponseWriter, r *http.Request, asJSON bool) bool {
	if c.cfg.AllowSignIn == nil || c.cfg.AllowSignIn(sourceIP(r)) {
		return true
	}
	msg := "Too many sign-in attempts from " + sourceIP(r) + "; wait a few seconds and try again."
	if asJSON {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": msg})
	} else {
		c.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "Sign in", Error: msg})
	}
	return false
}

// refuse answers a plain, escaped page with status and sentence.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// page is what every template gets.
type page struct {
	Title string
	Me    *wire.Principal
	CSRF  string
	Error string
	Note  string
	Nav   string
	Data  any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, p); err != nil {
		c.log.ErrorContext(r.Context(), "render console page", slog.String("page", name), slog.String("error", err.Error()))
	}
}

// signedIn is a request from a person with a console session.
type signedIn struct {
	p     wire.Principal
	token string
}

// session authenticates the cookie; ok is false (and the browser sent to
// sign-in) without a valid one.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (signedIn, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err == nil && ck.Value != "" {
		p, err := c.cfg.Sessions.AuthenticateConsole(r.Context(), ck.Value)
		if err == nil {
			return signedIn{p: p, token: ck.Value}, true
		}
		if _, ok := usererr.As(err); !ok {
			c.log.ErrorContext(r.Context(), "authenticate console session", slog.String("error", err.Error()))
		}
		clearCookie(w)
	}
	if r.Method == http.MethodGet {
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	} else {
		c.refuse(w, r, http.StatusUnauthorized, "Your console session has ended; sign in again.")
	}
	return signedIn{}, false
}

// csrfToken is the synchronizer token of a session: derived from the
// session's secret token, so it needs no storage, survives a restart and
// holds across servers, and nobody without the HttpOnly cookie can compute
// it.
func csrfToken(sessionToken string) string {
	sum := sha256.Sum256([]byte("interlock console csrf v1\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkCSRF compares the form's token with the session's in constant time.
func checkCSRF(r *http.Request, s signedIn) bool {
	got := r.PostFormValue("csrf")
	want := csrfToken(s.token)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func setCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: expires})
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// sourceAddr is the browser's address as the API's policies see it.
func sourceAddr(r *http.Request) string { return r.RemoteAddr }

func sourceIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// message is the sentence to show for err: a user error's own, anything
// else a pointer to the log.
func (c *Console) message(r *http.Request, err error) (int, string) {
	if ue, ok := usererr.As(err); ok {
		return ue.Kind.HTTPStatus(), ue.Msg
	}
	c.log.ErrorContext(r.Context(), "console request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	return http.StatusInternalServerError, "The server could not do that; the reason is in its log."
}
