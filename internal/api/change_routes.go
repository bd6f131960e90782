package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ChangeRoutes serves change requests (see internal/api/wire/change.go)
// and the configuration routes that make them: PUT /v1/policy,
// POST /v1/runbooks, PUT /v1/services/{name}, POST /v1/services,
// POST /v1/users/invitations and POST /v1/users/{name}/disable. Those
// patterns are also in PolicyRoutes, OpsRoutes and IdentityRoutes, whose
// handlers apply directly; the server MUST be built with these in their
// place ([Override]), so that nothing that loosens the gate takes effect
// without a second person.
func ChangeRoutes(svc *change.Service, m *ops.Manager) []Route {
	h := changeHandlers{svc: svc, ops: m}
	changeRes := func(r *http.Request) Resource { return Resource{Type: policy.ResourceChange, ID: r.PathValue("id")} }
	policyRes := func(*http.Request) Resource { return policyResource }
	return []Route{
		{Pattern: "GET /v1/changes", Action: policy.ActionChangeList, Handle: h.list},
		{Pattern: "GET /v1/changes/{id}", Action: policy.ActionChangeGet, Resource: changeRes, Handle: h.get},
		{Pattern: "POST /v1/changes/{id}/approvals", Action: policy.ActionChangeApprove, Resource: changeRes, Handle: h.approve},
		{Pattern: "POST /v1/changes/{id}/deny", Action: policy.ActionChangeDeny, Resource: changeRes, Handle: h.deny},
		{Pattern: "POST /v1/changes/{id}/withdraw", Action: policy.ActionChangeWithdraw, Resource: changeRes, Handle: h.withdraw},
		{Pattern: "POST /v1/changes/{id}/apply", Action: policy.ActionChangeApply, Resource: changeRes, Handle: h.collect},

		{Pattern: "PUT /v1/policy", Action: policy.ActionPolicyApply, Resource: policyRes, Handle: h.applyPolicy},
		{Pattern: "POST /v1/runbooks", Action: policy.ActionRunbookApply, Handle: h.applyRunbook},
		{Pattern: "PUT /v1/services/{name}", Action: policy.ActionServiceSet, Handle: h.setService,
			Resource: func(r *http.Request) Resource { return Resource{Type: policy.ResourceService, ID: r.PathValue("name")} }},
		{Pattern: "POST /v1/services", Action: policy.ActionServiceSet, Handle: h.applyServices},
		{Pattern: "POST /v1/users/invitations", Action: policy.ActionUserInvite, Handle: h.invite},
		{Pattern: "POST /v1/users/{name}/disable", Action: policy.ActionUserDisable, Handle: h.disable},
	}
}

// Override returns base without the routes whose patterns replace also
// serves, so that replace's routes stand in for them.
func Override(base []Route, replace []Route) []Route {
	taken := map[string]bool{}
	for _, r := range replace {
		taken[r.Pattern] = true
	}
	var out []Route
	for _, r := range base {
		if !taken[r.Pattern] {
			out = append(out, r)
		}
	}
	return out
}

// changeStates are the states a change request list may ask for.
var changeStates = []change.State{change.Pending, change.Approved, change.Applied, change.Denied, change.Withdrawn, change.Expired, change.Void}

func stateNames() []string {
	out := make([]string, len(changeStates))
	for i, s := range changeStates {
		out[i] = string(s)
	}
	return out
}

type changeHandlers struct {
	svc *change.Service
	ops *ops.Manager
}

func wireChange(v change.View, withDiff bool) wire.ChangeRequest {
	out := wire.ChangeRequest{ID: v.ID, Kind: string(v.Kind), Target: v.Target, State: string(v.State), Hash: v.Hash, Summary: v.Summary,
		RequesterID: v.RequesterID, RequesterName: v.RequesterName, CreatedAt: v.CreatedAt, ExpiresAt: v.ExpiresAt,
		DecidedBy: v.DecidedBy, DecidedAt: v.DecidedAt, Detail: v.Detail}
	if withDiff {
		out.Diff = v.Diff
	}
	return out
}

// pending answers 202 with the request a configuration route made.
func pending(c *Call, v *change.View) error {
	return c.JSON(http.StatusAccepted, wire.ChangePending{ChangeRequest: wireChange(*v, true)})
}

func (h changeHandlers) list(c *Call) error {
	f := change.Filter{Limit: 100}
	if s := c.R.URL.Query().Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			st := change.State(strings.TrimSpace(st))
			if !slices.Contains(changeStates, st) {
				return usererr.New(usererr.Invalid, "bad_state", "There is no change request state %q; use one or more of %s, separated by commas.", st, strings.Join(stateNames(), ", "))
			}
			f.States = append(f.States, st)
		}
	}
	var err error
	if f.Limit, err = listLimit(c.R.URL.Query(), f.Limit); err != nil {
		return err
	}
	rs, err := h.svc.List(c.Context(), f)
	if err != nil {
		return err
	}
	out := wire.ChangeList{Changes: make([]wire.ChangeRequest, 0, len(rs))}
	for _, r := range rs {
		out.Changes = append(out.Changes, wireChange(change.View{Request: r}, false))
	}
	return c.JSON(http.StatusOK, out)
}

func (h changeHandlers) get(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	v, err := h.svc.Get(c.Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireChange(v, true))
}

func (h changeHandlers) approve(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	var in wire.ChangeApproveRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.Hash == "" {
		return usererr.New(usererr.Invalid, "hash_required", "Send the hash of the content you reviewed in \"hash\" (interlock change show %s prints it).", id)
	}
	v, err := h.svc.Approve(c.Context(), id, c.Principal, in.Hash)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireChange(v, true))
}

func (h changeHandlers) deny(c *Call) error {
	return h.close(c, h.svc.Deny)
}

func (h changeHandlers) withdraw(c *Call) error {
	return h.close(c, h.svc.Withdraw)
}

func (h changeHandlers) close(c *Call, fn func(ctx context.Context, id string, by wire.Principal, reason string) (change.View, error)) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	var in wire.ReasonRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	v, err := fn(c.Context(), id, c.Principal, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireChange(v, false))
}

func (h changeHandlers) collect(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	if v, rc, handled, err := h.svc.CollectReset(c.Context(), id, c.Principal); handled {
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, wire.ChangeApplied{ChangeRequest: wireChange(v, false), Reset: &wire.ResetCode{
			Code: rc.Code.Reveal(), Username: rc.Username, Reset: rc.What, ExpiresAt: rc.ExpiresAt}})
	}
	v, inv, err := h.svc.Collect(c.Context(), id, c.Principal)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.ChangeApplied{ChangeRequest: wireChange(v, false), Invitation: &wire.Invitation{
		Code: inv.Code.Reveal(), PersonID: inv.PersonID, Username: inv.Username, Role: inv.Role, ExpiresAt: inv.ExpiresAt}})
}

func (h changeHandlers) applyPolicy(c *Call) error {
	var in wire.PolicyApplyRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.Text == "" {
		return usererr.New(usererr.Invalid, "policy_empty", "the request has no policy text; send the whole policy in \"text\"")
	}
	out, err := h.svc.ProposePolicy(c.Context(), c.Principal, in.Text)
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return c.JSON(http.StatusOK, wire.PolicyApplied{Version: out.PolicyVersion, Hash: policy.Hash(in.Text)})
}

func (h changeHandlers) applyRunbook(c *Call) error {
	var req wire.RunbookApplyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	out, err := h.svc.ProposeRunbook(c.Context(), c.Principal, []byte(req.YAML))
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return c.JSON(http.StatusOK, wireRunbook(out.Runbook, false))
}

// threshold reads an edit's threshold: "" keeps the rule, "none" removes it.
func threshold(s string) (*ops.Threshold, error) {
	switch strings.TrimSpace(s) {
	case "":
		return nil, nil
	case "none":
		return &ops.Threshold{}, nil
	}
	t, err := ops.ParseThreshold(s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (h changeHandlers) setService(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	var req wire.ServiceSetRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	e := change.ServiceEdit{Name: name, Create: req.Create}
	if e.MinHealthy, err = threshold(req.MinHealthy); err != nil {
		return err
	}
	if e.MaxPerOperation, err = threshold(req.MaxPerOperation); err != nil {
		return err
	}
	if req.Freezes != nil {
		ws := make([]ops.Window, 0, len(req.Freezes))
		for _, w := range req.Freezes {
			ws = append(ws, ops.Window{Start: w.Start.UTC(), End: w.End.UTC(), Reason: w.Reason})
		}
		e.Freezes = &ws
	}
	out, err := h.svc.SetService(c.Context(), c.Principal, e)
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return opsHandlers{m: h.ops}.serviceNamed(c, name)
}

func (h changeHandlers) applyServices(c *Call) error {
	var req wire.ServicesApplyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	out, err := h.svc.ApplyServicesYAML(c.Context(), c.Principal, []byte(req.YAML))
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return opsHandlers{m: h.ops}.listServices(c)
}

func (h changeHandlers) invite(c *Call) error {
	var in wire.InviteRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	out, err := h.svc.Invite(c.Context(), c.Principal, in.Username, in.Role)
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	inv := out.Invitation
	return c.JSON(http.StatusCreated, wire.Invitation{Code: inv.Code.Reveal(), PersonID: inv.PersonID, Username: inv.Username,
		Role: inv.Role, ExpiresAt: inv.ExpiresAt})
}

func (h changeHandlers) disable(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	out, err := h.svc.Disable(c.Context(), c.Principal, name)
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return noContent(c)
}
