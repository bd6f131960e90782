package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

var (
	admin     = wire.Principal{Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}}
	operator1 = wire.Principal{Kind: "person", ID: "p_op1", Name: "operator1", Roles: []string{"operator"}}
	approver1 = wire.Principal{Kind: "person", ID: "p_ap1", Name: "approver1", Roles: []string{"approver"}}
	approver2 = wire.Principal{Kind: "person", ID: "p_ap2", Name: "approver2", Roles: []string{"approver"}}
)

type env struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	m     *ops.Manager
	now   time.Time
	hosts []string
	// alerts lists the operations OnBreakGlass was called with.
	alerts []string
}

func (e *env) clock() time.Time { return e.now }

// newEnv enrolls n hosts serving billing and index (the 2017 fleet), sets
// the 2017 capacity rules and applies the example runbook.
func newEnv(t *testing.T, n int) *env {
	t.Helper()
	return newEnvOn(t, storetest.OpenSQLite(t), n)
}

func newEnvOn(t *testing.T, db *store.DB, n int) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), db: db, now: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)}
	engine, err := policy.NewEngine(policy.EngineConfig{Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.m, err = ops.New(ops.Config{Store: e.db.OpsStore(), Policy: engine, Now: e.clock,
		OnBreakGlass: func(op ops.Operation) { e.alerts = append(e.alerts, op.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"billing", "index"}, map[string]string{"zone": "a"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), fmt.Sprintf("host%02d", i+1), "")
		if err != nil {
			t.Fatal(err)
		}
		e.hosts = append(e.hosts, id)
	}
	for _, s := range []ops.Service{
		{Name: "billing", MinHealthy: ops.Threshold{Percent: 50, IsPercent: true}, MaxPerOperation: ops.Threshold{Percent: 10, IsPercent: true}},
		{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true}},
	} {
		if err := e.m.SetService(e.ctx, admin, s); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ApplyRunbook(e.ctx, admin, src); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) audits(kind string) int {
	return e.count(`SELECT COUNT(*) FROM audit_entries WHERE kind = $1`, kind)
}

func (e *env) beatAll() {
	for _, h := range e.hosts {
		if err := e.m.RecordHeartbeat(e.ctx, h, true); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) run(count string, mods ...func(*ops.RunRequest)) (ops.Operation, ops.PlanResult, error) {
	req := ops.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": count}, Reason: "INC-1", Requester: operator1}
	for _, m := range mods {
		m(&req)
	}
	return e.m.Run(e.ctx, req)
}

func wantUserErr(t *testing.T, err error, kind usererr.Kind, code string) *usererr.Error {
	t.Helper()
	ue, ok := usererr.As(err)
	if !ok {
		t.Fatalf("error = %v, want usererr %s", err, code)
	}
	if ue.Kind != kind || ue.Code != code {
		t.Fatalf("error = kind %d code %q (%s), want kind %d code %q", ue.Kind, ue.Code, ue.Msg, kind, code)
	}
	return ue
}

func TestJoinTokens(t *testing.T) {
	e := newEnv(t, 0)
	tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.Reveal(), "ilk_join_") || fmt.Sprint(tok) != "[redacted]" {
		t.Errorf("token %q: want prefix ilk_join_ and a redacted String", tok.Reveal())
	}
	if n := e.count(`SELECT COUNT(*) FROM ops_join_tokens WHERE hash = $1`, []byte(tok.Reveal())); n != 0 {
		t.Error("the token is stored in plaintext")
	}
	id, services, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"web"}, services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	_, _, _, err = e.m.EnrollHost(e.ctx, tok.Reveal(), "web2", "")
	wantUserErr(t, err, usererr.Unauthenticated, "bad_join_token")

	expiring, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Minute)
	_, _, _, err = e.m.EnrollHost(e.ctx, expiring.Reveal(), "web3", "")
	wantUserErr(t, err, usererr.Unauthenticated, "bad_join_token")

	hosts, err := e.m.ListHosts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || hosts[0].ID != id || hosts[0].Live {
		t.Errorf("hosts = %+v, want only %s, stale after a minute without heartbeat", hosts, id)
	}
	before := e.audits("host.recovered")
	if err := e.m.RecordHeartbeat(e.ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RecordHeartbeat(e.ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if got := e.audits("host.recovered") - before; got != 1 {
		t.Errorf("host.recovered entries = %d, want 1 (the first heartbeat after going stale only)", got)
	}
	svcs, err := e.m.ListServices(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"billing", "index", "web"}, names(svcs)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if c := svcs[2].Capacity; c != (ops.Capacity{Total: 1, Healthy: 1}) {
		t.Errorf("web capacity = %+v", c)
	}
}

func names(s []ops.ServiceStatus) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Name)
	}
	return out
}

func errCodeOf(err error) string {
	if ue, ok := usererr.As(err); ok {
		return ue.Code
	}
	return ""
}

// TestEnrollAgainWithTheSameKey: an agent whose enrollment answer was lost
// presents its spent token again with the same key and hostname and gets
// the same host; no other key, hostname or late retry does.
func TestEnrollAgainWithTheSameKey(t *testing.T) {
	e := newEnv(t, 0)
	tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, map[string]string{"zone": "b"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
	if err != nil {
		t.Fatal(err)
	}
	again, services, labels, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
	if err != nil || again != id {
		t.Fatalf("enrolling again with the same key = %q, %v; want %s", again, err, id)
	}
	if !cmp.Equal(services, []string{"web"}) || labels["zone"] != "b" {
		t.Errorf("again: services %v labels %v, want the token's", services, labels)
	}
	for _, tt := range []struct{ name, host, key string }{
		{"another key", "web1", "key-b"},
		{"no key", "web1", ""},
		{"another hostname", "web2", "key-a"},
	} {
		_, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), tt.host, tt.key)
		wantUserErr(t, err, usererr.Unauthenticated, "bad_join_token")
	}
	e.now = e.now.Add(time.Hour)
	_, _, _, err = e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
	wantUserErr(t, err, usererr.Unauthenticated, "bad_join_token")
	if n := e.count(`SELECT COUNT(*) FROM ops_hosts`); n != 1 {
		t.Errorf("%d hosts, want 1", n)
	}
	if n := e.audits("host.enrolled_again"); n != 1 {
		t.Errorf("%d host.enrolled_again entries, want 1", n)
	}
}

// TestRevokeHost: a revoked host is never live, sends no heartbeat, is not
// planned for, cannot be enrolled again with its spent token, and the
// revocation is audited with its reason.
func TestRevokeHost(t *testing.T) {
	e := newEnv(t, 20)
	e.beatAll()
	victim := e.hosts[0]
	_, err := e.m.RevokeHost(e.ctx, admin, victim, " ")
	wantUserErr(t, err, usererr.Invalid, "reason_required")
	_, err = e.m.RevokeHost(e.ctx, admin, "host_nope", "stolen key")
	wantUserErr(t, err, usererr.NotFound, "unknown_host")
	if revoked, err := e.m.HostRevoked(e.ctx, victim); err != nil || revoked {
		t.Fatalf("HostRevoked before = %v, %v", revoked, err)
	}
	h, err := e.m.RevokeHost(e.ctx, admin, victim, "key copied off the box, INC-9")
	if err != nil || h.RevokedAt.IsZero() || h.Name != "host01" {
		t.Fatalf("RevokeHost = %+v, %v", h, err)
	}
	_, err = e.m.RevokeHost(e.ctx, admin, victim, "again")
	wantUserErr(t, err, usererr.Conflict, "host_revoked")
	for id, want := range map[string]bool{victim: true, e.hosts[1]: false, "host_nope": true} {
		if got, err := e.m.HostRevoked(e.ctx, id); err != nil || got != want {
			t.Errorf("HostRevoked(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	err = e.m.RecordHeartbeat(e.ctx, victim, true)
	wantUserErr(t, err, usererr.Unauthenticated, "host_revoked")
	hosts, err := e.m.ListHosts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hosts {
		if x.ID == victim && (x.Live || x.RevokedAt.IsZero()) {
			t.Errorf("revoked host listed as %+v", x)
		}
	}
	// The revoked host leaves its services' totals: index's 80% floor is
	// now 80% of 19, not of 20 with one host that can never be healthy.
	svcs, err := e.m.ListServices(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range svcs {
		if sv.Total != 19 || sv.Healthy != 19 {
			t.Errorf("service %s: total %d, healthy %d; want 19 and 19 without the revoked host", sv.Name, sv.Total, sv.Healthy)
		}
	}
	// 19 live hosts of 20: the planner never picks the revoked one (host01,
	// first by name).
	for range 3 {
		op, res, err := e.run("1")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(res.Plan.Hosts(), victim) {
			t.Fatalf("plan %+v targets the revoked host", res.Plan)
		}
		if _, err := e.m.Deny(e.ctx, op.ID, operator1, "try again"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.audits("host.revoked"); n != 1 {
		t.Errorf("%d host.revoked entries, want 1", n)
	}
	// Returning to service: only a host that is out, not revoked, with a reason.
	_, err = e.m.ReturnHost(e.ctx, admin, victim, "checked")
	wantUserErr(t, err, usererr.Conflict, "host_revoked")
	_, err = e.m.ReturnHost(e.ctx, admin, e.hosts[1], "checked")
	wantUserErr(t, err, usererr.Conflict, "host_in_service")
	_, err = e.m.ReturnHost(e.ctx, admin, "host_nope", "checked")
	wantUserErr(t, err, usererr.NotFound, "unknown_host")
	_, err = e.m.ReturnHost(e.ctx, admin, e.hosts[1], "")
	wantUserErr(t, err, usererr.Invalid, "reason_required")
	var personal string
	if err := e.db.QueryRow(e.ctx, `SELECT personal FROM audit_entries WHERE kind = 'host.revoked'`).Scan(&personal); err != nil || !strings.Contains(personal, "INC-9") {
		t.Errorf("host.revoked personal data = %q, %v; want the reason", personal, err)
	}
}

// TestRevokedHostCannotEnrollAgain: the key that enrolled a host cannot
// get it back with the spent token once it is revoked.
func TestRevokedHostCannotEnrollAgain(t *testing.T) {
	e := newEnv(t, 0)
	tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.RevokeHost(e.ctx, admin, id, "retired"); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
	wantUserErr(t, err, usererr.Unauthenticated, "bad_join_token")
}

// The 2017 scenario through the whole use case, with the default Cedar
// policy, on SQLite and on PostgreSQL.
func TestRun2017(t *testing.T) { testRun2017(t, newEnv(t, 20)) }

func TestRun2017Postgres(t *testing.T) {
	testRun2017(t, newEnvOn(t, storetest.OpenPostgres(t), 20))
}

func testRun2017(t *testing.T, e *env) {
	opsBefore := e.count(`SELECT COUNT(*) FROM ops_operations`)
	_, res, err := e.run("20")
	ue := wantUserErr(t, err, usererr.Forbidden, "guardrail")
	for _, want := range []string{
		"these hosts also serve index: it would keep 0 of 20 healthy hosts, below its floor of 16 (80%)",
		"billing would keep 0 of 20, below its floor of 10 (50%)",
		"at most 2 hosts (10%) of billing may change in one operation",
	} {
		if !strings.Contains(ue.Msg, want) {
			t.Errorf("refusal %q does not say %q", ue.Msg, want)
		}
	}
	if d, ok := ue.Details.(ops.GuardrailError); !ok || len(d.Verdicts) != len(res.Verdicts) {
		t.Errorf("refusal details = %#v, want the verdicts", ue.Details)
	}
	if got := e.count(`SELECT COUNT(*) FROM ops_operations`); got != opsBefore {
		t.Errorf("a refused run stored an operation")
	}
	if e.audits("op.refused") != 1 {
		t.Error("the refusal was not audited")
	}

	dry, err := e.m.Plan(e.ctx, ops.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": "2"}, Requester: operator1})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.Allowed || dry.NeedsApprovals != 1 || !cmp.Equal(dry.ApproverRoles, []string{"approver"}) {
		t.Errorf("dry run = allowed %v, approvals %d %v; want allowed, 1 from approver", dry.Allowed, dry.NeedsApprovals, dry.ApproverRoles)
	}
	if got := e.count(`SELECT COUNT(*) FROM ops_operations`); got != opsBefore {
		t.Errorf("a dry run stored an operation")
	}

	op, res, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	if op.State != ops.OpPending || op.Needed != 1 || res.Plan.Hash != dry.Plan.Hash {
		t.Errorf("op = %s needing %d; want pending_approval needing 1 with the dry run's hash", op.State, op.Needed)
	}

	// The requester cannot approve, by person, whatever account or role.
	sneaky := operator1
	sneaky.Name, sneaky.Roles = "operator1-alt", []string{"approver"}
	_, _, err = e.m.Approve(e.ctx, op.ID, sneaky, op.Plan.Hash)
	ue = wantUserErr(t, err, usererr.Forbidden, "self_approval")
	if !strings.Contains(ue.Msg, "requester cannot approve their own operation") {
		t.Errorf("self-approval message %q", ue.Msg)
	}
	if e.audits("op.approval_refused") != 1 {
		t.Error("the self-approval refusal was not audited")
	}
	_, _, err = e.m.Approve(e.ctx, op.ID, admin, op.Plan.Hash)
	wantUserErr(t, err, usererr.Forbidden, "approver_role")
	_, _, err = e.m.Approve(e.ctx, op.ID, approver1, strings.Repeat("0", 64))
	wantUserErr(t, err, usererr.Conflict, "plan_hash_mismatch")

	got, ready, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	if err != nil || !ready || got.State != ops.OpReady {
		t.Fatalf("approve = %s ready %v err %v; want ready", got.State, ready, err)
	}
	_, err = e.m.Start(e.ctx, op.ID, approver1)
	if err != nil {
		t.Fatal(err)
	}
	running, _ := e.m.Get(e.ctx, op.ID)
	if running.State != ops.OpRunning {
		t.Errorf("state after Start = %s, want running", running.State)
	}

	// One capacity-changing operation per service at a time.
	_, _, err = e.run("1")
	ue = wantUserErr(t, err, usererr.Forbidden, "guardrail")
	if !strings.Contains(ue.Msg, "billing already has a capacity-changing operation in progress ("+op.ID) {
		t.Errorf("one-at-a-time refusal: %q", ue.Msg)
	}

	// Before each wave, floors are judged against live health.
	e.now = e.now.Add(5 * time.Second)
	for i, h := range e.hosts {
		if err := e.m.RecordHeartbeat(e.ctx, h, i >= 8); err != nil { // 8 hosts turn unhealthy
			t.Fatal(err)
		}
	}
	vs, err := e.m.CheckWave(e.ctx, running, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []ops.Verdict{
		{Rule: ops.RuleCapacityFloor, Service: "billing", Pass: true, Message: "before wave 2: billing keeps 12 of 20 healthy hosts, at or above its floor of 10 (50%)"},
		{Rule: ops.RuleCapacityFloor, Service: "index", Message: "before wave 2: these hosts also serve index: it would keep 12 of 20 healthy hosts, below its floor of 16 (80%); no host serving index can be removed until more are healthy"},
		{Rule: ops.RuleFreeze, Pass: true, Message: "before wave 2: no freeze window covers billing, index now"},
	}
	if diff := cmp.Diff(want, vs); diff != "" {
		t.Errorf("CheckWave (-want +got):\n%s", diff)
	}
	// A freeze declared after the start stops the next wave too.
	svc := ops.Service{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true},
		Freezes: []ops.Window{{Start: e.now.Add(-time.Minute), End: e.now.Add(time.Hour), Reason: "INC-12 under way"}}}
	if err := e.m.SetService(e.ctx, admin, svc); err != nil {
		t.Fatal(err)
	}
	if vs, err = e.m.CheckWave(e.ctx, running, 2); err != nil || vs[len(vs)-1].Pass || !strings.Contains(vs[len(vs)-1].Message, "INC-12") {
		t.Errorf("CheckWave during a freeze = %+v, %v; want the freeze refusing", vs, err)
	}
	if err := e.m.CheckResume(e.ctx, running, nil); errCodeOf(err) != "frozen" {
		t.Errorf("CheckResume during a freeze = %v, want frozen", err)
	}
	svc.Freezes = nil
	if err := e.m.SetService(e.ctx, admin, svc); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetState(e.ctx, op.ID, []ops.OpState{ops.OpRunning}, ops.OpHalted, "index below floor", "system"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetState(e.ctx, op.ID, []ops.OpState{ops.OpRunning}, ops.OpSucceeded, "", "system"); err == nil {
		t.Error("SetState from the wrong state succeeded")
	}
}

func TestDriftVoidsApprovals(t *testing.T) {
	e := newEnv(t, 20)
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	target := op.Plan.Waves[0].Hosts[0]
	if err := e.m.RecordHeartbeat(e.ctx, target, false); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	ue := wantUserErr(t, err, usererr.Conflict, "plan_drifted")
	if !strings.Contains(ue.Msg, "host host01 is unhealthy") {
		t.Errorf("drift message %q does not name the host", ue.Msg)
	}
	got, _ := e.m.Get(e.ctx, op.ID)
	if got.State != ops.OpVoid || !strings.HasPrefix(got.Detail, "approvals void: host host01 is unhealthy") {
		t.Errorf("op after drift = %s %q, want void with the reason", got.State, got.Detail)
	}
	if e.audits("op.voided") != 1 {
		t.Error("voiding was not audited")
	}
}

func TestApprovalsExpire(t *testing.T) {
	e := newEnv(t, 20)
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	if _, ready, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil || !ready {
		t.Fatalf("approve: ready %v, %v", ready, err)
	}
	e.now = e.now.Add(61 * time.Minute)
	e.beatAll()
	_, err = e.m.Start(e.ctx, op.ID, approver1)
	wantUserErr(t, err, usererr.Conflict, "approvals_expired")
	got, _ := e.m.Get(e.ctx, op.ID)
	if got.State != ops.OpPending || len(got.Approvals) != 0 {
		t.Errorf("after expiry: %s with %d approvals, want pending_approval with none", got.State, len(got.Approvals))
	}
	if _, ready, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil || !ready {
		t.Fatalf("approve again: ready %v, %v", ready, err)
	}
	if _, err := e.m.Start(e.ctx, op.ID, approver1); err != nil {
		t.Fatal(err)
	}
}

func TestUnusualInputNeedsConfirmAndExtraApproval(t *testing.T) {
	e := newEnv(t, 40)
	if err := e.m.SetService(e.ctx, admin, ops.Service{Name: "billing", MinHealthy: ops.Threshold{Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetService(e.ctx, admin, ops.Service{Name: "index", MinHealthy: ops.Threshold{Count: 1}}); err != nil {
		t.Fatal(err)
	}
	// History: one approved, finished run of count=2.
	first, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.Approve(e.ctx, first.ID, approver1, first.Plan.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Start(e.ctx, first.ID, approver1); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetState(e.ctx, first.ID, []ops.OpState{ops.OpRunning}, ops.OpSucceeded, "", "system"); err != nil {
		t.Fatal(err)
	}
	hosts, err := e.m.ListHosts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hosts {
		if !h.InService {
			out = append(out, h.ID)
		}
	}
	if diff := cmp.Diff(first.Plan.Hosts(), out); diff != "" {
		t.Errorf("hosts out of service after a capacity removal succeeded (-want +got):\n%s", diff)
	}
	if n := e.audits("host.removed_from_service"); n != 2 {
		t.Errorf("host.removed_from_service entries = %d, want 2", n)
	}

	_, res, err := e.run("7")
	ue := wantUserErr(t, err, usererr.Forbidden, "guardrail")
	if !strings.Contains(ue.Msg, "count=7 is more than 3× the largest value runbook remove-capacity has used (2)") ||
		!cmp.Equal(res.NeedsConfirm, []string{"count"}) {
		t.Errorf("unusual input refusal %q, needs confirm %v", ue.Msg, res.NeedsConfirm)
	}
	op, res, err := e.run("7", func(r *ops.RunRequest) { r.Confirm = map[string]string{"count": "7"} })
	if err != nil {
		t.Fatal(err)
	}
	if op.Needed != 2 {
		t.Errorf("needed = %d, want 2 (1 from policy + 1 for unusual input)", op.Needed)
	}
	if _, ready, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil || ready {
		t.Fatalf("first approval: ready %v, %v; want not ready yet", ready, err)
	}
	_, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	wantUserErr(t, err, usererr.Conflict, "already_approved")
	if _, ready, err := e.m.Approve(e.ctx, op.ID, approver2, op.Plan.Hash); err != nil || !ready {
		t.Fatalf("second approval: ready %v, %v; want ready", ready, err)
	}
	// Neither that approved-but-unstarted count=7 nor a started break-glass
	// count=21 makes a large count usual: history is still {2}.
	if _, err := e.m.Deny(e.ctx, op.ID, operator1, "not now"); err != nil {
		t.Fatal(err)
	}
	bg, _, err := e.run("21", func(r *ops.RunRequest) { r.BreakGlass, r.Confirm = true, map[string]string{"count": "21"} })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Start(e.ctx, bg.ID, operator1); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetState(e.ctx, bg.ID, []ops.OpState{ops.OpRunning}, ops.OpSucceeded, "", "system"); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.run("9")
	if ue := wantUserErr(t, err, usererr.Forbidden, "guardrail"); !strings.Contains(ue.Msg, "largest value runbook remove-capacity has used (2)") {
		t.Errorf("count=9 after a break-glass count=21: %q, want it judged against 2", ue.Msg)
	}
}

func TestBreakGlass(t *testing.T) {
	e := newEnv(t, 20)
	_, _, err := e.m.BreakGlass(e.ctx, ops.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": "2"}, Requester: operator1})
	wantUserErr(t, err, usererr.Invalid, "reason_required")
	_, _, err = e.run("20", func(r *ops.RunRequest) { r.BreakGlass = true })
	wantUserErr(t, err, usererr.Forbidden, "guardrail") // never skips floors

	if len(e.alerts) != 0 {
		t.Errorf("refused break-glass requests raised alerts %v", e.alerts)
	}
	op, _, err := e.run("2", func(r *ops.RunRequest) { r.BreakGlass = true })
	if err != nil {
		t.Fatal(err)
	}
	if op.State != ops.OpReady || !op.BreakGlass || op.Needed != 0 {
		t.Errorf("break-glass op = %s needing %d, want ready needing 0", op.State, op.Needed)
	}
	if !cmp.Equal(e.alerts, []string{op.ID}) {
		t.Errorf("alerts = %v, want one for %s", e.alerts, op.ID)
	}
	var data []byte
	if err := e.db.QueryRow(e.ctx, `SELECT data FROM audit_entries WHERE kind = 'op.break_glass'`).Scan(&data); err != nil {
		t.Fatalf("op.break_glass entry: %v", err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil || d["alert"] != true {
		t.Errorf("op.break_glass data = %s, want alert true", data)
	}
	if _, err := e.m.Start(e.ctx, op.ID, operator1); err != nil {
		t.Fatal(err)
	}
}

// Bad input changes nothing: not the operations, not the audit log.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, 4)
	snapshot := func() [2]int {
		return [2]int{e.count(`SELECT COUNT(*) FROM ops_operations`), e.count(`SELECT COUNT(*) FROM audit_entries`)}
	}
	before := snapshot()
	for _, tt := range []struct {
		name   string
		params map[string]string
		code   string
	}{
		{name: "count out of bounds", params: map[string]string{"service": "billing", "count": "5000"}, code: "bad_parameter"},
		{name: "count not a number", params: map[string]string{"service": "billing", "count": "lots"}, code: "bad_parameter"},
		{name: "unknown service", params: map[string]string{"service": "bling", "count": "1"}, code: "bad_parameter"},
		{name: "unknown parameter", params: map[string]string{"service": "billing", "count": "1", "x": "y"}, code: "bad_parameter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.run("", func(r *ops.RunRequest) { r.Params = tt.params })
			wantUserErr(t, err, usererr.Invalid, tt.code)
		})
	}
	_, _, err := e.m.Run(e.ctx, ops.RunRequest{Runbook: "nope", Params: map[string]string{}, Reason: "x", Requester: operator1})
	wantUserErr(t, err, usererr.NotFound, "unknown_runbook")
	_, err = e.m.ApplyRunbook(e.ctx, admin, []byte("name: x\nbogus: 1\n"))
	wantUserErr(t, err, usererr.Invalid, "bad_runbook")
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("rows changed by bad input (-want +got):\n%s", diff)
	}
}

func TestDeny(t *testing.T) {
	e := newEnv(t, 20)
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Deny(e.ctx, op.ID, wire.Principal{Kind: "person", ID: "p_v", Roles: []string{"viewer"}}, "no")
	wantUserErr(t, err, usererr.Forbidden, "approver_role")
	got, err := e.m.Deny(e.ctx, op.ID, approver1, "not during the sale")
	if err != nil || got.State != ops.OpDenied {
		t.Fatalf("deny = %s, %v", got.State, err)
	}
	_, _, err = e.m.Approve(e.ctx, op.ID, approver2, op.Plan.Hash)
	wantUserErr(t, err, usererr.Conflict, "op_not_pending")
	// A denied op no longer blocks the service.
	if _, _, err := e.run("2"); err != nil {
		t.Fatal(err)
	}
}

func TestServicesYAML(t *testing.T) {
	e := newEnv(t, 0)
	_, err := e.m.LoadServices(e.ctx, admin, []byte("services:\n  - name: web\n    min_healthy: 50%\n    colour: red\n"))
	wantUserErr(t, err, usererr.Invalid, "bad_services_file")
	got, err := e.m.LoadServices(e.ctx, admin, []byte(`services:
  - name: web
    min_healthy: 50%
    max_per_operation: "3"
    freezes:
      - {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z, reason: holidays}
`))
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.m.ListServices(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var web ops.Service
	for _, s := range list {
		if s.Name == "web" {
			web = s.Service
		}
	}
	if diff := cmp.Diff(got[0], web); diff != "" {
		t.Errorf("stored service (-want +got):\n%s", diff)
	}
	if web.MaxPerOperation != (ops.Threshold{Count: 3}) || len(web.Freezes) != 1 {
		t.Errorf("web = %+v", web)
	}
}

func TestApprovalRefusedWhenGuardrailsNowFail(t *testing.T) {
	e := newEnv(t, 20)
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	freeze := ops.Service{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true},
		Freezes: []ops.Window{{Start: e.now.Add(-time.Minute), End: e.now.Add(time.Hour), Reason: "sale"}}}
	if err := e.m.SetService(e.ctx, admin, freeze); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	ue := wantUserErr(t, err, usererr.Forbidden, "guardrail")
	if !strings.Contains(ue.Msg, "index is frozen from") {
		t.Errorf("refusal %q does not name the freeze", ue.Msg)
	}
	got, _ := e.m.Get(e.ctx, op.ID)
	if got.State != ops.OpPending || len(got.Approvals) != 0 {
		t.Errorf("op = %s with %d approvals, want unchanged", got.State, len(got.Approvals))
	}
	if e.audits("op.approval_refused") != 1 {
		t.Error("the refused approval was not audited")
	}
}

// Two people asking at once for capacity changes on the same service: the
// planning transactions are serialised, so exactly one operation is created.
func TestConcurrentRunsOneAtATime(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 20)
			const n = 8
			errs := make(chan error, n)
			for range n {
				go func() { _, _, err := e.run("1"); errs <- err }()
			}
			created, refused := 0, 0
			for range n {
				err := <-errs
				switch ue, ok := usererr.As(err); {
				case err == nil:
					created++
				case ok && ue.Code == "guardrail":
					refused++
				default:
					t.Errorf("run: %v", err)
				}
			}
			if created != 1 || refused != n-1 {
				t.Errorf("created %d, refused %d; want 1 and %d", created, refused, n-1)
			}
		})
	}
}
