package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ApplyRunbook validates a runbook and stores it as a new version. Applying
// the same text as the latest version changes nothing and returns it.
func (s *Manager) ApplyRunbook(ctx context.Context, by wire.Principal, src []byte) (RunbookVersion, error) {
	rb, err := ParseRunbook(src)
	if err != nil {
		return RunbookVersion{}, err
	}
	now := s.clock()
	var out RunbookVersion
	err = s.store.InTx(ctx, func(tx Tx) error {
		latest, err := tx.OpsRunbook(ctx, rb.Name, 0)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case string(latest.Source) == string(src):
			out = latest
			out.Runbook = rb
			return nil
		}
		out = RunbookVersion{Name: rb.Name, Version: latest.Version + 1, Source: src, Runbook: rb, AppliedBy: actorOf(by), AppliedAt: now}
		if err := tx.InsertRunbookVersion(ctx, out); err != nil {
			return err
		}
		sum := sha256.Sum256(src)
		return audit.Append(ctx, tx, audit.Entry{Kind: "runbook.applied", Version: 1, Actor: actorOf(by), Subject: "runbook:" + rb.Name, Time: now,
			Data: map[string]any{"version": out.Version, "sha256": hex.EncodeToString(sum[:]), "risk": string(rb.Risk), "removes_capacity": rb.RemovesCapacity}})
	})
	if err != nil {
		return RunbookVersion{}, fmt.Errorf("apply runbook %s: %w", rb.Name, err)
	}
	return out, nil
}

// GetRunbook returns a runbook's version (0: the latest), parsed. A
// version that today's checks refuse (applied before them) is still
// returned, for people to read and correct; it cannot be run.
func (s *Manager) GetRunbook(ctx context.Context, name string, version int) (RunbookVersion, error) {
	rv, err := s.loadRunbook(ctx, s.store, name, version)
	if ue, ok := usererr.As(err); ok && ue.Code == "runbook_outdated" {
		return rv, nil
	}
	return rv, err
}

// loadRunbook loads and checks a stored runbook. When a stored version no
// longer passes ParseRunbook (it was applied before a check was added,
// such as the one that keeps parameters out of shell text), it returns
// the version, decoded without checks, with a "runbook_outdated" user
// error: it must not be planned.
func (s *Manager) loadRunbook(ctx context.Context, r Reader, name string, version int) (RunbookVersion, error) {
	rv, err := r.OpsRunbook(ctx, name, version)
	if errors.Is(err, ErrNotFound) {
		return RunbookVersion{}, usererr.New(usererr.NotFound, "unknown_runbook", "There is no runbook named %q; interlock runbook list shows the runbooks.", name)
	}
	if err != nil {
		return RunbookVersion{}, fmt.Errorf("load runbook %s: %w", name, err)
	}
	return rv, parseStored(&rv)
}

// parseStored parses rv.Source into rv.Runbook (see loadRunbook).
func parseStored(rv *RunbookVersion) error {
	var err error
	rv.Runbook, err = ParseRunbook(rv.Source)
	if err == nil {
		return nil
	}
	ue, ok := usererr.As(err)
	if !ok || ue.Code != "bad_runbook" || yaml.Unmarshal(rv.Source, &rv.Runbook) != nil {
		return fmt.Errorf("stored runbook %s v%d no longer parses: %w", rv.Name, rv.Version, err)
	}
	return usererr.New(usererr.Conflict, "runbook_outdated",
		"Runbook %s v%d was applied before a check it now fails, so it cannot run: %s Apply a corrected version (interlock runbook show %s prints its text).",
		rv.Name, rv.Version, ue.Msg, rv.Name)
}

// ListRunbooks returns the latest version of every runbook.
func (s *Manager) ListRunbooks(ctx context.Context) ([]RunbookVersion, error) {
	rvs, err := s.store.OpsRunbooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list runbooks: %w", err)
	}
	for i := range rvs {
		if err := parseStored(&rvs[i]); err != nil {
			if ue, ok := usererr.As(err); !ok || ue.Code != "runbook_outdated" {
				return nil, err
			}
		}
	}
	return rvs, nil
}

// RunRequest asks to run a runbook.
type RunRequest struct {
	Runbook   string
	Params    map[string]string
	Reason    string
	Requester wire.Principal
	// Confirm holds values typed again for unusual parameters.
	Confirm map[string]string
	// BreakGlass skips approvals (never guardrails) and raises an alert.
	BreakGlass bool
	// MayReadSecret asks policy whether the requester may read the secret
	// at path (secret.get on Secret::"<path>"), recording a refusal as any
	// other. Plan and Run ask it for every secret the plan would read,
	// named or by default, before anything is planned or stored: the
	// executor later reads them as the system, so this is where the
	// requester's own right is checked. Nil refuses every plan that reads a
	// secret.
	MayReadSecret func(ctx context.Context, path string) error
}

// PlanResult is a plan with every guardrail's verdict and what it needs.
type PlanResult struct {
	Plan     Plan      `json:"plan"`
	Verdicts []Verdict `json:"verdicts"`
	// Allowed is true when every verdict passed.
	Allowed        bool     `json:"allowed"`
	NeedsApprovals int      `json:"needs_approvals"`
	ApproverRoles  []string `json:"approver_roles,omitempty"`
	// NeedsConfirm names unusual parameters the operator must type again.
	NeedsConfirm []string `json:"needs_confirm,omitempty"`
	// Unusual names parameters far outside the runbook's history.
	Unusual   []string `json:"unusual,omitempty"`
	PolicyIDs []string `json:"policy_ids,omitempty"`
	// Hosts maps each planned host ID to its name, for display.
	Hosts map[string]string `json:"hosts"`
}

// Plan builds the plan for req and judges it, changing nothing (dry run).
func (s *Manager) Plan(ctx context.Context, req RunRequest) (PlanResult, error) {
	allowed, err := s.authorizeSecrets(ctx, req)
	if err != nil {
		return PlanResult{}, err
	}
	res, _, err := s.plan(ctx, s.store, req, "", 0)
	if err == nil {
		err = checkedSecrets(res.Plan, allowed)
	}
	return res, err
}

// authorizeSecrets asks req.MayReadSecret about every secret the latest
// version of the runbook would read with req's parameters, defaults
// included, and returns the references it allowed. Parameter errors are
// returned as planning would return them.
func (s *Manager) authorizeSecrets(ctx context.Context, req RunRequest) ([]string, error) {
	rv, err := s.loadRunbook(ctx, s.store, req.Runbook, 0)
	if err != nil {
		return nil, err
	}
	rb := rv.Runbook
	values, err := rb.resolveParams(req.Params, nil)
	if err != nil {
		return nil, err
	}
	refs := rb.secretRefs(values)
	for _, ref := range refs {
		path := strings.TrimPrefix(ref, "secret:")
		var params []string
		for _, p := range rb.Parameters {
			if p.Type == ParamSecret && values[p.Name] == ref {
				params = append(params, p.Name)
			}
		}
		if req.MayReadSecret == nil {
			return nil, usererr.New(usererr.Forbidden, "secret_forbidden",
				"Parameter %s names secret %s, and this request could not be checked for the right to read it, so nothing was planned.", strings.Join(params, ", "), path)
		}
		if err := req.MayReadSecret(ctx, path); err != nil {
			if ue, ok := usererr.As(err); ok && ue.Kind == usererr.Forbidden {
				return nil, usererr.New(usererr.Forbidden, "secret_forbidden",
					"Parameter %s names secret %s, which policy does not allow you to read (secret.get); an operation reads its secrets on behalf of the person who asks for it, so nothing was planned. Name a secret you may read, or ask an admin for secret.get on %s.",
					strings.Join(params, ", "), path, path)
			}
			return nil, fmt.Errorf("authorize secret.get on %s: %w", path, err)
		}
	}
	return refs, nil
}

// checkedSecrets refuses a plan that reads a secret authorizeSecrets did
// not allow (the runbook changed between the check and the plan).
func checkedSecrets(p Plan, allowed []string) error {
	for _, ref := range p.SecretRefs {
		if !slices.Contains(allowed, ref) {
			return usererr.New(usererr.Conflict, "runbook_changed",
				"Runbook %s changed while the operation was being planned; nothing was planned, run it again.", p.Runbook)
		}
	}
	return nil
}

// plan builds and judges a plan through r. self is the operation being
// re-planned and version the runbook version it pinned (0: latest).
func (s *Manager) plan(ctx context.Context, r Reader, req RunRequest, self string, version int) (PlanResult, *Inventory, error) {
	rv, err := s.loadRunbook(ctx, r, req.Runbook, version)
	if err != nil {
		return PlanResult{}, nil, err
	}
	rb := rv.Runbook
	inv, err := s.snapshot(ctx, r)
	if err != nil {
		return PlanResult{}, nil, err
	}
	p, err := BuildPlan(rb, rv.Version, req.Params, inv, self)
	if err != nil {
		return PlanResult{}, inv, err
	}
	var intParams []string
	for _, prm := range rb.Parameters {
		if prm.Type == ParamInt {
			intParams = append(intParams, prm.Name)
		}
	}
	history, err := s.history(ctx, r, rb.Name, intParams, self)
	if err != nil {
		return PlanResult{}, inv, err
	}
	ev := Evaluate(inv, Check{Plan: p, Self: self, IntParams: intParams, History: history, Confirm: req.Confirm, UnusualFactor: s.cfg.UnusualFactor})
	res := PlanResult{Plan: p, Verdicts: ev.Verdicts, Allowed: ev.Allowed(), NeedsConfirm: ev.NeedsConfirm, Unusual: ev.Unusual, Hosts: map[string]string{}}
	for _, id := range p.Hosts() {
		res.Hosts[id] = inv.byID[id].Name
	}
	reqm, err := s.requirement(ctx, req.Requester, rb, p)
	if err != nil {
		return PlanResult{}, inv, err
	}
	res.NeedsApprovals, res.ApproverRoles, res.PolicyIDs = reqm.Count, reqm.Roles, reqm.PolicyIDs
	if len(ev.Unusual) > 0 {
		res.NeedsApprovals++
		if len(res.ApproverRoles) == 0 {
			res.ApproverRoles = slices.Clone(policy.DefaultRequirement.Roles)
		}
	}
	if req.BreakGlass {
		res.NeedsApprovals = 0
	}
	return res, inv, nil
}

func (s *Manager) requirement(ctx context.Context, requester wire.Principal, rb Runbook, p Plan) (policy.Requirement, error) {
	if s.policy == nil {
		d := policy.DefaultRequirement
		return policy.Requirement{Count: d.Count, Roles: slices.Clone(d.Roles), PolicyIDs: slices.Clone(d.PolicyIDs)}, nil
	}
	r, err := s.policy.ApprovalRequirement(ctx, policy.Request{
		Principal: requester,
		Action:    "op.run",
		Resource:  policy.Resource{Type: "Runbook", ID: rb.Name},
		Context: map[string]any{
			"risk":             string(rb.Risk),
			"removes_capacity": rb.RemovesCapacity,
			"service":          p.Service,
			"services":         p.Services,
			"count":            len(p.Hosts()),
			"now":              s.clock(),
		},
	})
	if err != nil {
		return policy.Requirement{}, fmt.Errorf("approval requirement for runbook %s: %w", rb.Name, err)
	}
	if r.Count < 0 {
		r.Count = 0
	}
	return r, nil
}

// history returns, for each numeric parameter, the largest value the
// runbook has used in operations that were approved and started, glass
// not broken.
func (s *Manager) history(ctx context.Context, r Reader, runbook string, intParams []string, self string) (map[string]int64, error) {
	if len(intParams) == 0 {
		return nil, nil
	}
	ops, err := r.OpsOperations(ctx, OperationFilter{Runbook: runbook, States: historyStates})
	if err != nil {
		return nil, fmt.Errorf("load history of runbook %s: %w", runbook, err)
	}
	out := map[string]int64{}
	for _, op := range ops {
		if op.ID == self || op.BreakGlass {
			continue
		}
		for _, name := range intParams {
			v, err := strconv.ParseInt(op.Plan.Params[name], 10, 64)
			if err != nil {
				continue
			}
			if cur, ok := out[name]; !ok || v > cur {
				out[name] = v
			}
		}
	}
	return out, nil
}

// GuardrailError is the Details of a refusal by guardrails.
type GuardrailError struct {
	Verdicts     []Verdict `json:"verdicts"`
	NeedsConfirm []string  `json:"needs_confirm,omitempty"`
}

func refusal(res PlanResult, what string) error {
	var failed []string
	for _, v := range res.Verdicts {
		if !v.Pass {
			failed = append(failed, v.Message)
		}
	}
	e := usererr.New(usererr.Forbidden, "guardrail", "%s refused by guardrails before anything ran: %s.", what, strings.Join(failed, "; "))
	e.Details = GuardrailError{Verdicts: res.Verdicts, NeedsConfirm: res.NeedsConfirm}
	return e
}

// Run plans req, judges it, and either refuses it (recording only the
// refusal) or stores the operation: waiting for approvals, or ready when
// none are needed or glass was broken.
func (s *Manager) Run(ctx context.Context, req RunRequest) (Operation, PlanResult, error) {
	if req.Requester.Kind != "person" || req.Requester.ID == "" {
		return Operation{}, PlanResult{}, usererr.New(usererr.Forbidden, "person_required", "Only a person can run a runbook.")
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		what := "Running a runbook needs a reason (--reason), like a ticket or incident ID."
		if req.BreakGlass {
			what = "Breaking glass needs a reason (--reason): it raises an alert and someone will review it."
		}
		return Operation{}, PlanResult{}, usererr.New(usererr.Invalid, "reason_required", "%s", what)
	}
	if len(req.Reason) > 1000 {
		return Operation{}, PlanResult{}, usererr.New(usererr.Invalid, "reason_too_long", "The reason must be at most 1000 characters.")
	}
	allowed, err := s.authorizeSecrets(ctx, req)
	if err != nil {
		return Operation{}, PlanResult{}, err
	}
	id, err := s.newID("op_")
	if err != nil {
		return Operation{}, PlanResult{}, err
	}
	var (
		op      Operation
		res     PlanResult
		refused error
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		refused = nil
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		var err error
		res, _, err = s.plan(ctx, tx, req, "", 0)
		if err != nil {
			return err
		}
		if err := checkedSecrets(res.Plan, allowed); err != nil {
			return err
		}
		now := s.clock()
		if !res.Allowed {
			var failed []map[string]any
			for _, v := range res.Verdicts {
				if !v.Pass {
					failed = append(failed, map[string]any{"rule": v.Rule, "service": v.Service, "message": v.Message})
				}
			}
			refused = refusal(res, "The operation was")
			return audit.Append(ctx, tx, audit.Entry{Kind: "op.refused", Version: 1, Actor: req.Requester.Actor(), Subject: "runbook:" + req.Runbook, Time: now,
				Data:     map[string]any{"runbook": req.Runbook, "params": res.Plan.Params, "plan_hash": res.Plan.Hash, "failed": failed, "break_glass": req.BreakGlass},
				Personal: map[string]string{"reason": req.Reason}})
		}
		op = Operation{ID: id, Plan: res.Plan, State: OpPending, RequesterID: req.Requester.ID, Reason: req.Reason, BreakGlass: req.BreakGlass,
			Needed: res.NeedsApprovals, NeededRoles: res.ApproverRoles, CreatedAt: now, UpdatedAt: now}
		if op.Needed == 0 {
			op.State = OpReady
		}
		if err := tx.InsertOperation(ctx, op); err != nil {
			return err
		}
		// Version 2 (2026-12-03): the hosts by hosts_digest, host_count and
		// wave_sizes, with services and secret_refs, instead of the list
		// of every host ID (version 1), which passed the entry limit at
		// about 2,500 hosts. The list stays in the store with the plan.
		kind, data := "op.requested", planRecord(op.Plan)
		for k, v := range map[string]any{
			"runbook": op.Plan.Runbook, "runbook_version": op.Plan.RunbookVersion, "params": op.Plan.Params,
			"approvals_needed": op.Needed, "approver_roles": op.NeededRoles, "policy_ids": res.PolicyIDs,
			"unusual": res.Unusual, "state": string(op.State),
		} {
			data[k] = v
		}
		if req.BreakGlass {
			kind, data["alert"] = "op.break_glass", true
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 2, Actor: req.Requester.Actor(), Subject: "op:" + id, Time: now,
			Data: data, Personal: map[string]string{"reason": req.Reason, "requester_username": req.Requester.Name}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Operation{}, res, err
		}
		return Operation{}, res, fmt.Errorf("run %s: %w", req.Runbook, err)
	}
	if refused != nil {
		return Operation{}, res, refused
	}
	lvl := slog.LevelInfo
	if req.BreakGlass {
		lvl = slog.LevelWarn
		if s.cfg.OnBreakGlass != nil {
			s.cfg.OnBreakGlass(op)
		}
	}
	s.log.Log(ctx, lvl, "operation requested", slog.String("op", op.ID), slog.String("runbook", req.Runbook),
		slog.String("state", string(op.State)), slog.Bool("break_glass", req.BreakGlass))
	return op, res, nil
}

// BreakGlass runs req without approvals. Guardrails still hold; a reason
// is required; the audit entry (op.break_glass) carries alert=true.
func (s *Manager) BreakGlass(ctx context.Context, req RunRequest) (Operation, PlanResult, error) {
	req.BreakGlass = true
	return s.Run(ctx, req)
}

// Get returns one operation.
func (s *Manager) Get(ctx context.Context, id string) (Operation, error) {
	op, err := s.store.OpsOperation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Operation{}, unknownOp(id)
	}
	if err != nil {
		return Operation{}, fmt.Errorf("load op %s: %w", id, err)
	}
	return op, nil
}

func unknownOp(id string) error {
	return usererr.New(usererr.NotFound, "unknown_operation", "There is no operation %s; interlock ops list shows recent ones.", id)
}

// List returns operations matching f, newest first.
func (s *Manager) List(ctx context.Context, f OperationFilter) ([]Operation, error) {
	ops, err := s.store.OpsOperations(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list ops: %w", err)
	}
	return ops, nil
}

// validApprovals are the approvals of op that still count at now.
func validApprovals(op Operation, now time.Time) []Approval {
	var out []Approval
	for _, a := range op.Approvals {
		if a.PlanHash == op.Plan.Hash && now.Before(a.ExpiresAt) && a.PersonID != op.RequesterID {
			out = append(out, a)
		}
	}
	return out
}

// Approve records approver's signature on planHash. The requester can never
// approve their own operation (by person); the approver must hold one of
// the required roles; planHash must be the operation's. The plan is built
// again first: if its targets drifted, every approval is void and the
// operation becomes void. ready reports whether the operation may now start.
func (s *Manager) Approve(ctx context.Context, opID string, approver wire.Principal, planHash string) (op Operation, ready bool, err error) {
	var outcome error
	err = s.store.InTx(ctx, func(tx Tx) error {
		outcome = nil
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		var err error
		op, err = loadOp(ctx, tx, opID)
		if err != nil {
			return err
		}
		now := s.clock()
		refuse := func(code, format string, args ...any) error {
			ue := usererr.New(usererr.Forbidden, code, format, args...)
			outcome = ue
			return audit.Append(ctx, tx, audit.Entry{Kind: "op.approval_refused", Version: 1, Actor: actorOf(approver), Subject: "op:" + op.ID, Time: now,
				Data: map[string]any{"code": code, "plan_hash": planHash}, Personal: map[string]string{"approver_username": approver.Name, "why": ue.Msg}})
		}
		if op.State != OpPending {
			return usererr.New(usererr.Conflict, "op_not_pending", "Operation %s is %s, not waiting for approval.", op.ID, op.State)
		}
		if err := CheckPlanIntact(op); err != nil {
			return err
		}
		if approver.Kind != "person" || approver.ID == "" {
			return refuse("person_required", "Only a person can approve an operation.")
		}
		if approver.ID == op.RequesterID {
			return refuse("self_approval", "The requester cannot approve their own operation; another person with role %s must approve %s.", rolesText(op.NeededRoles), op.ID)
		}
		role := ""
		for _, r := range approver.Roles {
			if len(op.NeededRoles) == 0 || slices.Contains(op.NeededRoles, r) {
				role = r
				break
			}
		}
		if role == "" && len(op.NeededRoles) > 0 {
			return refuse("approver_role", "Approving %s needs role %s; you hold %s.", op.ID, rolesText(op.NeededRoles), rolesText(approver.Roles))
		}
		if s.cfg.Independence != nil {
			// Independence is judged against the moment of the request: an
			// account or role made after it was made for it.
			if err := s.cfg.Independence.CheckIndependentApprover(ctx, op.RequesterID, approver.ID, op.CreatedAt); err != nil {
				ue, ok := usererr.As(err)
				if !ok {
					return fmt.Errorf("check approver independence: %w", err)
				}
				return refuse(ue.Code, "%s Operation %s stays pending.", ue.Msg, op.ID)
			}
		}
		valid := validApprovals(op, now)
		for _, a := range valid {
			if a.PersonID == approver.ID {
				return usererr.New(usererr.Conflict, "already_approved", "You have already approved %s; it needs another person.", op.ID)
			}
		}
		if planHash != op.Plan.Hash {
			return usererr.New(usererr.Conflict, "plan_hash_mismatch",
				"You approved plan %s, but operation %s has plan %s; look at it again with interlock ops show %s and approve what it shows.",
				short(planHash), op.ID, short(op.Plan.Hash), op.ID)
		}
		if voided, err := s.voidIfDrifted(ctx, tx, &op, now); err != nil || voided != nil {
			outcome = voided
			if err == nil && op.State == OpPending { // guardrails refused; nothing changed
				err = audit.Append(ctx, tx, audit.Entry{Kind: "op.approval_refused", Version: 1, Actor: actorOf(approver), Subject: "op:" + op.ID, Time: now,
					Data: map[string]any{"code": "guardrail", "plan_hash": planHash}})
			}
			return err
		}
		valid = append(valid, Approval{PersonID: approver.ID, Name: approver.Name, Role: role, PlanHash: planHash, At: now, ExpiresAt: now.Add(s.cfg.ApprovalTTL)})
		op.Approvals = valid
		op.UpdatedAt = now
		if len(valid) >= op.Needed {
			op.State, ready = OpReady, true
		}
		if err := tx.UpdateOperation(ctx, op); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.approved", Version: 1, Actor: approver.Actor(), Subject: "op:" + op.ID, Time: now,
			Data:     map[string]any{"plan_hash": planHash, "role": role, "approvals": len(valid), "needed": op.Needed, "ready": ready},
			Personal: map[string]string{"approver_username": approver.Name}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Operation{}, false, err
		}
		return Operation{}, false, fmt.Errorf("approve op %s: %w", opID, err)
	}
	if outcome != nil {
		return op, false, outcome
	}
	s.log.InfoContext(ctx, "op approved", slog.String("op", op.ID), slog.Int("approvals", len(op.Approvals)), slog.Bool("ready", ready))
	return op, ready, nil
}

func loadOp(ctx context.Context, r Reader, id string) (Operation, error) {
	op, err := r.OpsOperation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Operation{}, unknownOp(id)
	}
	if err != nil {
		return Operation{}, fmt.Errorf("load op %s: %w", id, err)
	}
	return op, nil
}

// voidIfDrifted builds op's plan again. If its targets or anything else in
// it changed, op becomes void (stored and audited) and the returned user
// error says why. If guardrails now refuse the same plan, it returns that
// refusal and leaves op as it is.
func (s *Manager) voidIfDrifted(ctx context.Context, tx Tx, op *Operation, now time.Time) (userErr error, err error) {
	req := RunRequest{Runbook: op.Plan.Runbook, Params: op.Plan.Params, Requester: wire.Principal{Kind: "person", ID: op.RequesterID}, Confirm: op.Plan.Params, BreakGlass: op.BreakGlass}
	res, inv, perr := s.plan(ctx, tx, req, op.ID, op.Plan.RunbookVersion)
	var reason string
	switch {
	case perr != nil:
		ue, ok := usererr.As(perr)
		if !ok || inv == nil {
			return nil, perr
		}
		reason = driftReason(inv, op.Plan, op.ID)
		if reason == "" {
			reason = ue.Msg
		}
	case res.Plan.Hash != op.Plan.Hash:
		reason = driftReason(inv, op.Plan, op.ID)
		if reason == "" {
			reason = "the plan is no longer the same (its runbook, parameters or the services its hosts serve changed)"
		}
	case !res.Allowed:
		return refusal(res, "Approving or starting operation "+op.ID+" was"), nil
	default:
		return nil, nil
	}
	op.State = OpVoid
	op.Detail = "approvals void: " + reason
	op.UpdatedAt = now
	if err := tx.UpdateOperation(ctx, *op); err != nil {
		return nil, err
	}
	if err := audit.Append(ctx, tx, audit.Entry{Kind: "op.voided", Version: 1, Actor: "system", Subject: "op:" + op.ID, Time: now,
		Data: map[string]any{"reason": reason, "plan_hash": op.Plan.Hash, "approvals_voided": len(op.Approvals)}}); err != nil {
		return nil, err
	}
	return usererr.New(usererr.Conflict, "plan_drifted",
		"The targets of operation %s drifted since it was planned: %s. Every approval is void; run it again for a new plan.", op.ID, reason), nil
}

// driftReason names the planned hosts that can no longer be targeted.
func driftReason(inv *Inventory, p Plan, self string) string {
	return hostsDrift(inv, p.Hosts(), self)
}

// hostsDrift names the hosts among ids that can no longer be targeted.
func hostsDrift(inv *Inventory, ids []string, self string) string {
	held := inv.held(self)
	var why []string
	for _, id := range ids {
		h, ok := inv.byID[id]
		switch {
		case !ok:
			why = append(why, "host "+id+" is gone")
		case !h.RevokedAt.IsZero():
			why = append(why, "host "+h.Name+" is revoked")
		case !inv.Live(h):
			why = append(why, "host "+h.Name+" is unhealthy or has not sent a heartbeat within "+inv.StaleAfter.String())
		case !h.InService:
			why = append(why, "host "+h.Name+" is out of service")
		case held[id] != "":
			why = append(why, "host "+h.Name+" is held by operation "+held[id])
		}
	}
	if len(why) > 5 {
		why = append(why[:5], fmt.Sprintf("%d more", len(why)-5))
	}
	return strings.Join(why, ", ")
}

// Deny ends an operation that has not started. The requester may withdraw
// their own; otherwise the person must hold one of the approver roles.
func (s *Manager) Deny(ctx context.Context, opID string, by wire.Principal, reason string) (Operation, error) {
	var op Operation
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		var err error
		if op, err = loadOp(ctx, tx, opID); err != nil {
			return err
		}
		if op.State != OpPending && op.State != OpReady {
			return usererr.New(usererr.Conflict, "op_not_pending", "Operation %s is %s; only an operation that has not started can be denied (use halt or abort).", op.ID, op.State)
		}
		if by.Kind != "person" || (by.ID != op.RequesterID && len(op.NeededRoles) > 0 && !slices.ContainsFunc(by.Roles, func(r string) bool { return slices.Contains(op.NeededRoles, r) })) {
			return usererr.New(usererr.Forbidden, "approver_role", "Denying %s needs role %s, or being the person who requested it.", op.ID, rolesText(op.NeededRoles))
		}
		now := s.clock()
		op.State, op.UpdatedAt, op.Detail = OpDenied, now, "denied by "+by.Name
		if err := tx.UpdateOperation(ctx, op); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.denied", Version: 1, Actor: by.Actor(), Subject: "op:" + op.ID, Time: now,
			Data: map[string]any{"plan_hash": op.Plan.Hash, "withdrawn": by.ID == op.RequesterID}, Personal: map[string]string{"reason": reason}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Operation{}, err
		}
		return Operation{}, fmt.Errorf("deny op %s: %w", opID, err)
	}
	return op, nil
}

// Start moves a ready operation to running, after checking again, in the
// same transaction, everything that let it become ready: its approvals
// still count (distinct people other than the requester, on this plan's
// hash, unexpired) unless glass was broken, its targets have not drifted,
// and its guardrails pass. The executor MUST call Start before dispatching
// anything. Expired approvals send the operation back to waiting; drift
// voids it.
func (s *Manager) Start(ctx context.Context, opID string, by wire.Principal) (Operation, error) {
	var (
		op      Operation
		outcome error
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		outcome = nil
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		var err error
		if op, err = loadOp(ctx, tx, opID); err != nil {
			return err
		}
		if op.State != OpReady {
			return usererr.New(usererr.Conflict, "op_not_ready", "Operation %s is %s, not ready to start.", op.ID, op.State)
		}
		if err := CheckPlanIntact(op); err != nil {
			return err
		}
		now := s.clock()
		if !op.BreakGlass {
			valid := validApprovals(op, now)
			if len(valid) < op.Needed {
				op.State, op.Approvals, op.UpdatedAt = OpPending, valid, now
				op.Detail = fmt.Sprintf("approvals expired: %d of %d still valid", len(valid), op.Needed)
				if err := tx.UpdateOperation(ctx, op); err != nil {
					return err
				}
				outcome = usererr.New(usererr.Conflict, "approvals_expired", "Operation %s needs %d approvals but only %d are still valid (they expire after %s); it is waiting for approval again.",
					op.ID, op.Needed, len(valid), s.cfg.ApprovalTTL)
				return audit.Append(ctx, tx, audit.Entry{Kind: "op.approvals_expired", Version: 1, Actor: "system", Subject: "op:" + op.ID, Time: now,
					Data: map[string]any{"valid": len(valid), "needed": op.Needed}})
			}
		}
		if voided, err := s.voidIfDrifted(ctx, tx, &op, now); err != nil || voided != nil {
			outcome = voided
			return err
		}
		op.State, op.UpdatedAt, op.Detail = OpRunning, now, ""
		if err := tx.UpdateOperation(ctx, op); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.started", Version: 1, Actor: actorOf(by), Subject: "op:" + op.ID, Time: now,
			Data: map[string]any{"plan_hash": op.Plan.Hash, "approvals": len(op.Approvals), "break_glass": op.BreakGlass}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Operation{}, err
		}
		return Operation{}, fmt.Errorf("start op %s: %w", opID, err)
	}
	if outcome != nil {
		return op, outcome
	}
	return op, nil
}

// CheckResume says whether a stopped operation may continue: a resume
// sends the hosts it has not reached yet, so it needs what a start needs.
// Its approvals must still be valid (unless glass was broken), since a
// halt is a reason for fresh eyes and an approval is for a window of time,
// not for whenever someone resumes; and untouched, the hosts it would
// still send to, must still be targetable (present, live, in service, not
// held by another operation); and no freeze may cover its services. It
// changes nothing: a refused operation
// stays as it is, for a person to abort and plan again. Capacity floors
// are judged before each wave as always.
func (s *Manager) CheckResume(ctx context.Context, op Operation, untouched []string) error {
	now := s.clock()
	if !op.BreakGlass {
		if valid := validApprovals(op, now); len(valid) < op.Needed {
			return usererr.New(usererr.Conflict, "approvals_expired",
				"Operation %s cannot resume: only %d of the %d approvals it needs are still valid (approvals last %s). Abort it and run it again: the new plan covers the hosts it has not reached and needs fresh approval.",
				op.ID, len(valid), op.Needed, s.cfg.ApprovalTTL)
		}
	}
	inv, err := s.snapshot(ctx, s.store)
	if err != nil {
		return fmt.Errorf("check resume of op %s: %w", op.ID, err)
	}
	for _, v := range Freezes(inv, op.Plan) {
		if !v.Pass {
			return usererr.New(usererr.Conflict, "frozen", "Operation %s cannot resume: %s.", op.ID, v.Message)
		}
	}
	if why := hostsDrift(inv, untouched, op.ID); why != "" {
		return usererr.New(usererr.Conflict, "plan_drifted",
			"Operation %s cannot resume: hosts it has not reached changed since it was planned: %s. Abort it and run it again for a plan of what is left.", op.ID, why)
	}
	return nil
}

// CheckWave judges the capacity floors of every service op's hosts serve
// against live health, just before wave n (1-based) is dispatched. The
// executor MUST halt the operation if any verdict fails.
func (s *Manager) CheckWave(ctx context.Context, op Operation, wave int) ([]Verdict, error) {
	if wave < 1 || wave > len(op.Plan.Waves) {
		return nil, fmt.Errorf("check wave %d of op %s: it has %d waves", wave, op.ID, len(op.Plan.Waves))
	}
	inv, err := s.snapshot(ctx, s.store)
	if err != nil {
		return nil, fmt.Errorf("check wave %d of op %s: %w", wave, op.ID, err)
	}
	// A freeze declared after the start stops the next wave too.
	vs := append(CapacityFloors(inv, op.Plan, WaveRemoving(op.Plan, wave), op.ID), Freezes(inv, op.Plan)...)
	for i := range vs {
		vs[i].Message = fmt.Sprintf("before wave %d: %s", wave, vs[i].Message)
	}
	return vs, nil
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, " or ")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// SetState moves operation id from one of the states in from to to, with
// detail as its Detail, and appends the matching audit entry ("op.resumed"
// for a return to running, otherwise "op.<to>") with actor as its Actor, in
// the same transaction. When an operation whose runbook removes capacity
// succeeds, every host of its plan still in service is taken out of service
// in that transaction too (the executor may already have done so host by
// host through [Manager.SetHostInService]). It changes nothing and returns
// a Conflict when the current state is not in from. The executor uses it
// (exec.Ops); moving a ready operation to running goes through
// [Manager.Start] instead.
func (s *Manager) SetState(ctx context.Context, id string, from []OpState, to OpState, detail string, actor string) error {
	if to == OpRunning && slices.Contains(from, OpReady) {
		return errors.New("ops: SetState must not start an operation; use Manager.Start")
	}
	if actor == "" {
		actor = "system"
	}
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		op, err := loadOp(ctx, tx, id)
		if err != nil {
			return err
		}
		if !slices.Contains(from, op.State) {
			return usererr.New(usererr.Conflict, "op_state", "Operation %s is %s, so it cannot become %s.", op.ID, op.State, to)
		}
		prev := op.State
		now := s.clock()
		op.State, op.Detail, op.UpdatedAt = to, detail, now
		if err := tx.UpdateOperation(ctx, op); err != nil {
			return err
		}
		if to == OpSucceeded && op.Plan.RemovesCapacity {
			if err := s.removeHosts(ctx, tx, op, actor, now); err != nil {
				return err
			}
		}
		kind := "op." + string(to)
		if to == OpRunning {
			kind = "op.resumed"
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: actor, Subject: "op:" + op.ID, Time: now,
			Data: map[string]any{"from": string(prev), "to": string(to), "detail": detail}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return err
		}
		return fmt.Errorf("set state of op %s to %s: %w", id, to, err)
	}
	return nil
}

// ListByState returns every operation currently in state.
func (s *Manager) ListByState(ctx context.Context, state OpState) ([]Operation, error) {
	return s.List(ctx, OperationFilter{States: []OpState{state}})
}

// removeHosts takes op's hosts that are still in service out of service.
func (s *Manager) removeHosts(ctx context.Context, tx Tx, op Operation, actor string, now time.Time) error {
	for _, id := range op.Plan.Hosts() {
		if err := takeOutOfService(ctx, tx, op.ID, id, actor, now); err != nil {
			return err
		}
	}
	return nil
}

// TakeOutOfService implements exec.Ops: host leaves service, for opID,
// before a capacity-removing step is sent to it. A wave's hosts leave at
// once, so their transactions share commits.
func (s *Manager) TakeOutOfService(ctx context.Context, opID, hostID string) error {
	now := s.clock()
	err := s.inTxGrouped(ctx, func(tx Tx) error {
		return takeOutOfService(ctx, tx, opID, hostID, "system", now)
	})
	if err != nil {
		return fmt.Errorf("take host %s out of service for op %s: %w", hostID, opID, err)
	}
	return nil
}

// takeOutOfService takes one host out of service for opID and audits it;
// a host that is gone or already out is left alone.
func takeOutOfService(ctx context.Context, tx Tx, opID, hostID, actor string, now time.Time) error {
	h, err := tx.OpsHost(ctx, hostID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !h.InService {
		return nil
	}
	if err := tx.SetHostInService(ctx, hostID, false); err != nil {
		return err
	}
	return audit.Append(ctx, tx, audit.Entry{Kind: "host.removed_from_service", Version: 1, Actor: actor, Subject: "host:" + hostID, Time: now,
		Data: map[string]any{"op": opID}})
}
