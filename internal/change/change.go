// Package change owns change requests for the gate's own configuration:
// nobody acts alone. A change that could loosen a safety property — a new
// policy, a new runbook or runbook version, a lower capacity floor, a
// higher per-operation cap, a freeze removed, a role of approver or admin
// granted (once two admins exist), a person disabled — is stored as a
// request bound to the hash of its exact content, shown to reviewers as a
// semantic diff, and takes effect only when another person approves that
// hash with fresh MFA. Changes that only tighten apply at once.
//
// internal/api serves it and internal/app wires it. It sits above ops,
// policy and identity, whose tx-level functions it calls so that an
// approved change, its approval and its application commit together.
package change

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Kind is what a change request changes.
type Kind string

const (
	KindPolicy   Kind = "policy"       // Content: the Cedar text; Base: the text in force
	KindRunbook  Kind = "runbook"      // Content: the YAML; Base: the latest version's YAML, "" for a new runbook
	KindServices Kind = "services"     // Content and Base: canonical JSON of the services' rules (see serviceRules)
	KindInvite   Kind = "user.invite"  // Target: username; Content: the role; Base: ""
	KindDisable  Kind = "user.disable" // Target: username; Content: "disabled"; Base: the status before
)

// State is where a request is in its life.
type State string

const (
	Pending   State = "pending"
	Approved  State = "approved" // an approved invitation, waiting for its requester to collect the code
	Applied   State = "applied"
	Denied    State = "denied"
	Withdrawn State = "withdrawn"
	Expired   State = "expired"
	Void      State = "void" // what it changes moved on before approval; request again
)

// Request is one change request as stored.
type Request struct {
	ID      string
	Kind    Kind
	Target  string
	Content string // the exact new content
	Base    string // the exact content it replaces
	// Hash is [ContentHash] of Kind, Target, Content and Base, computed
	// when the request was made. Approval recomputes it from the stored
	// fields and refuses when they differ.
	Hash          string
	Summary       string
	RequesterID   string
	RequesterName string
	State         State
	CreatedAt     time.Time
	ExpiresAt     time.Time
	DecidedBy     string // actor who approved, denied or withdrew it
	DecidedAt     time.Time
	Detail        string
}

// ContentHash binds a request to its exact content: "sha256:<hex>" of
// the length-prefixed kind, target, content and base.
func ContentHash(kind Kind, target, content, base string) string {
	h := sha256.New()
	for _, f := range []string{"interlock-change-v1", string(kind), target, content, base} {
		h.Write([]byte(strconv.Itoa(len(f)) + ":"))
		h.Write([]byte(f))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ErrNotFound MUST be in the chain of a Store error when the request does not exist.
var ErrNotFound = errors.New("change: not found")

// Filter narrows ChangeRequests. Zero fields match everything.
type Filter struct {
	States []State
	Limit  int
}

// Reader reads change requests.
type Reader interface {
	ChangeRequest(ctx context.Context, id string) (Request, error)
	// ChangeRequests returns requests matching f, newest first.
	ChangeRequests(ctx context.Context, f Filter) ([]Request, error)
}

// Tx is one transaction of every store the change touches: internal/store's
// *Tx implements it, so a change, its approval and its application commit
// together.
type Tx interface {
	ops.Tx
	policy.Tx
	Reader
	InsertChangeRequest(ctx context.Context, r Request) error
	// UpdateChangeRequest writes r's State, DecidedBy, DecidedAt and Detail
	// if the stored state is still from; ok is false when it is not (two
	// approvers at once: one wins).
	UpdateChangeRequest(ctx context.Context, r Request, from State) (ok bool, err error)
}

// Store is the change store. internal/store's DB.ChangeStore() implements it.
type Store interface {
	Reader
	// InTx runs fn in one transaction; fn MAY be run more than once.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// People is what the change needs of identity: the role grants and
// disabling it gates. *identity.Service implements it.
type People interface {
	Invite(ctx context.Context, by wire.Principal, username, role string) (identity.InvitationCode, error)
	DisableUser(ctx context.Context, by wire.Principal, username string) error
	ListUsers(ctx context.Context) ([]identity.User, error)
}

// IndependentApprover refuses sock-puppet approvals: an approver whom the
// requester invited or gave their role, or who is younger than the
// request. *identity.Service implements it.
type IndependentApprover interface {
	CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error
}

// DefaultTTL is how long a request waits for approval before it expires.
const DefaultTTL = 24 * time.Hour

// Config configures a [Service]. Store, Policy, Ops and People are required.
type Config struct {
	Store  Store
	Policy *policy.Service
	Ops    *ops.Manager
	People People
	// Independent, if set, refuses sock-puppet approvers. nil means only
	// the requester ≠ approver check (by person).
	Independent IndependentApprover
	// GrantedRoles, if set, lists the roles a person holds now through
	// just-in-time grants (internal/elevate): enabling a person whose
	// grant gives approver or admin is gated like enabling a standing one.
	GrantedRoles func(ctx context.Context, personID string) ([]string, error)
	// Forker, if set, makes log.fork requests possible (see [KindLogFork]).
	Forker Forker
	// TTL is how long a request stays open; 0 means DefaultTTL (24 h).
	TTL  time.Duration
	Now  func() time.Time // nil means time.Now
	Rand io.Reader        // nil means crypto/rand.Reader
	Log  *slog.Logger     // nil discards
}

// Service makes, lists, approves, denies and withdraws change requests.
type Service struct {
	cfg Config
	now func() time.Time
	log *slog.Logger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Policy == nil || cfg.Ops == nil || cfg.People == nil {
		return nil, errors.New("change: Config.Store, Policy, Ops and People are required")
	}
	if cfg.TTL < 0 {
		return nil, errors.New("change: Config.TTL must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	s := &Service{cfg: cfg, now: cfg.Now, log: cfg.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (s *Service) newID() (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return "cr_" + idEncoding.EncodeToString(b[:]), nil
}

// View is a request with its diff, as reviewers see it.
type View struct {
	Request
	Diff wire.ChangeDiff
}

// effective is r's state at now: a pending or approved request past its
// expiry is expired even before anyone touched it.
func effective(r Request, now time.Time) State {
	if (r.State == Pending || r.State == Approved) && !now.Before(r.ExpiresAt) {
		return Expired
	}
	return r.State
}

// Get returns one request with its diff.
func (s *Service) Get(ctx context.Context, id string) (View, error) {
	r, err := s.load(ctx, s.cfg.Store, id)
	if err != nil {
		return View{}, err
	}
	return s.view(r)
}

func (s *Service) view(r Request) (View, error) {
	r.State = effective(r, s.clock())
	d, err := diffOf(r, s.clock())
	if err != nil {
		return View{}, fmt.Errorf("diff of change %s: %w", r.ID, err)
	}
	return View{Request: r, Diff: d}, nil
}

// List returns requests, newest first. Diffs are left out (Get has them).
func (s *Service) List(ctx context.Context, f Filter) ([]Request, error) {
	// Expiry is computed, not stored: ask for pending too when expired is asked.
	q := f
	for _, st := range f.States {
		if st == Expired {
			q.States = append(q.States, Pending, Approved)
		}
	}
	rs, err := s.cfg.Store.ChangeRequests(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list change requests: %w", err)
	}
	now := s.clock()
	out := rs[:0]
	for _, r := range rs {
		r.State = effective(r, now)
		if len(f.States) == 0 || containsState(f.States, r.State) {
			out = append(out, r)
		}
	}
	return out, nil
}

func containsState(list []State, s State) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) load(ctx context.Context, r Reader, id string) (Request, error) {
	cr, err := r.ChangeRequest(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Request{}, usererr.New(usererr.NotFound, "unknown_change", "There is no change request %s; interlock change list shows them.", id)
	}
	if err != nil {
		return Request{}, fmt.Errorf("load change %s: %w", id, err)
	}
	return cr, nil
}
