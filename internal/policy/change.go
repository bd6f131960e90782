package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Candidate is a policy text that passed every check Apply makes, ready to
// be stored inside a caller's transaction (internal/change applies an
// approved policy change together with the change request's own record).
type Candidate struct {
	c *compiled
}

// Hash is the candidate text's [Hash].
func (c *Candidate) Hash() string { return c.c.hash }

// Prepare validates text the way Apply does (size, syntax, ids, actions,
// no lockout of admins) without storing anything.
func (s *Service) Prepare(text string) (*Candidate, error) {
	if len(text) > maxPolicyBytes {
		return nil, usererr.New(usererr.TooLarge, "policy_too_large", "the policy is %d bytes; the limit is %d", len(text), maxPolicyBytes)
	}
	c, err := compile(text)
	if err != nil {
		return nil, err
	}
	if err := checkNoLockout(c, s.now()); err != nil {
		return nil, err
	}
	if err := checkChangesApprovable(c, s.now()); err != nil {
		return nil, err
	}
	return &Candidate{c: c}, nil
}

// checkChangesApprovable refuses a policy under which a person holding the
// admin role, with fresh MFA, could not approve a change request: every
// policy change needs one, so such a policy could never be undone.
func checkChangesApprovable(c *compiled, now time.Time) error {
	admin := wire.Principal{Kind: "person", ID: "lockout-check", Roles: []string{"admin"}, MFAAt: now}
	d := decide(c, Request{Principal: admin, Action: ActionChangeApprove, Resource: Resource{Type: ResourceChange, ID: "any"}}, now, nil)
	if !d.Allow {
		return usererr.New(usererr.Invalid, "policy_lockout",
			"under this policy a person with role admin (fresh MFA) could not approve a change request (action change.approve on Change::\"any\"), so no later policy change could ever take effect; keep a permit for admins")
	}
	return nil
}

// ApplyIn stores cand as the next version with its "policy.applied" audit
// entry in tx. applied is false (and version the latest) when cand's text
// is already the latest version. After tx commits, the caller MUST call
// [Service.Activate] to put an applied version in force.
func (s *Service) ApplyIn(ctx context.Context, tx Tx, principal wire.Principal, cand *Candidate) (version int, applied bool, err error) {
	if principal.ID == "" {
		return 0, false, errors.New("apply policy: no principal")
	}
	c := cand.c
	now := s.now()
	latest, hash, err := tx.LatestPolicyVersion(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("latest policy version: %w", err)
	}
	if latest > 0 && hash == c.hash {
		return latest, false, nil
	}
	version = latest + 1
	if err := tx.InsertPolicyVersion(ctx, StoredPolicy{Version: version, Text: c.text, Hash: c.hash, Author: principal.Actor(), CreatedAt: now}); err != nil {
		if errors.Is(err, ErrVersionTaken) {
			return 0, false, usererr.Wrap(err, usererr.Conflict, "policy_apply_conflict",
				"someone applied another policy at the same moment; run `interlock policy get`, merge your change into it and apply again")
		}
		return 0, false, fmt.Errorf("store policy version %d: %w", version, err)
	}
	err = audit.Append(ctx, tx, audit.Entry{
		Kind: "policy.applied", Version: 1, Actor: principal.Actor(), Subject: fmt.Sprintf("policy:%d", version), Time: now,
		Data: map[string]any{
			"version":          version,
			"previous_version": latest,
			"hash":             c.hash,
			"policy_ids":       c.ids,
		},
	})
	if err != nil {
		return 0, false, err
	}
	return version, true, nil
}

// Activate puts a version stored by ApplyIn in force, unless another
// server already put a later one in force.
func (s *Service) Activate(ctx context.Context, principal wire.Principal, cand *Candidate, version int) {
	c := *cand.c
	c.version = version
	s.engine.swapIfNewer(&c)
	s.log.InfoContext(ctx, "policy applied", slog.Int("version", version), slog.String("hash", c.hash), slog.String("actor", principal.Actor()))
}
