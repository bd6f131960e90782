// Package api serves Interlock's HTTPS API under /v1/: routing,
// authentication (device-bound sessions with DPoP proofs for people, mTLS
// client certificates for agents), a Cedar decision in front of every
// route, size-limited strict JSON decoding, and RFC 9457 problem bodies for
// every error. It never touches the store: handlers call domain services.
//
// # Adding routes
//
// A domain exposes its routes from its own file as a constructor that takes
// the services it needs and returns []Route, e.g.
//
//	func PolicyRoutes(svc *policy.Service) []Route {
//		return []Route{{Pattern: "GET /v1/policy", Action: "policy.get", Handle: func(c *Call) error {
//			cur, err := svc.Get(c.Context())
//			if err != nil {
//				return err
//			}
//			return c.JSON(http.StatusOK, wire.Policy{…})
//		}}}
//	}
//
// and internal/app passes it to New. Every Route MUST name its Cedar Action
// unless it is Public; the middleware authenticates the caller and asks the
// Authorizer before Handle runs, with the Resource the route names (System
// by default). Handlers that need a finer decision (per service, per key)
// call c.Authorize. Handlers return errors: a *usererr.Error becomes a 4xx
// problem with its sentence; anything else becomes a 500 whose detail only
// names the request ID (the cause is logged).
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Resource is what a request acts on, as Cedar sees it.
type Resource struct {
	Type  string // Service, Host, Runbook, Operation, Key, Secret, Policy, Log, System
	ID    string
	Attrs map[string]any
}

// SystemResource is the default resource of a route.
var SystemResource = Resource{Type: "System", ID: "interlock"}

// Authenticator turns a session token and the key thumbprint its DPoP proof
// was signed with into a person. identity.Service implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, token, jkt string) (wire.Principal, error)
}

// ProofVerifier checks a DPoP proof (RFC 9449) and returns the thumbprint
// of the key that signed it. dpop.Verifier implements it.
type ProofVerifier interface {
	Verify(proof, method, url, accessToken string, now time.Time) (jkt string, err error)
}

// deferredProofs is a ProofVerifier that can check a proof and record it
// (refusing a replay) as two steps. dpop.Verifier is one; the server then
// records a session's proof only after the session authenticated, so that
// junk tokens with throwaway keys cannot fill the replay cache.
type deferredProofs interface {
	Check(proof, method, url, accessToken string, now time.Time) (jkt string, seen dpop.Seen, err error)
	Remember(seen dpop.Seen, now time.Time) error
}

// AgentAuthenticator names the host behind a verified client certificate.
type AgentAuthenticator interface {
	HostIDFromRequest(r *http.Request) (string, bool)
}

// Authorizer makes the Cedar decision. internal/app adapts policy.Engine.
type Authorizer interface {
	Authorize(ctx context.Context, p wire.Principal, action string, res Resource, attrs map[string]any) (allow bool, reasons []string, err error)
}

// DenialRecorder writes a refused authorization to the audit log: a
// refused attempt at a privileged action is itself a security event.
type DenialRecorder interface {
	RecordDenial(ctx context.Context, p wire.Principal, action string, res Resource, sourceIP string) error
}

// Config configures a Server. Authenticator, Proofs and Authorizer are
// required; without them no authenticated route could answer.
type Config struct {
	Authenticator Authenticator
	Proofs        ProofVerifier
	Agents        AgentAuthenticator // nil: agent routes refuse every call
	Authorizer    Authorizer
	// Denials, if set, records every refused authorization.
	Denials DenialRecorder
	// Separation, if set, says when separation of duties rests on one
	// person; approval responses carry its warning.
	Separation SeparationNotice
	// MaxBodyBytes caps request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// ReadTimeout and WriteTimeout bound how long a client of a route that
	// is not a Stream may take to send its body and to read the answer;
	// 0 means 30 s and 90 s (long-polls wait at most 60 s).
	ReadTimeout, WriteTimeout time.Duration
	// PublicWritesPerSecond and PublicWriteBurst bound, per source address,
	// the public routes that are not GET (sign-in, bootstrap, invitation,
	// enrollment); 0 means 5 per second with bursts of 30.
	PublicWritesPerSecond float64
	PublicWriteBurst      int
	// Metrics, if set, is served at /metrics to a bearer of a scrape token
	// whose SHA-256 is in MetricsTokenHashes, or to a signed-in person
	// allowed metrics.read (metrics.go).
	Metrics            http.Handler
	MetricsTokenHashes [][32]byte
	// Halted, if set, says why the server must not change anything ("" when
	// it may): the audit log refuses to sign, so nothing can be recorded.
	// While halted, /readyz answers 503 with the sentence and every route
	// that is not a GET answers 503 too, except routes marked WhileHalted.
	Halted func() string
	// Unready, if set, says why the server cannot serve ("" when it can):
	// /readyz answers 503 with the sentence (a database that does not
	// answer, say), so a load balancer sends people elsewhere.
	Unready func(ctx context.Context) string
	Now     func() time.Time // nil means time.Now
	Log     *slog.Logger     // nil discards
}

// Route is one API endpoint.
type Route struct {
	// Pattern is a net/http pattern: "POST /v1/ops/{id}/approvals".
	Pattern string
	// Action is the Cedar action checked before Handle runs.
	Action string
	// Public routes answer without authentication (health, bootstrap,
	// login, invitation accept, agent enrollment). Keep this list short.
	Public bool
	// Agent routes authenticate the caller by mTLS client certificate.
	Agent bool
	// Resource names what the route acts on; nil means SystemResource.
	Resource func(r *http.Request) Resource
	// Stream routes may write for a long time (no write deadline).
	Stream bool
	// WhileHalted routes still answer while Config.Halted says the
	// server is halted (sign-in, fresh MFA, and the log fork that ends it).
	WhileHalted bool
	// ChargeFailures makes a Public write route spend its caller's
	// per-address token only when it answers 4xx or 5xx, while still
	// refusing (429) an address whose bucket is empty. Enrollment uses it:
	// a valid one-time join token is itself the credential, so a thousand
	// agents enrolling from one address are not slowed, but guessing
	// tokens is.
	ChargeFailures bool
	Handle         func(c *Call) error
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	routes []Route
	public *sourceLimiter
}

// New builds a Server with the given groups of routes.
func New(cfg Config, groups ...[]Route) (*Server, error) {
	if cfg.Authenticator == nil || cfg.Proofs == nil || cfg.Authorizer == nil {
		return nil, errors.New("api: Authenticator, Proofs and Authorizer are required")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 90 * time.Second
	}
	if cfg.PublicWritesPerSecond <= 0 {
		cfg.PublicWritesPerSecond = 5
	}
	if cfg.PublicWriteBurst <= 0 {
		cfg.PublicWriteBurst = 30
	}
	s := &Server{cfg: cfg, log: cfg.Log, now: cfg.Now, mux: http.NewServeMux(),
		public: newSourceLimiter(cfg.PublicWritesPerSecond, cfg.PublicWriteBurst, 10_000)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if why := s.halted(); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "refusing", "detail": why})
			return
		}
		if cfg.Unready != nil {
			if why := cfg.Unready(r.Context()); why != "" {
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "detail": why})
				return
			}
		}
		fmt.Fprintln(w, `{"status":"ready"}`)
	})
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.metricsHandler(cfg.Metrics, cfg.MetricsTokenHashes))
		s.routes = append(s.routes, Route{Pattern: "GET /metrics", Action: policy.ActionMetricsRead, Handle: func(*Call) error { return nil }})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, newRequestID(), usererr.New(usererr.NotFound, "no_route", "there is no %s %s in this API", r.Method, r.URL.Path))
	})
	for _, g := range groups {
		for _, rt := range g {
			if err := s.add(rt); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Server) add(rt Route) error {
	if rt.Handle == nil || rt.Pattern == "" {
		return fmt.Errorf("api: route %q has no handler", rt.Pattern)
	}
	if !rt.Public && rt.Action == "" {
		return fmt.Errorf("api: route %q is neither public nor names a Cedar action", rt.Pattern)
	}
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.Pattern, s.wrap(rt))
	return nil
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes lists every registered route, for tests that must cover them all.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Call is one request being served.
type Call struct {
	W         http.ResponseWriter
	R         *http.Request
	Principal wire.Principal
	// Reasons are the policy IDs that allowed the route's action.
	Reasons   []string
	RequestID string
	s         *Server
}

// Context is the request's context.
func (c *Call) Context() context.Context { return c.R.Context() }

// SeparationNotice says, while it is true, that separation of duties rests
// on one person (a single active admin). identity.Service implements it.
type SeparationNotice interface {
	SeparationOfDutiesWarning(ctx context.Context) string
}

// SeparationWarning is the single-admin warning, or "" when there is none
// to give (or no SeparationNotice is configured).
func (c *Call) SeparationWarning() string {
	if c.s.cfg.Separation == nil {
		return ""
	}
	return c.s.cfg.Separation.SeparationOfDutiesWarning(c.Context())
}

// Now is the server's injected clock.
func (c *Call) Now() time.Time { return c.s.now() }

// Log is the server's logger.
func (c *Call) Log() *slog.Logger { return c.s.log }

// SourceIP is the caller's address without its port.
func (c *Call) SourceIP() string {
	host := c.R.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// Authorize asks for a decision finer than the route's own, e.g. on one
// service or key. It returns a Forbidden user error when policy says no.
func (c *Call) Authorize(action string, res Resource, attrs map[string]any) error {
	return c.s.authorize(c.Context(), c.Principal, action, res, c.withRequestAttrs(attrs))
}

func (c *Call) withRequestAttrs(attrs map[string]any) map[string]any {
	out := map[string]any{"source_ip": c.SourceIP(), "now": c.s.now().Unix()}
	for k, v := range attrs {
		out[k] = v
	}
	return out
}

func (s *Server) authorize(ctx context.Context, p wire.Principal, action string, res Resource, attrs map[string]any) error {
	allow, reasons, err := s.cfg.Authorizer.Authorize(ctx, p, action, res, attrs)
	if err != nil {
		return fmt.Errorf("authorize %s: %w", action, err)
	}
	s.log.DebugContext(ctx, "authorization decision", slog.String("action", action), slog.String("principal", p.Actor()),
		slog.Bool("allow", allow), slog.Any("reasons", reasons))
	if !allow {
		if s.cfg.Denials != nil {
			ip, _ := attrs["source_ip"].(string)
			if err := s.cfg.Denials.RecordDenial(ctx, p, action, res, ip); err != nil {
				// The refusal stands either way; an operator must see that its record failed.
				s.log.ErrorContext(ctx, "record authorization denial", slog.String("action", action), slog.String("error", err.Error()))
			}
		}
		if slices.ContainsFunc(reasons, func(id string) bool { return strings.HasPrefix(id, "mfa.") }) {
			// A forbid on MFA age decided it (the default policy's mfa.* rules).
			return &usererr.Error{Kind: usererr.Forbidden, Code: "forbidden",
				Msg: fmt.Sprintf("%s needs a second factor proved in the last 5 minutes; give a current one-time code with --otp CODE (or sign in again) and try again", action)}
		}
		if i := slices.IndexFunc(reasons, func(id string) bool { return strings.HasPrefix(id, "training.") }); i >= 0 {
			// A forbid on context.training decided it (issue 12).
			return &usererr.Error{Kind: usererr.Forbidden, Code: "training_required",
				Msg: fmt.Sprintf("policy %s refuses %s to %s: a course it requires is missing or expired; see interlock training list", reasons[i], action, p.Name)}
		}
		return &usererr.Error{Kind: usererr.Forbidden, Code: "forbidden",
			Msg: fmt.Sprintf("policy does not allow %s %q to %s on %s %q", p.Kind, p.Name, action, res.Type, res.ID)}
	}
	return nil
}

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Call{W: w, R: r, RequestID: newRequestID(), s: s}
		w.Header().Set("X-Request-Id", c.RequestID)
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(r.Context(), "panic in handler", slog.String("route", rt.Pattern), slog.String("request_id", c.RequestID), slog.Any("panic", v))
				s.writeError(w, r, c.RequestID, fmt.Errorf("panic: %v", v))
			}
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if !rt.Stream {
			// Bound how long a client may take to send its body and to read
			// the answer, so a slow client cannot hold a handler forever.
			// Long-polls wait at most 60 s, inside the write deadline.
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(s.cfg.ReadTimeout))
			_ = rc.SetWriteDeadline(now.Add(s.cfg.WriteTimeout))
		}
		if err := s.serve(rt, c); err != nil {
			s.writeError(w, r, c.RequestID, err)
		}
	})
}

func (s *Server) halted() string {
	if s.cfg.Halted == nil {
		return ""
	}
	return s.cfg.Halted()
}

// errHalted is the answer of a write route while the server is halted.
type errHalted struct{ why string }

func (e errHalted) Error() string { return e.why }

func (s *Server) serve(rt Route, c *Call) error {
	if m := c.R.Method; m != http.MethodGet && m != http.MethodHead && !rt.WhileHalted {
		if why := s.halted(); why != "" {
			return errHalted{why}
		}
	}
	if rt.Public {
		if c.R.Method != http.MethodGet && rt.ChargeFailures {
			return s.serveChargingFailures(rt, c)
		}
		if c.R.Method != http.MethodGet && !s.public.allow(c.SourceIP(), time.Now()) {
			return errTooManyPublic(c)
		}
		return rt.Handle(c)
	}
	var err error
	if rt.Agent {
		if c.Principal, err = s.authenticateAgent(c.R); err != nil && c.R.TLS != nil && len(c.R.TLS.PeerCertificates) > 0 {
			// The connection carries a certificate that is refused (a
			// revoked host, or one a renewal replaced): end it once its
			// other requests finish, so that the agent's next request opens
			// a new one with its current certificate.
			c.W.Header().Set("Connection", "close")
		}
	} else if p, ok := invokedAs(c.Context()); ok {
		c.Principal = p // authenticated by the console (Invoke)
	} else {
		c.Principal, err = s.authenticatePerson(c.R)
	}
	if err != nil {
		return err
	}
	res := SystemResource
	if rt.Resource != nil {
		res = rt.Resource(c.R)
	}
	if err := s.authorize(c.Context(), c.Principal, rt.Action, res, c.withRequestAttrs(nil)); err != nil {
		return err
	}
	return rt.Handle(c)
}

func errTooManyPublic(c *Call) error {
	return usererr.New(usererr.RateLimited, "too_many_requests",
		"too many sign-in or enrollment requests from %s; wait a few seconds and try again", c.SourceIP())
}

// serveChargingFailures serves a ChargeFailures route: refused while the
// address's bucket is empty, charged one token when the answer is an
// error.
func (s *Server) serveChargingFailures(rt Route, c *Call) error {
	ip := c.SourceIP()
	if !s.public.ready(ip, time.Now()) {
		return errTooManyPublic(c)
	}
	rec := &statusWriter{ResponseWriter: c.W}
	c.W = rec
	err := rt.Handle(c)
	if clientFailure(err, rec.status) {
		s.public.allow(ip, time.Now())
	}
	return err
}

// clientFailure says whether a public request failed because of what the
// client sent (an unknown token, a bad request: 4xx), which spends its
// address's allowance. A failure of the server's own (a 5xx, a request
// the client gave up on while the server was busy) does not: a fleet
// enrolling through one overloaded server would otherwise lock its own
// address out and retry ever harder.
func clientFailure(err error, status int) bool {
	if err != nil {
		ue, ok := usererr.As(err)
		return ok && (ue.Kind.HTTPStatus() == 0 || ue.Kind.HTTPStatus() < 500)
	}
	return status >= 400 && status < 500
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) authenticatePerson(r *http.Request) (wire.Principal, error) {
	authz := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(authz, "DPoP ")
	if !ok || token == "" {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "unauthenticated",
			"this route needs a session: log in with `interlock login` (Authorization: DPoP <token> and a DPoP proof)")
	}
	proof := r.Header.Get("DPoP")
	if proof == "" {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "dpop_missing", "the request carries no DPoP proof; a session token alone is not enough")
	}
	now := s.now()
	var jkt string
	var seen dpop.Seen
	var err error
	deferred, isDeferred := s.cfg.Proofs.(deferredProofs)
	if isDeferred {
		jkt, seen, err = deferred.Check(proof, r.Method, RequestURL(r), token, now)
	} else {
		jkt, err = s.cfg.Proofs.Verify(proof, r.Method, RequestURL(r), token, now)
	}
	if err != nil {
		return wire.Principal{}, proofErr(err)
	}
	p, err := s.cfg.Authenticator.Authenticate(r.Context(), token, jkt)
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return wire.Principal{}, err
		}
		return wire.Principal{}, fmt.Errorf("authenticate session: %w", err)
	}
	if isDeferred {
		if err := deferred.Remember(seen, now); err != nil {
			return wire.Principal{}, proofErr(err)
		}
	}
	return p, nil
}

func proofErr(err error) error {
	if _, ok := usererr.As(err); ok {
		return err // e.g. dpop_replayed, dpop_busy (429)
	}
	return usererr.Wrap(err, usererr.Unauthenticated, "dpop_invalid", "the request's DPoP proof is not valid: %v", err)
}

func (s *Server) authenticateAgent(r *http.Request) (wire.Principal, error) {
	if s.cfg.Agents == nil {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "agent_unauthenticated", "agent routes are not enabled on this server")
	}
	id, ok := s.cfg.Agents.HostIDFromRequest(r)
	if !ok {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "agent_unauthenticated", "this route needs an agent's client certificate issued by this server's CA")
	}
	return wire.Principal{Kind: "agent", ID: id, Name: id}, nil
}

// RequestURL is the URL a DPoP proof must name for r: scheme, host and
// path, without query or fragment (RFC 9449 §4.3).
func RequestURL(r *http.Request) string {
	return "https://" + r.Host + r.URL.EscapedPath()
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
