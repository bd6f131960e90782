package ops

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
)

var (
	// ErrNotFound MUST be in the chain of a Store error when the row asked
	// for does not exist.
	ErrNotFound = errors.New("ops: not found")
	// ErrConflict MUST be in the chain of a Store error when a write
	// violates uniqueness.
	ErrConflict = errors.New("ops: conflict")
)

// Reader is the read side of the ops store, on the database and inside a
// transaction alike.
type Reader interface {
	// OpsHosts returns every enrolled host.
	OpsHosts(ctx context.Context) ([]Host, error)
	OpsHost(ctx context.Context, id string) (Host, error)
	// OpsServices returns every service.
	OpsServices(ctx context.Context) ([]Service, error)
	// OpsRunbook returns one version of a runbook; version 0 is the latest.
	// It fills Source, not Runbook: the caller parses.
	OpsRunbook(ctx context.Context, name string, version int) (RunbookVersion, error)
	// OpsRunbooks returns the latest version of every runbook, by name.
	OpsRunbooks(ctx context.Context) ([]RunbookVersion, error)
	OpsOperation(ctx context.Context, id string) (Operation, error)
	// OpsOperations returns operations matching f, newest first.
	OpsOperations(ctx context.Context, f OperationFilter) ([]Operation, error)
}

// OperationFilter narrows OpsOperations. Zero fields match everything.
type OperationFilter struct {
	Runbook string
	States  []OpState
	Limit   int // 0: no limit
}

// Tx is one ops transaction. internal/store's *Tx implements it, so a
// change and its audit entry commit together.
type Tx interface {
	audit.Tx
	Reader
	// LockOps serialises planning transactions (runs, approvals, denials)
	// so that two of them never judge the same inventory concurrently.
	LockOps(ctx context.Context) error
	InsertJoinToken(ctx context.Context, t JoinToken) error
	// ClaimJoinToken marks the unused, unexpired token with this hash as
	// used by hostID with the key keySHA256 and returns it; ErrNotFound if
	// there is none.
	ClaimJoinToken(ctx context.Context, hash []byte, hostID, keySHA256 string, now time.Time) (JoinToken, error)
	// SpentJoinToken returns the token with this hash if it was used with
	// the key keySHA256 (not empty) and has not expired; ErrNotFound
	// otherwise.
	SpentJoinToken(ctx context.Context, hash []byte, keySHA256 string, now time.Time) (JoinToken, error)
	InsertHost(ctx context.Context, h Host, enrolledAt time.Time) error
	SetHostHeartbeat(ctx context.Context, id string, healthy bool, at time.Time) error
	SetHostInService(ctx context.Context, id string, inService bool) error
	// RevokeHost marks the host revoked at at; ErrNotFound if there is no
	// such host or it is revoked already.
	RevokeHost(ctx context.Context, id string, at time.Time) error
	// PutService creates or replaces a service.
	PutService(ctx context.Context, s Service, at time.Time) error
	// EnsureServices creates the named services, without rules, where missing.
	EnsureServices(ctx context.Context, names []string, at time.Time) error
	InsertRunbookVersion(ctx context.Context, v RunbookVersion) error
	InsertOperation(ctx context.Context, op Operation) error
	// UpdateOperation writes op's state, approvals, current wave, detail
	// and UpdatedAt; ErrNotFound if no operation has op.ID.
	UpdateOperation(ctx context.Context, op Operation) error
}

// Store is the ops store. internal/store's DB.OpsStore() implements it.
type Store interface {
	Reader
	InTx(ctx context.Context, fn func(Tx) error) error
}

// ApprovalPolicy says how many approvals an operation needs and from whom.
// *policy.Engine implements it.
type ApprovalPolicy interface {
	ApprovalRequirement(ctx context.Context, req policy.Request) (policy.Requirement, error)
}

// Config configures a Manager. Store is required; the rest have defaults.
type Config struct {
	Store Store
	// Policy decides approval requirements. nil means policy.DefaultRequirement
	// (1 approval from role approver) for everything.
	Policy ApprovalPolicy
	// StaleAfter is how old a heartbeat may be for its host to count as
	// healthy. 0 means DefaultStaleAfter (15 s).
	StaleAfter time.Duration
	// ApprovalTTL is how long an approval stays valid. 0 means 1 hour.
	ApprovalTTL time.Duration
	// MaxJoinTokenTTL caps join token lifetimes. 0 means 7 days.
	MaxJoinTokenTTL time.Duration
	// UnusualFactor: see [Check.UnusualFactor]. 0 means 3.
	UnusualFactor int64
	// OnBreakGlass, if set, is called after a break-glass operation is
	// stored, so that the server can raise an alert (a metric that paging
	// watches) beside the audit entry; it must not block.
	OnBreakGlass func(Operation)
	// Independence refuses approvers who owe their account or role to the
	// requester, or got it after the request (sock puppets). internal/app
	// MUST set it; nil checks only that the approver is not the requester.
	Independence IndependenceChecker
	Now          func() time.Time // nil means time.Now
	Rand         io.Reader        // nil means crypto/rand.Reader
	Log          *slog.Logger     // nil discards

	// OnHostRevoked, if set, is called after a host's revocation commits,
	// so that this server's agent hub forgets what it cached about the
	// host at once (other servers see it through IdentityGeneration).
	OnHostRevoked func(hostID string)
}

// Manager is the ops use cases: inventory, runbooks, planning with
// guardrails, operations and approvals. (It is not called Service, the
// usual name of a domain's use-case type, because [Service] is the
// inventory's service.)
type Manager struct {
	store  Store
	policy ApprovalPolicy
	cfg    Config
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger
	beats  heartbeatMemo // heartbeats not yet written (liveness.go)
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("ops: Config.Store is required")
	}
	if cfg.StaleAfter < 0 || cfg.ApprovalTTL < 0 || cfg.MaxJoinTokenTTL < 0 || cfg.UnusualFactor < 0 {
		return nil, errors.New("ops: durations and factors in Config must not be negative")
	}
	s := &Manager{store: cfg.Store, policy: cfg.Policy, cfg: cfg, now: cfg.Now, rand: cfg.Rand, log: cfg.Log}
	if s.cfg.StaleAfter == 0 {
		s.cfg.StaleAfter = DefaultStaleAfter
	}
	if s.cfg.ApprovalTTL == 0 {
		s.cfg.ApprovalTTL = time.Hour
	}
	if s.cfg.MaxJoinTokenTTL == 0 {
		s.cfg.MaxJoinTokenTTL = 7 * 24 * time.Hour
	}
	if s.cfg.UnusualFactor == 0 {
		s.cfg.UnusualFactor = DefaultUnusualFactor
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func (s *Manager) clock() time.Time { return s.now().UTC() }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix + 16 random base32 characters (80 bits).
func (s *Manager) newID(prefix string) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + idEncoding.EncodeToString(b[:]), nil
}

// snapshot reads an Inventory through r.
func (s *Manager) snapshot(ctx context.Context, r Reader) (*Inventory, error) {
	hosts, err := r.OpsHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	s.overlayHeartbeats(hosts)
	services, err := r.OpsServices(ctx)
	if err != nil {
		return nil, fmt.Errorf("load services: %w", err)
	}
	active, err := r.OpsOperations(ctx, OperationFilter{States: activeStates})
	if err != nil {
		return nil, fmt.Errorf("load active operations: %w", err)
	}
	return NewInventory(s.clock(), s.cfg.StaleAfter, hosts, services, active), nil
}

var activeStates = []OpState{OpPending, OpReady, OpRunning, OpHalted, OpAttention}

// historyStates are the states of operations whose parameters count as
// "used" by a runbook: they were approved and started. Break-glass
// operations are left out too (Manager.history): one confirmed emergency
// value must not make that value usual for every later run.
var historyStates = []OpState{OpRunning, OpSucceeded, OpHalted, OpAttention, OpAborted}
