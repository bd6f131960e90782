package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/identity"
)

var _ = Register("independence", IndependenceCases)

// IndependenceCases pin identity.Service.CheckIndependentApprover and the
// role grants it reads (migration 310), on each dialect: who may approve
// whose request, judged by who invited whom, who granted which role, and
// when.
func IndependenceCases(t *testing.T, open Opener) {
	ctx := context.Background()

	// world: admin (bootstrap) invites operator1 and approver1; then
	// operator1 asks (requestedAt) a minute later.
	type world struct {
		e                           *IdentityEnv
		admin, operator1, approver1 string
		requestedAt                 time.Time
		adminEnr                    identity.Enrollment
	}
	setUp := func(t *testing.T) *world {
		e := NewIdentityEnv(t, open(t))
		w := &world{e: e}
		w.adminEnr = e.Bootstrap("admin")
		_, admin := e.Login(w.adminEnr, NewIdentityDevice(t))
		w.admin = admin.ID
		w.operator1 = e.Invite(admin, "operator1", identity.RoleOperator).PersonID
		w.approver1 = e.Invite(admin, "approver1", identity.RoleApprover).PersonID
		e.Advance(time.Minute)
		w.requestedAt = e.Now()
		e.Advance(time.Minute)
		return w
	}
	code := func(err error) string { return errCode(err) }

	t.Run("an approver invited by someone else before the request is independent", func(t *testing.T) {
		w := setUp(t)
		if err := w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt); err != nil {
			t.Fatalf("approver1 for operator1: %v", err)
		}
	})

	t.Run("the requester never approves their own request", func(t *testing.T) {
		w := setUp(t)
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.approver1, w.approver1, w.requestedAt)); got != "self_approval" {
			t.Errorf("code = %q, want self_approval", got)
		}
	})

	t.Run("a person the requester invited cannot approve, however old", func(t *testing.T) {
		w := setUp(t)
		// admin asked long after inviting approver1.
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.admin, w.approver1, w.requestedAt)); got != "approver_invited_by_requester" {
			t.Errorf("code = %q, want approver_invited_by_requester", got)
		}
	})

	t.Run("an account made after the request cannot approve it", func(t *testing.T) {
		w := setUp(t)
		_, admin := w.e.Login(w.adminEnr, NewIdentityDevice(t))
		late := w.e.Invite(admin, "approver2", identity.RoleApprover).PersonID
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, late, w.requestedAt)); got != "approver_account_too_new" {
			t.Errorf("code = %q, want approver_account_too_new", got)
		}
		// The same approver may approve a later request.
		if err := w.e.Svc.CheckIndependentApprover(ctx, w.operator1, late, w.e.Now()); err != nil {
			t.Errorf("approver2 for a request made after it existed: %v", err)
		}
	})

	t.Run("an invitation accepted after the request counts from the acceptance", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		_, admin := e.Login(e.Bootstrap("admin"), NewIdentityDevice(t))
		op := e.Invite(admin, "operator1", identity.RoleOperator).PersonID
		inv, err := e.Svc.Invite(ctx, admin, "approver1", identity.RoleApprover)
		if err != nil {
			t.Fatal(err)
		}
		e.Advance(time.Minute)
		requestedAt := e.Now()
		e.Advance(time.Minute)
		if _, err := e.Svc.Accept(ctx, inv.Code.Reveal(), IdentityTestPassword); err != nil {
			t.Fatal(err)
		}
		if got := code(e.Svc.CheckIndependentApprover(ctx, op, inv.PersonID, requestedAt)); got != "approver_account_too_new" {
			t.Errorf("code = %q, want approver_account_too_new", got)
		}
	})

	t.Run("role grants: from the requester, after the request, or unrecorded", func(t *testing.T) {
		w := setUp(t)
		set := func(g ...identity.RoleGrant) {
			t.Helper()
			if err := w.e.DB.IdentityStore().InTx(ctx, func(tx identity.Tx) error {
				return tx.ReplaceRoleGrants(ctx, w.approver1, w.e.Now(), g)
			}); err != nil {
				t.Fatal(err)
			}
		}
		before := w.requestedAt.Add(-time.Second)
		set(identity.RoleGrant{Role: identity.RoleApprover, GrantedBy: "person:" + w.operator1, GrantedAt: before})
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "approver_role_from_requester" {
			t.Errorf("role granted by the requester: code = %q", got)
		}
		set(identity.RoleGrant{Role: identity.RoleApprover, GrantedBy: "person:" + w.admin, GrantedAt: w.requestedAt.Add(time.Second)})
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "approver_role_too_new" {
			t.Errorf("role granted after the request: code = %q", got)
		}
		set()
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "approver_grant_unknown" {
			t.Errorf("no grant on record: code = %q", got)
		}
		grants, err := w.e.DB.IdentityStore().RoleGrantsOfPerson(ctx, w.approver1)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if g.RevokedAt.IsZero() {
				t.Errorf("a replaced grant still stands: %+v", g)
			}
		}
	})

	t.Run("bootstrap and invitations record who granted each role", func(t *testing.T) {
		w := setUp(t)
		r := w.e.DB.IdentityStore()
		for _, tc := range []struct{ person, role, by string }{
			{w.admin, identity.RoleAdmin, identity.GrantedByBootstrap},
			{w.approver1, identity.RoleApprover, "person:" + w.admin},
		} {
			gs, err := r.RoleGrantsOfPerson(ctx, tc.person)
			if err != nil {
				t.Fatal(err)
			}
			if len(gs) != 1 || gs[0].Role != tc.role || gs[0].GrantedBy != tc.by || gs[0].GrantedAt.IsZero() || !gs[0].RevokedAt.IsZero() {
				t.Errorf("grants of %s = %+v, want one standing %s grant by %s", tc.person, gs, tc.role, tc.by)
			}
		}
	})

	t.Run("disabled and unknown approvers are refused", func(t *testing.T) {
		w := setUp(t)
		_, admin := w.e.Login(w.adminEnr, NewIdentityDevice(t))
		if err := w.e.Svc.DisableUser(ctx, admin, "approver1"); err != nil {
			t.Fatal(err)
		}
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "approver_not_active" {
			t.Errorf("disabled approver: code = %q", got)
		}
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, "p_nobody", w.requestedAt)); got != "approver_unknown" {
			t.Errorf("unknown approver: code = %q", got)
		}
	})

	t.Run("the puppet asks, its maker approves: refused", func(t *testing.T) {
		w := setUp(t)
		// admin invited operator1, so held their invitation code.
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.admin, w.requestedAt)); got != "requester_invited_by_approver" {
			t.Errorf("the requester's inviter approves: code = %q", got)
		}
		// A role the approver granted the requester, however it came about.
		if err := w.e.DB.IdentityStore().InTx(ctx, func(tx identity.Tx) error {
			return tx.ReplaceRoleGrants(ctx, w.operator1, w.e.Now(), []identity.RoleGrant{
				{Role: identity.RoleOperator, GrantedBy: "person:" + w.approver1, GrantedAt: w.requestedAt.Add(-time.Second)}})
		}); err != nil {
			t.Fatal(err)
		}
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "requester_role_from_approver" {
			t.Errorf("the approver granted the requester's role: code = %q", got)
		}
		// A grant replaced since does not count.
		if err := w.e.DB.IdentityStore().InTx(ctx, func(tx identity.Tx) error {
			return tx.ReplaceRoleGrants(ctx, w.operator1, w.e.Now(), []identity.RoleGrant{
				{Role: identity.RoleOperator, GrantedBy: "person:" + w.admin, GrantedAt: w.requestedAt.Add(-time.Second)}})
		}); err != nil {
			t.Fatal(err)
		}
		if err := w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt); err != nil {
			t.Errorf("after the grant was replaced: %v", err)
		}
	})

	t.Run("a disabled requester's request is not approved", func(t *testing.T) {
		w := setUp(t)
		_, admin := w.e.Login(w.adminEnr, NewIdentityDevice(t))
		if err := w.e.Svc.DisableUser(ctx, admin, "operator1"); err != nil {
			t.Fatal(err)
		}
		if got := code(w.e.Svc.CheckIndependentApprover(ctx, w.operator1, w.approver1, w.requestedAt)); got != "requester_not_active" {
			t.Errorf("disabled requester: code = %q", got)
		}
	})

	t.Run("active admins are counted for the single-admin warning", func(t *testing.T) {
		w := setUp(t)
		if n, err := w.e.Svc.ActiveAdmins(ctx); err != nil || n != 1 {
			t.Fatalf("ActiveAdmins = %d, %v; want 1", n, err)
		}
		if got := w.e.Svc.SeparationOfDutiesWarning(ctx); got != identity.SingleAdminWarning {
			t.Errorf("warning with one admin = %q", got)
		}
		_, admin := w.e.Login(w.adminEnr, NewIdentityDevice(t))
		if _, err := w.e.Svc.Invite(ctx, admin, "admin2", identity.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if n, _ := w.e.Svc.ActiveAdmins(ctx); n != 1 {
			t.Errorf("an admin who has not accepted counts: %d", n)
		}
		w.e.Invite(admin, "admin3", identity.RoleAdmin)
		if n, _ := w.e.Svc.ActiveAdmins(ctx); n != 2 {
			t.Errorf("ActiveAdmins with a second admin = %d", n)
		}
		if got := w.e.Svc.SeparationOfDutiesWarning(ctx); got != "" {
			t.Errorf("warning with two admins = %q", got)
		}
	})
}
