package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// OpsStarter starts executing an operation that ops.Manager.Start has
// moved to running. *exec.Engine implements it; internal/app passes it to
// OpsRoutes. (Halt, resume, abort and progress are ExecRoutes.)
type OpsStarter interface {
	Start(ctx context.Context, opID string) error
}

// OpsRoutes serves inventory, runbooks, operations and approvals. exec may
// be nil: operations are then stored and approved but never started.
func OpsRoutes(m *ops.Manager, exec OpsStarter) []Route {
	h := opsHandlers{m: m, exec: exec}
	opRes := func(r *http.Request) Resource { return Resource{Type: "Operation", ID: r.PathValue("id")} }
	hostRes := func(r *http.Request) Resource { return Resource{Type: "Host", ID: r.PathValue("id")} }
	return []Route{
		{Pattern: "POST /v1/join-tokens", Action: "jointoken.create", Handle: h.createJoinToken},
		{Pattern: "GET /v1/hosts", Action: "host.list", Handle: h.listHosts},
		{Pattern: "POST /v1/hosts/{id}/revoke", Action: "host.revoke", Handle: h.revokeHost, Resource: hostRes},
		{Pattern: "POST /v1/hosts/{id}/return", Action: "host.return", Handle: h.returnHost, Resource: hostRes},
		{Pattern: "GET /v1/services", Action: "service.list", Handle: h.listServices},
		{Pattern: "PUT /v1/services/{name}", Action: "service.set", Handle: h.setService,
			Resource: func(r *http.Request) Resource { return Resource{Type: "Service", ID: r.PathValue("name")} }},
		{Pattern: "POST /v1/services", Action: "service.set", Handle: h.applyServices},
		{Pattern: "GET /v1/runbooks", Action: "runbook.list", Handle: h.listRunbooks},
		{Pattern: "GET /v1/runbooks/{name}", Action: "runbook.get", Handle: h.getRunbook,
			Resource: func(r *http.Request) Resource { return Resource{Type: "Runbook", ID: r.PathValue("name")} }},
		{Pattern: "POST /v1/runbooks", Action: "runbook.apply", Handle: h.applyRunbook},
		{Pattern: "POST /v1/plans", Action: "op.plan", Handle: h.plan},
		{Pattern: "POST /v1/ops", Action: "op.run", Handle: h.run},
		{Pattern: "GET /v1/ops", Action: "op.list", Handle: h.listOps},
		{Pattern: "GET /v1/ops/{id}", Action: "op.get", Resource: opRes, Handle: h.getOp},
		{Pattern: "POST /v1/ops/{id}/approvals", Action: "op.approve", Resource: opRes, Handle: h.approve},
		{Pattern: "POST /v1/ops/{id}/deny", Action: "op.deny", Resource: opRes, Handle: h.deny},
		{Pattern: "POST /v1/ops/{id}/withdraw", Action: "op.withdraw", Resource: opRes, Handle: h.withdraw},
	}
}

type opsHandlers struct {
	m    *ops.Manager
	exec OpsStarter
}

func (h opsHandlers) createJoinToken(c *Call) error {
	var req wire.JoinTokenCreateRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	tok, err := h.m.CreateJoinToken(c.Context(), c.Principal, req.Services, req.Labels, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wire.JoinToken{Token: tok.Reveal(), Services: req.Services, Labels: req.Labels, ExpiresAt: c.Now().UTC().Add(ttl)})
}

func (h opsHandlers) listHosts(c *Call) error {
	hosts, err := h.m.ListHosts(c.Context())
	if err != nil {
		return err
	}
	out := wire.HostList{Hosts: make([]wire.Host, 0, len(hosts))}
	for _, x := range hosts {
		out.Hosts = append(out.Hosts, wire.Host{ID: x.ID, Name: x.Name, Services: x.Services, Labels: x.Labels, InService: x.InService,
			Healthy: x.Healthy, Live: x.Live, LastSeen: x.LastSeen, HeldBy: x.HeldBy, RevokedAt: x.RevokedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (h opsHandlers) revokeHost(c *Call) error { return h.hostChange(c, h.m.RevokeHost) }

func (h opsHandlers) returnHost(c *Call) error { return h.hostChange(c, h.m.ReturnHost) }

// hostChange serves a POST /v1/hosts/{id}/… that takes a reason and
// answers with the host.
func (h opsHandlers) hostChange(c *Call, change func(context.Context, wire.Principal, string, string) (ops.Host, error)) error {
	var req wire.ReasonRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	x, err := change(c.Context(), c.Principal, c.R.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.Host{ID: x.ID, Name: x.Name, Services: x.Services, Labels: x.Labels, InService: x.InService,
		Healthy: x.Healthy, LastSeen: x.LastSeen, RevokedAt: x.RevokedAt})
}

func wireService(s ops.ServiceStatus) wire.Service {
	out := wire.Service{Name: s.Name, MinHealthy: s.MinHealthy.String(), MaxPerOperation: s.MaxPerOperation.String(),
		Total: s.Total, Healthy: s.Healthy, Floor: s.Floor, Held: s.Held}
	for _, w := range s.Freezes {
		out.Freezes = append(out.Freezes, wire.FreezeWindow{Start: w.Start, End: w.End, Reason: w.Reason})
	}
	return out
}

func (h opsHandlers) listServices(c *Call) error {
	list, err := h.m.ListServices(c.Context())
	if err != nil {
		return err
	}
	out := wire.ServiceList{Services: make([]wire.Service, 0, len(list))}
	for _, s := range list {
		out.Services = append(out.Services, wireService(s))
	}
	return c.JSON(http.StatusOK, out)
}

func (h opsHandlers) setService(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	var req wire.ServiceSetRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	svc := ops.Service{Name: name}
	if svc.MinHealthy, err = ops.ParseThreshold(req.MinHealthy); err != nil {
		return err
	}
	if svc.MaxPerOperation, err = ops.ParseThreshold(req.MaxPerOperation); err != nil {
		return err
	}
	for _, w := range req.Freezes {
		svc.Freezes = append(svc.Freezes, ops.Window{Start: w.Start.UTC(), End: w.End.UTC(), Reason: w.Reason})
	}
	if err := h.m.SetService(c.Context(), c.Principal, svc); err != nil {
		return err
	}
	return h.serviceNamed(c, name)
}

func (h opsHandlers) serviceNamed(c *Call, name string) error {
	list, err := h.m.ListServices(c.Context())
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Name == name {
			return c.JSON(http.StatusOK, wireService(s))
		}
	}
	return errors.New("service vanished after it was set")
}

func (h opsHandlers) applyServices(c *Call) error {
	var req wire.ServicesApplyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	if _, err := h.m.LoadServices(c.Context(), c.Principal, []byte(req.YAML)); err != nil {
		return err
	}
	return h.listServices(c)
}

func wireRunbook(v ops.RunbookVersion, withSource bool) wire.Runbook {
	rb := v.Runbook
	out := wire.Runbook{Name: v.Name, Version: v.Version, Description: rb.Description, Risk: string(rb.Risk), RemovesCapacity: rb.RemovesCapacity,
		AppliedBy: v.AppliedBy, AppliedAt: v.AppliedAt, Parameters: make([]wire.RunbookParam, 0, len(rb.Parameters))}
	for _, p := range rb.Parameters {
		out.Parameters = append(out.Parameters, wire.RunbookParam{Name: p.Name, Type: p.Type, Description: p.Description,
			Min: p.Min, Max: p.Max, Pattern: p.Pattern, Enum: p.Enum, Default: p.Default})
	}
	if withSource {
		out.Source = string(v.Source)
	}
	return out
}

func (h opsHandlers) listRunbooks(c *Call) error {
	list, err := h.m.ListRunbooks(c.Context())
	if err != nil {
		return err
	}
	out := wire.RunbookList{Runbooks: make([]wire.Runbook, 0, len(list))}
	for _, v := range list {
		out.Runbooks = append(out.Runbooks, wireRunbook(v, false))
	}
	return c.JSON(http.StatusOK, out)
}

func (h opsHandlers) getRunbook(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	version := 0
	if s := c.R.URL.Query().Get("version"); s != "" {
		if version, err = strconv.Atoi(s); err != nil || version < 1 {
			return usererr.New(usererr.Invalid, "bad_version", "version must be a positive whole number")
		}
	}
	v, err := h.m.GetRunbook(c.Context(), name, version)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireRunbook(v, true))
}

func (h opsHandlers) applyRunbook(c *Call) error {
	var req wire.RunbookApplyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	v, err := h.m.ApplyRunbook(c.Context(), c.Principal, []byte(req.YAML))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireRunbook(v, false))
}

// runRequest decodes a RunRequest and makes the finer decisions: op.run
// (or op.plan) on the runbook itself, and op.breakglass when asked.
func (h opsHandlers) runRequest(c *Call, action string) (ops.RunRequest, error) {
	var req wire.RunRequest
	if err := c.Decode(&req); err != nil {
		return ops.RunRequest{}, err
	}
	if req.Runbook == "" {
		return ops.RunRequest{}, usererr.New(usererr.Invalid, "runbook_required", "name the runbook to run")
	}
	res := Resource{Type: "Runbook", ID: req.Runbook}
	if rv, err := h.m.GetRunbook(c.Context(), req.Runbook, 0); err == nil {
		// Policy may judge what the runbook does (issue 12: a current
		// course before removing capacity); an unknown runbook is refused
		// below with its own sentence.
		res.Attrs = map[string]any{"risk": string(rv.Runbook.Risk), "removes_capacity": rv.Runbook.RemovesCapacity}
	}
	if err := c.Authorize(action, res, nil); err != nil {
		return ops.RunRequest{}, err
	}
	if req.BreakGlass {
		if err := c.Authorize("op.breakglass", res, nil); err != nil {
			return ops.RunRequest{}, err
		}
	}
	params := req.Params
	if params == nil {
		params = map[string]string{}
	}
	return ops.RunRequest{Runbook: req.Runbook, Params: params, Reason: req.Reason, Requester: c.Principal, Confirm: req.Confirm, BreakGlass: req.BreakGlass,
		// The same decision (and authz.denied entry on a refusal) as
		// reading the secret through POST /v1/secrets/read/{path}.
		MayReadSecret: func(_ context.Context, path string) error {
			return c.Authorize("secret.get", Resource{Type: "Secret", ID: path}, nil)
		}}, nil
}

func (h opsHandlers) plan(c *Call) error {
	req, err := h.runRequest(c, "op.plan")
	if err != nil {
		return err
	}
	res, err := h.m.Plan(c.Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wirePlanResult(res))
}

func (h opsHandlers) run(c *Call) error {
	req, err := h.runRequest(c, "op.run")
	if err != nil {
		return err
	}
	op, res, err := h.m.Run(c.Context(), req)
	if err != nil {
		if ue, ok := usererr.As(err); ok {
			if g, ok := ue.Details.(ops.GuardrailError); ok {
				cp := *ue
				cp.Details = wire.GuardrailRefusal{Verdicts: wireVerdicts(g.Verdicts), NeedsConfirm: g.NeedsConfirm}
				return &cp
			}
		}
		return err
	}
	out := wire.RunResponse{Result: wirePlanResult(res)}
	if op.State == ops.OpReady {
		op, out.Started, out.StartError = h.start(c, op)
	}
	out.Operation = wireOp(op, res.Hosts)
	return c.JSON(http.StatusCreated, out)
}

// start moves a ready operation to running and hands it to the executor.
func (h opsHandlers) start(c *Call, op ops.Operation) (ops.Operation, bool, string) {
	if h.exec == nil {
		return op, false, "this server has no executor; the operation stays ready"
	}
	started, err := h.m.Start(c.Context(), op.ID, c.Principal)
	if err != nil {
		if cur, gerr := h.m.Get(c.Context(), op.ID); gerr == nil {
			op = cur
		}
		return op, false, publicMessage(err)
	}
	if err := h.exec.Start(c.Context(), op.ID); err != nil {
		return started, false, publicMessage(err)
	}
	return started, true, ""
}

func publicMessage(err error) string {
	if ue, ok := usererr.As(err); ok {
		return ue.Msg
	}
	return "the operation could not be started; see the server log"
}

func (h opsHandlers) listOps(c *Call) error {
	q := c.R.URL.Query()
	f := ops.OperationFilter{Runbook: q.Get("runbook"), Limit: 50}
	if s := q.Get("state"); s != "" {
		for _, st := range strings.Split(s, ",") {
			f.States = append(f.States, ops.OpState(strings.TrimSpace(st)))
		}
	}
	var err error
	if f.Limit, err = listLimit(q, f.Limit); err != nil {
		return err
	}
	list, err := h.m.List(c.Context(), f)
	if err != nil {
		return err
	}
	out := wire.OperationList{Operations: make([]wire.Operation, 0, len(list))}
	for _, op := range list {
		out.Operations = append(out.Operations, wireOp(op, nil))
	}
	return c.JSON(http.StatusOK, out)
}

func (h opsHandlers) getOp(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	op, err := h.m.Get(c.Context(), id)
	if err != nil {
		return err
	}
	out := wireOp(op, h.hostNames(c, op))
	if op.State == ops.OpPending || op.State == ops.OpReady {
		// What an approver is about to sign: the guardrails on live state.
		// A plan that can no longer be built shows no verdicts; approving
		// it voids it with the reason.
		if vs, err := h.m.Verdicts(c.Context(), op); err == nil {
			out.Verdicts = wireVerdicts(vs)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// hostNames names the operation's hosts for display; failures only cost names.
func (h opsHandlers) hostNames(c *Call, op ops.Operation) map[string]string {
	hosts, err := h.m.ListHosts(c.Context())
	if err != nil {
		return nil
	}
	want := map[string]bool{}
	for _, id := range op.Plan.Hosts() {
		want[id] = true
	}
	out := map[string]string{}
	for _, x := range hosts {
		if want[x.ID] {
			out[x.ID] = x.Name
		}
	}
	return out
}

func (h opsHandlers) approve(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	var req wire.ApproveRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	op, ready, err := h.m.Approve(c.Context(), id, c.Principal, req.PlanHash)
	if err != nil {
		return err
	}
	out := wire.ApproveResponse{Ready: ready, Warning: c.SeparationWarning()}
	if ready {
		op, out.Started, out.StartError = h.start(c, op)
	}
	out.Operation = wireOp(op, h.hostNames(c, op))
	return c.JSON(http.StatusOK, out)
}

func (h opsHandlers) reason(c *Call) (string, wire.ReasonRequest, error) {
	id, err := c.PathValue("id")
	if err != nil {
		return "", wire.ReasonRequest{}, err
	}
	var req wire.ReasonRequest
	if c.R.ContentLength != 0 {
		if err := c.Decode(&req); err != nil {
			return "", req, err
		}
	}
	if len(req.Reason) > 1000 {
		return "", req, usererr.New(usererr.Invalid, "reason_too_long", "the reason must be at most 1000 characters")
	}
	return id, req, nil
}

func (h opsHandlers) deny(c *Call) error {
	id, req, err := h.reason(c)
	if err != nil {
		return err
	}
	op, err := h.m.Deny(c.Context(), id, c.Principal, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireOp(op, nil))
}

func (h opsHandlers) withdraw(c *Call) error {
	id, req, err := h.reason(c)
	if err != nil {
		return err
	}
	op, err := h.m.Withdraw(c.Context(), id, c.Principal, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wireOp(op, nil))
}

func wireCommand(c *ops.Command) *wire.Command {
	if c == nil {
		return nil
	}
	return &wire.Command{Argv: c.Argv, Env: c.Env, SecretEnv: c.SecretEnv, Shell: c.Shell, TimeoutSeconds: c.TimeoutSeconds, MaxOutputBytes: c.MaxOutputBytes}
}

func wirePlan(p ops.Plan, names map[string]string) wire.Plan {
	out := wire.Plan{Runbook: p.Runbook, Service: p.Service, RunbookVersion: p.RunbookVersion, Params: p.Params, Step: *wireCommand(&p.Step),
		HealthCheck: wireCommand(p.HealthCheck), Rollback: wireCommand(p.Rollback), Concurrency: p.Concurrency, HaltAfter: p.HaltAfter,
		BakeSeconds: p.BakeSeconds, Services: p.Services, RemovesCapacity: p.RemovesCapacity, SecretRefs: p.SecretRefs, Hash: p.Hash, HostNames: names,
		HostsDigest: ops.HostsDigest(p)}
	for _, w := range p.Waves {
		out.Waves = append(out.Waves, wire.Wave{Number: w.Number, Hosts: w.Hosts})
	}
	return out
}

func wireVerdicts(vs []ops.Verdict) []wire.Verdict {
	out := make([]wire.Verdict, 0, len(vs))
	for _, v := range vs {
		out = append(out, wire.Verdict{Rule: v.Rule, Service: v.Service, Pass: v.Pass, Message: v.Message})
	}
	return out
}

func wirePlanResult(r ops.PlanResult) wire.PlanResult {
	return wire.PlanResult{Plan: wirePlan(r.Plan, r.Hosts), Verdicts: wireVerdicts(r.Verdicts), Allowed: r.Allowed, NeedsApprovals: r.NeedsApprovals,
		ApproverRoles: r.ApproverRoles, NeedsConfirm: r.NeedsConfirm, Unusual: r.Unusual, PolicyIDs: r.PolicyIDs}
}

func wireOp(op ops.Operation, names map[string]string) wire.Operation {
	out := wire.Operation{ID: op.ID, State: string(op.State), Plan: wirePlan(op.Plan, names), RequesterID: op.RequesterID, Reason: op.Reason,
		BreakGlass: op.BreakGlass, Needed: op.Needed, NeededRoles: op.NeededRoles, CurrentWave: op.CurrentWave, CreatedAt: op.CreatedAt,
		UpdatedAt: op.UpdatedAt, Detail: op.Detail}
	for _, a := range op.Approvals {
		out.Approvals = append(out.Approvals, wire.Approval{PersonID: a.PersonID, Name: a.Name, Role: a.Role, PlanHash: a.PlanHash, At: a.At, ExpiresAt: a.ExpiresAt})
	}
	return out
}

// listLimit reads a list route's ?limit= (1 to 500), or keeps def when
// the query does not name one.
func listLimit(q url.Values, def int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 500 {
		return 0, usererr.New(usererr.Invalid, "bad_limit", "limit must be a whole number from 1 to 500")
	}
	return n, nil
}
