package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Approve records approver's approval of request id at hash and applies
// the change in the same transaction (an invitation becomes approved: its
// requester collects the code). Refused, each with a sentence and a
// "change.approval_refused" entry: a request that is not pending or has
// expired, an approver who is not a person or is the requester (by
// person) or not independent of them, a hash other than the request's,
// stored content that no longer matches its hash (written behind the
// server's back), and a change whose base moved on (then it is void).
// Fresh MFA and the approver's role are policy's (change.approve).
func (s *Service) Approve(ctx context.Context, id string, approver wire.Principal, hash string) (View, error) {
	if !hashPattern.MatchString(hash) {
		// Judged before anything else: a refusal's entry copies the hash
		// into the log, which must not take a megabyte of junk.
		return View{}, usererr.New(usererr.Invalid, "bad_hash",
			"%q is not a content hash: send sha256: and 64 lower-case hex digits, as interlock change show %s prints it; nothing was changed.", short(hash), id)
	}
	cur, err := s.load(ctx, s.cfg.Store, id)
	if err != nil {
		return View{}, err
	}
	if err := s.checkHalted(cur); err != nil {
		return View{}, err
	}
	// A log.fork's basis is read under the sequencer lock, so before the
	// change transaction (SQLite has one writer); ForkIf checks it again.
	var forkBasis audit.ForkBasis
	var forkStale error
	if cur.Kind == KindLogFork {
		forkBasis, forkStale = s.logForkBasis(ctx, cur)
		if _, ok := usererr.As(forkStale); forkStale != nil && !ok {
			return View{}, forkStale
		}
	}
	var r Request
	var outcome error
	var activate func()
	var disable bool          // applied through identity once the checks passed
	var fork *audit.ForkBasis // applied through the audit log once the checks passed
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		outcome, activate, disable, fork = nil, nil, false, nil
		var err error
		if r, err = s.load(ctx, tx, id); err != nil {
			return err
		}
		now := s.clock()
		refuse := func(code, format string, args ...any) error {
			outcome = usererr.New(usererr.Forbidden, code, format, args...)
			return audit.Append(ctx, tx, audit.Entry{Kind: "change.approval_refused", Version: 1, Actor: actorOf(approver), Subject: "change:" + r.ID, Time: now,
				Data: map[string]any{"code": code, "hash": hash}})
		}
		switch st := effective(r, now); {
		case st == Expired && r.State == Pending:
			if err := s.finish(ctx, tx, &r, Expired, "system", "expired before anyone approved it", now); err != nil {
				return err
			}
			return refuse("change_expired", "Change request %s expired at %s; nothing was changed. Request it again.", r.ID, r.ExpiresAt.Format("2006-01-02 15:04 MST"))
		case st != Pending:
			return refuse("change_not_pending", "Change request %s is %s, not waiting for approval; nothing was changed.", r.ID, st)
		}
		if approver.Kind != "person" || approver.ID == "" {
			return refuse("person_required", "Only a person can approve a change.")
		}
		if approver.ID == r.RequesterID {
			return refuse("self_approval", "You requested %s, so you cannot approve it; another person (role approver or admin) must approve it.", r.ID)
		}
		if r.Kind == KindLogFork && !slices.Contains(approver.Roles, identity.RoleAdmin) {
			// Checked here, not left to policy: a policy that let approvers
			// approve changes must still not let them break the log.
			return refuse("admin_required", "Only a person with role admin may approve a fork of the log (%s).", r.ID)
		}
		if (r.Kind == KindRoles || r.Kind == KindEnable || r.Kind == KindReset) && approver.Name == r.Target {
			return refuse("self_approval", "%s changes your own account, so you cannot approve it; another person must.", r.ID)
		}
		if r.Kind == KindReset && !slices.Contains(approver.Roles, identity.RoleAdmin) {
			return refuse("admin_required", "Only a person with role admin may approve resetting someone's credentials (%s).", r.ID)
		}
		if s.cfg.Independent != nil {
			if err := s.cfg.Independent.CheckIndependentApprover(ctx, r.RequesterID, approver.ID, r.CreatedAt); err != nil {
				if ue, ok := usererr.As(err); ok {
					return refuse("approver_not_independent", "%s", ue.Msg)
				}
				return fmt.Errorf("check independent approver: %w", err)
			}
		}
		if ContentHash(r.Kind, r.Target, r.Content, r.Base) != r.Hash {
			return refuse("content_changed",
				"The stored content of %s no longer matches the hash it was requested with; it was changed after the request, so it cannot be approved. Deny it and request the change again.", r.ID)
		}
		if hash != r.Hash {
			return refuse("hash_mismatch",
				"You approved content %s, but %s has content %s; look at it again with interlock change show %s and approve what it shows.", short(hash), r.ID, short(r.Hash), r.ID)
		}
		if r.Kind == KindLogFork {
			if ue, ok := usererr.As(forkStale); ok {
				if err := s.finish(ctx, tx, &r, Void, actorOf(approver), ue.Msg, now); err != nil {
					return err
				}
				return refuse("change_stale", "%s", ue.Msg)
			}
			fork = &forkBasis
			return nil
		}
		if err := s.checkBase(ctx, tx, r); err != nil {
			ue, ok := usererr.As(err)
			if !ok {
				return err
			}
			if err := s.finish(ctx, tx, &r, Void, actorOf(approver), ue.Msg, now); err != nil {
				return err
			}
			return refuse("change_stale", "%s", ue.Msg)
		}
		if r.Kind == KindDisable {
			// identity disables in its own transaction: do that first, then
			// record the approval (finishApproval), so that a failure leaves
			// the request pending rather than "applied" and not done.
			disable = true
			return nil
		}
		requester := wire.Principal{Kind: "person", ID: r.RequesterID, Name: r.RequesterName}
		if r.Kind == KindInvite {
			return s.finishApproval(ctx, tx, &r, approver, Approved, "approved; the requester collects the invitation code with interlock change apply "+r.ID)
		}
		if r.Kind == KindReset {
			return s.finishApproval(ctx, tx, &r, approver, Approved, "approved; the requester collects the reset code with interlock change apply "+r.ID)
		}
		if r.Kind == KindEnable || r.Kind == KindRoles {
			if err := s.applyPeople(ctx, tx, r, requester); err != nil {
				if ue, ok := usererr.As(err); ok && ue.Code == "change_stale" {
					if err := s.finish(ctx, tx, &r, Void, actorOf(approver), ue.Msg, now); err != nil {
						return err
					}
					return refuse("change_stale", "%s", ue.Msg)
				}
				return err
			}
			return s.finishApproval(ctx, tx, &r, approver, Applied, "")
		}
		if activate, err = s.applyIn(ctx, tx, r, requester); err != nil {
			return err
		}
		return s.finishApproval(ctx, tx, &r, approver, Applied, "")
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return View{}, err
		}
		return View{}, fmt.Errorf("approve change %s: %w", id, err)
	}
	if outcome != nil {
		return View{}, outcome
	}
	if activate != nil {
		activate()
	}
	if fork != nil {
		if r, err = s.applyLogFork(ctx, r, *fork, approver); err != nil {
			return View{}, err
		}
	}
	if disable {
		requester := wire.Principal{Kind: "person", ID: r.RequesterID, Name: r.RequesterName}
		if err := s.cfg.People.DisableUser(ctx, requester, r.Target); err != nil {
			return View{}, fmt.Errorf("apply approved change %s: %w", r.ID, err)
		}
		if err := s.cfg.Store.InTx(ctx, func(tx Tx) error {
			var err error
			if r, err = s.load(ctx, tx, id); err != nil {
				return err
			}
			return s.finishApproval(ctx, tx, &r, approver, Applied, "")
		}); err != nil {
			return View{}, err
		}
	}
	s.log.InfoContext(ctx, "change approved", slog.String("change", r.ID), slog.String("kind", string(r.Kind)), slog.String("approver", approver.Actor()))
	return s.view(r)
}

// applyIn applies r's content in tx, as its requester. It returns what to
// do once tx has committed (put a policy in force).
func (s *Service) applyIn(ctx context.Context, tx Tx, r Request, requester wire.Principal) (func(), error) {
	switch r.Kind {
	case KindPolicy:
		cand, err := s.cfg.Policy.Prepare(r.Content)
		if err != nil {
			return nil, err
		}
		version, applied, err := s.cfg.Policy.ApplyIn(ctx, tx, requester, cand)
		if err != nil || !applied {
			return nil, err
		}
		return func() { s.cfg.Policy.Activate(ctx, requester, cand, version) }, nil
	case KindRunbook:
		_, _, err := s.cfg.Ops.ApplyRunbookIn(ctx, tx, requester, []byte(r.Content))
		return nil, err
	case KindServices:
		svcs, err := decodeServices(r.Content)
		if err != nil {
			return nil, err
		}
		for _, svc := range svcs {
			if err := ops.ValidateService(svc); err != nil {
				return nil, err
			}
		}
		return nil, s.cfg.Ops.PutServicesIn(ctx, tx, requester, svcs)
	}
	return nil, fmt.Errorf("change %s: kind %q cannot be applied in a transaction", r.ID, r.Kind)
}

// checkBase refuses (with a user error) a request whose base is no longer
// what is in force: the diff the approver saw would not be the change.
func (s *Service) checkBase(ctx context.Context, tx Tx, r Request) error {
	switch r.Kind {
	case KindPolicy:
		_, hash, err := tx.LatestPolicyVersion(ctx)
		if err != nil {
			return fmt.Errorf("latest policy version: %w", err)
		}
		if hash == "" {
			hash = policy.Hash(policy.DefaultText)
		}
		if hash != policy.Hash(r.Base) {
			return usererr.New(usererr.Conflict, "change_stale", "The policy in force changed after %s was requested, so its diff is no longer the change; it is void. Request it again against the policy in force.", r.ID)
		}
	case KindRunbook:
		latest, err := tx.OpsRunbook(ctx, r.Target, 0)
		cur := ""
		switch {
		case errors.Is(err, ops.ErrNotFound):
		case err != nil:
			return fmt.Errorf("load runbook %s: %w", r.Target, err)
		default:
			cur = string(latest.Source)
		}
		if cur != r.Base {
			return usererr.New(usererr.Conflict, "change_stale", "Runbook %s changed after %s was requested, so its diff is no longer the change; it is void. Request it again.", r.Target, r.ID)
		}
	case KindServices:
		return checkServicesBase(ctx, tx, r.Base, r.Content)
	case KindInvite, KindDisable:
		// identity checks the person when the change is applied.
	}
	return nil
}

// checkServicesBase refuses when the rules of the services in content are
// no longer base (a service in content but not in base must still not exist).
func checkServicesBase(ctx context.Context, tx Tx, base, content string) error {
	nexts, err := decodeServices(content)
	if err != nil {
		return err
	}
	olds, err := decodeServices(base)
	if err != nil {
		return err
	}
	stored, err := tx.OpsServices(ctx)
	if err != nil {
		return fmt.Errorf("load services: %w", err)
	}
	now := map[string]ops.Service{}
	for _, s := range stored {
		now[s.Name] = s
	}
	var cur []ops.Service
	for _, n := range nexts {
		if s, ok := now[n.Name]; ok {
			cur = append(cur, s)
		}
	}
	if encodeServices(cur) != encodeServices(olds) {
		return usererr.New(usererr.Conflict, "change_stale", "The rules of a service in this change were changed in the meantime, so its diff is no longer the change; it is void. Look at interlock service list and set the rules again.")
	}
	return nil
}

// Deny closes a pending request unapplied.
func (s *Service) Deny(ctx context.Context, id string, by wire.Principal, reason string) (View, error) {
	return s.close(ctx, id, by, reason, Denied, "change.denied", false)
}

// Withdraw closes the caller's own pending request unapplied.
func (s *Service) Withdraw(ctx context.Context, id string, by wire.Principal, reason string) (View, error) {
	return s.close(ctx, id, by, reason, Withdrawn, "change.withdrawn", true)
}

func (s *Service) close(ctx context.Context, id string, by wire.Principal, reason string, to State, kind string, ownOnly bool) (View, error) {
	if len(reason) > 1000 {
		return View{}, usererr.New(usererr.Invalid, "reason_too_long", "The reason is %d characters; keep it under 1000.", len(reason))
	}
	r, err := s.load(ctx, s.cfg.Store, id)
	if err != nil {
		return View{}, err
	}
	if err := s.checkHalted(r); err != nil {
		return View{}, err
	}
	if ownOnly && by.ID != r.RequesterID {
		return View{}, s.refuse(ctx, by, "change:"+r.ID, "not_your_change", usererr.Forbidden,
			"Only the person who requested %s can withdraw it; deny it instead.", r.ID)
	}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		var err error
		if r, err = s.load(ctx, tx, id); err != nil {
			return err
		}
		now := s.clock()
		if st := effective(r, now); st != Pending && st != Approved {
			return usererr.New(usererr.Conflict, "change_not_pending", "Change request %s is %s; nothing was changed.", r.ID, st)
		}
		if err := audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: actorOf(by), Subject: "change:" + r.ID, Time: now,
			Data: map[string]any{"hash": r.Hash}, Personal: map[string]string{"reason": reason}}); err != nil {
			return err
		}
		return s.finish(ctx, tx, &r, to, actorOf(by), reason, now)
	})
	if err != nil {
		return View{}, err
	}
	return s.view(r)
}

// Collect applies an approved invitation for its requester and returns its
// one-time code, which nobody else ever sees (an approver holding the
// code of an admin invitation could make themselves a second account).
func (s *Service) Collect(ctx context.Context, id string, by wire.Principal) (View, identity.InvitationCode, error) {
	r, err := s.load(ctx, s.cfg.Store, id)
	if err != nil {
		return View{}, identity.InvitationCode{}, err
	}
	if r.Kind != KindInvite {
		return View{}, identity.InvitationCode{}, usererr.New(usererr.Conflict, "nothing_to_collect", "Change request %s is a %s change; it was applied when it was approved.", r.ID, r.Kind)
	}
	if by.ID != r.RequesterID {
		return View{}, identity.InvitationCode{}, s.refuse(ctx, by, "change:"+r.ID, "not_your_change", usererr.Forbidden,
			"Only the person who requested %s can collect its invitation code.", r.ID)
	}
	if st := effective(r, s.clock()); st != Approved {
		return View{}, identity.InvitationCode{}, usererr.New(usererr.Conflict, "change_not_approved", "Change request %s is %s, not approved; there is no invitation to collect.", r.ID, st)
	}
	inv, err := s.cfg.People.Invite(ctx, by, r.Target, r.Content)
	if err != nil {
		return View{}, identity.InvitationCode{}, err
	}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		return s.finish(ctx, tx, &r, Applied, actorOf(by), "invitation "+inv.PersonID+" issued", s.clock())
	})
	if err != nil {
		return View{}, identity.InvitationCode{}, err
	}
	v, err := s.view(r)
	return v, inv, err
}

// finishApproval records approver's approval of r and moves it to state.
func (s *Service) finishApproval(ctx context.Context, tx Tx, r *Request, approver wire.Principal, to State, detail string) error {
	if err := audit.Append(ctx, tx, audit.Entry{Kind: "change.approved", Version: 1, Actor: approver.Actor(), Subject: "change:" + r.ID, Time: s.clock(),
		Data: map[string]any{"hash": r.Hash, "kind": string(r.Kind), "target": r.Target, "requester": "person:" + r.RequesterID}}); err != nil {
		return err
	}
	return s.finish(ctx, tx, r, to, approver.Actor(), detail, s.clock())
}

// finish moves r to state with its "change.<state>" closing entry where
// the state has no entry of its own, refusing if someone else moved it first.
func (s *Service) finish(ctx context.Context, tx Tx, r *Request, to State, actor, detail string, now time.Time) error {
	from := r.State
	r.State, r.DecidedBy, r.Detail = to, actor, detail
	r.DecidedAt = now
	ok, err := tx.UpdateChangeRequest(ctx, *r, from)
	if err != nil {
		return fmt.Errorf("update change %s: %w", r.ID, err)
	}
	if !ok {
		return usererr.New(usererr.Conflict, "change_raced", "Someone else decided %s at the same moment; look at it again with interlock change show %s.", r.ID, r.ID)
	}
	switch to {
	case Applied, Expired, Void:
		return audit.Append(ctx, tx, audit.Entry{Kind: "change." + string(to), Version: 1, Actor: actor, Subject: "change:" + r.ID, Time: r.DecidedAt,
			Data: map[string]any{"hash": r.Hash, "kind": string(r.Kind), "target": r.Target}})
	}
	return nil
}

// hashPattern is the form of [ContentHash].
var hashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func actorOf(p wire.Principal) string {
	if p.Kind == "" || p.ID == "" {
		return "anonymous"
	}
	return p.Actor()
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}

// applyLogFork forks the log as r's requester, bound to the basis the
// approval checked, and records the approval with the new epoch. A fork
// refused because the basis moved in between leaves r void.
func (s *Service) applyLogFork(ctx context.Context, r Request, b audit.ForkBasis, approver wire.Principal) (Request, error) {
	var c forkContent
	if err := json.Unmarshal([]byte(r.Content), &c); err != nil {
		return r, fmt.Errorf("log.fork content of %s: %w", r.ID, err)
	}
	reason := fmt.Sprintf("%s (change request %s, approved by %s)", c.Reason, r.ID, approver.Actor())
	res, ferr := s.cfg.Forker.ForkIf(ctx, b, "person:"+r.RequesterID, reason)
	if ue, ok := usererr.As(ferr); ok {
		err := s.cfg.Store.InTx(ctx, func(tx Tx) error {
			var err error
			if r, err = s.load(ctx, tx, r.ID); err != nil {
				return err
			}
			return s.finish(ctx, tx, &r, Void, actorOf(approver), ue.Msg, s.clock())
		})
		if err != nil {
			return r, err
		}
		return r, usererr.New(usererr.Conflict, "change_stale", "%s Change request %s is void.", ue.Msg, r.ID)
	}
	if ferr != nil {
		return r, fmt.Errorf("apply approved change %s: %w", r.ID, ferr)
	}
	detail := fmt.Sprintf("forked: epoch %d begins at entry %d, continuing the database's %d entries; the signer had signed %d", res.Fork.Epoch, res.Index, res.Fork.BaseSize, res.Fork.PreviousSize)
	err := s.cfg.Store.InTx(ctx, func(tx Tx) error {
		var err error
		if r, err = s.load(ctx, tx, r.ID); err != nil {
			return err
		}
		return s.finishApproval(ctx, tx, &r, approver, Applied, detail)
	})
	return r, err
}
