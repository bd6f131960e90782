package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// StoredPolicy is one applied version of the policy text.
type StoredPolicy struct {
	Version   int       // 1, 2, … in the order they were applied
	Text      string    // the Cedar text exactly as applied
	Hash      string    // [Hash] of Text
	Author    string    // actor that applied it: "person:<id>"
	CreatedAt time.Time // when it was applied
}

// Store keeps policy versions. internal/store implements it.
type Store interface {
	// LatestPolicy returns the highest stored version; ok is false when
	// none has been stored yet.
	LatestPolicy(ctx context.Context) (p StoredPolicy, ok bool, err error)
	// InTx runs fn in one transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is the part of a transaction Apply needs.
type Tx interface {
	audit.Tx
	// LatestPolicyVersion returns the highest stored version and its hash;
	// 0 and "" when none is stored.
	LatestPolicyVersion(ctx context.Context) (version int, hash string, err error)
	// InsertPolicyVersion stores p. A second row with the same Version
	// (two servers applying at once) MUST fail with an error wrapping
	// [ErrVersionTaken].
	InsertPolicyVersion(ctx context.Context, p StoredPolicy) error
}

// ErrVersionTaken is wrapped by Tx.InsertPolicyVersion when the version
// number is already stored.
var ErrVersionTaken = errors.New("policy version already stored")

// Config configures a [Service]. Store and Engine are required.
type Config struct {
	Store  Store
	Engine *Engine
	// Now stamps applied versions and audit entries; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger // nil discards
}

// Service manages the policy: read the one in force, test a candidate
// against decision cases, and apply a new version (validated, stored with
// its audit entry in one transaction, then swapped into the Engine).
type Service struct {
	store  Store
	engine *Engine
	now    func() time.Time
	log    *slog.Logger
}

// New returns a Service and loads the latest stored policy into the Engine
// (the Engine keeps the embedded default when none is stored). A stored
// policy that no longer compiles is an error: the server must not start on
// a policy other than the one its operators applied.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("policy: Config.Store and Config.Engine are required")
	}
	s := &Service{store: cfg.Store, engine: cfg.Engine, now: cfg.Now, log: cfg.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Sync loads the latest stored version into the Engine if it differs from
// the one in force. Servers sharing one database call it periodically to
// pick up a policy another server applied.
func (s *Service) Sync(ctx context.Context) error {
	p, ok, err := s.store.LatestPolicy(ctx)
	if err != nil {
		return fmt.Errorf("load latest policy: %w", err)
	}
	if !ok {
		return nil
	}
	if v, _ := s.engine.Version(); v == p.Version {
		return nil
	}
	c, err := compile(p.Text)
	if err != nil {
		return fmt.Errorf("compile stored policy version %d: %w", p.Version, err)
	}
	c.version = p.Version
	if !s.engine.swapIfNewer(c) {
		return nil
	}
	s.log.InfoContext(ctx, "policy loaded", slog.Int("version", p.Version), slog.String("hash", c.hash))
	return nil
}

// Current is the policy in force.
type Current struct {
	Text    string
	Version int // 0: the embedded default, never applied
	Hash    string
}

// Get returns the latest stored policy, or the embedded default when none
// has been applied.
func (s *Service) Get(ctx context.Context) (Current, error) {
	p, ok, err := s.store.LatestPolicy(ctx)
	if err != nil {
		return Current{}, fmt.Errorf("load latest policy: %w", err)
	}
	if !ok {
		return Current{Text: DefaultText, Version: 0, Hash: Hash(DefaultText)}, nil
	}
	return Current{Text: p.Text, Version: p.Version, Hash: p.Hash}, nil
}

// Apply validates text, stores it as the next version together with a
// "policy.applied" audit entry, and makes it the policy in force. Invalid
// text is a usererr.Invalid naming the line and column, and changes
// nothing. So is a policy under which no admin could apply policy again:
// a typo must not lock everyone out. Applying the text already in force
// returns its version and stores nothing.
func (s *Service) Apply(ctx context.Context, principal wire.Principal, text string) (int, error) {
	cand, err := s.Prepare(text)
	if err != nil {
		return 0, err
	}
	var version int
	var applied bool
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		version, applied, err = s.ApplyIn(ctx, tx, principal, cand)
		return err
	})
	if err != nil {
		return 0, err
	}
	if applied {
		s.Activate(ctx, principal, cand, version)
	}
	return version, nil
}

// checkNoLockout refuses a policy under which a person holding the admin
// role, with fresh MFA, could not apply policy any more.
func checkNoLockout(c *compiled, now time.Time) error {
	admin := wire.Principal{Kind: "person", ID: "lockout-check", Roles: []string{"admin"}, MFAAt: now}
	d := decide(c, Request{Principal: admin, Action: ActionPolicyApply, Resource: Resource{Type: ResourcePolicy, ID: "interlock"}}, now, nil)
	if !d.Allow {
		return usererr.New(usererr.Invalid, "policy_lockout",
			"under this policy a person with role admin (fresh MFA) could not apply policy again (action policy.apply on Policy::\"interlock\"), so nobody could undo it; keep a permit for admins")
	}
	return nil
}

// TestCase is one decision to check against a candidate policy.
type TestCase struct {
	Name string `json:"name"`
	// Principal is who asks; Kind defaults to "person".
	Principal wire.Principal `json:"principal"`
	Action    string         `json:"action"`
	Resource  Resource       `json:"resource"`
	// Context as the route would pass it. mfa_age_s here sets how long ago
	// the principal proved MFA (-1 or absent: never).
	Context map[string]any `json:"context,omitempty"`
	// Want is "allow" or "deny"; empty checks nothing.
	Want string `json:"want,omitempty"`
	// WantReasons, when not nil, must equal the decision's policy ids.
	WantReasons []string `json:"want_reasons,omitempty"`
	// WantApprovals, when not nil, must equal ApprovalRequirement's answer.
	WantApprovals *Requirement `json:"want_approvals,omitempty"`
}

// TestResult is the outcome of one TestCase.
type TestResult struct {
	Name      string       `json:"name"`
	Decision  Decision     `json:"decision"`
	Approvals *Requirement `json:"approvals,omitempty"`
	// Pass is true when every expectation of the case held.
	Pass bool `json:"pass"`
	// Failures say which expectations did not hold.
	Failures []string `json:"failures,omitempty"`
}

const maxTestCases = 1000

// Test runs cases against text without applying it; an empty text tests
// the policy in force. Invalid text or a malformed case is a usererr.Invalid;
// a failing case is not an error (see TestResult.Pass).
func (s *Service) Test(ctx context.Context, text string, cases []TestCase) ([]TestResult, error) {
	c := s.engine.cur.Load()
	if text != "" {
		var err error
		if c, err = compile(text); err != nil {
			return nil, err
		}
	}
	return runCases(c, cases, s.now())
}

func runCases(c *compiled, cases []TestCase, now time.Time) ([]TestResult, error) {
	if len(cases) > maxTestCases {
		return nil, usererr.New(usererr.Invalid, "policy_test_too_many", "there are %d test cases; the limit is %d per call", len(cases), maxTestCases)
	}
	out := make([]TestResult, 0, len(cases))
	for i, tc := range cases {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		req, err := tc.request(now)
		if err != nil {
			return nil, usererr.Wrap(err, usererr.Invalid, "policy_test_case", "test case %q: %v", name, err)
		}
		r := TestResult{Name: name, Decision: decide(c, req, now, nil), Pass: true}
		fail := func(format string, args ...any) {
			r.Pass = false
			r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
		}
		switch tc.Want {
		case "":
		case "allow", "deny":
			if got := map[bool]string{true: "allow", false: "deny"}[r.Decision.Allow]; got != tc.Want {
				fail("want %s, got %s (reasons %v, errors %v)", tc.Want, got, r.Decision.Reasons, r.Decision.Errors)
			}
		default:
			return nil, usererr.New(usererr.Invalid, "policy_test_case", "test case %q: want must be \"allow\" or \"deny\", not %q", name, tc.Want)
		}
		if tc.WantReasons != nil {
			want := slices.Clone(tc.WantReasons)
			slices.Sort(want)
			if !slices.Equal(want, r.Decision.Reasons) && !(len(want) == 0 && len(r.Decision.Reasons) == 0) {
				fail("want reasons %v, got %v", want, r.Decision.Reasons)
			}
		}
		if tc.WantApprovals != nil {
			got, err := approvalRequirement(c, req, now, nil)
			if err != nil {
				return nil, usererr.Wrap(err, usererr.Invalid, "policy_test_case", "test case %q: %v", name, err)
			}
			r.Approvals = &got
			w := cloneRequirement(*tc.WantApprovals)
			slices.Sort(w.Roles)
			slices.Sort(w.PolicyIDs)
			if w.Count != got.Count || !slices.Equal(w.Roles, got.Roles) || (w.PolicyIDs != nil && !slices.Equal(w.PolicyIDs, got.PolicyIDs)) {
				fail("want %d approval(s) from %v by %v, got %d from %v by %v", w.Count, w.Roles, w.PolicyIDs, got.Count, got.Roles, got.PolicyIDs)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// request builds the Request a TestCase describes, checking what Decide
// would otherwise only report as a denial.
func (tc TestCase) request(now time.Time) (Request, error) {
	p := tc.Principal
	if p.Kind == "" {
		p.Kind = "person"
	}
	if p.Kind != "person" && p.Kind != "agent" {
		return Request{}, fmt.Errorf("principal kind must be \"person\" or \"agent\", not %q", p.Kind)
	}
	if p.ID == "" {
		p.ID = p.Name
	}
	if p.ID == "" {
		return Request{}, errors.New("the principal needs an id")
	}
	if !knownActions[tc.Action] {
		return Request{}, fmt.Errorf("%q is not an Interlock action", tc.Action)
	}
	if tc.Resource.Type != "" && !knownResources[tc.Resource.Type] {
		return Request{}, fmt.Errorf("%q is not a resource type; use one of %v", tc.Resource.Type, ResourceTypes)
	}
	ctx := map[string]any{}
	for k, v := range tc.Context {
		ctx[k] = v
	}
	if v, ok := ctx["mfa_age_s"]; ok {
		delete(ctx, "mfa_age_s")
		age, err := toValue(v)
		secs, isLong := age.(types.Long)
		if err != nil || !isLong {
			return Request{}, fmt.Errorf("context mfa_age_s must be a whole number of seconds, not %v", v)
		}
		p.MFAAt = time.Time{}
		if secs >= 0 {
			p.MFAAt = now.Add(-time.Duration(secs) * time.Second)
		}
	}
	return Request{Principal: p, Action: tc.Action, Resource: tc.Resource, Context: ctx}, nil
}
