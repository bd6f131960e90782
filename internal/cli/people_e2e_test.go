package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestUserEnableAndSetRoles: taking roles away applies at once; adding
// approver or admin, and enabling a disabled approver or admin, is a
// change request once two admins exist, approved by someone independent;
// with a single admin they apply at once, as invitations do.
func TestUserEnableAndSetRoles(t *testing.T) {
	q := startServer(t, "")
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	q.enrol("admin", "op1", "operator")
	q.enrol("admin", "approver1", "approver")
	q.login("op1")
	q.login("approver1")
	roles := func(user string) string {
		t.Helper()
		for _, u := range q.userList() {
			if u.Username == user {
				return strings.Join(u.Roles, ",") + "/" + u.Status
			}
		}
		t.Fatalf("no user %s", user)
		return ""
	}

	// A single admin: nobody else could approve, so a grant applies at once.
	q.mustAs("admin", "user", "set-roles", "op1", "--role", "operator,approver")
	if got := roles("op1"); got != "operator,approver/active" {
		t.Fatalf("op1 after set-roles = %s", got)
	}
	q.mustAs("admin", "user", "set-roles", "op1", "--role", "operator")
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "set-roles", "admin", "--role", "operator"}, "cannot change your own roles"},
		{[]string{"user", "set-roles", "op1", "--role", "root"}, `Role "root" does not exist`},
		{[]string{"user", "set-roles", "nobody", "--role", "viewer"}, "There is no user nobody"},
		{[]string{"user", "enable", "op1"}, ""}, // active already: nothing to do
	} {
		code, _, errs := q.as("admin", bad.args...)
		if (bad.want == "") != (code == 0) || !strings.Contains(errs, bad.want) {
			t.Errorf("interlock %s: exit %d, %s; want %q", strings.Join(bad.args, " "), code, errs, bad.want)
		}
	}

	// Two more admins, invited together.
	var invs []wire.Invitation
	for _, name := range []string{"admin2", "admin3"} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", name, "--role", "admin"), &inv)
		invs = append(invs, inv)
	}
	for _, inv := range invs {
		f := filepath.Join(q.dir, inv.Username+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(inv.Username, f)
		q.login(inv.Username)
	}

	// Granting approver is now a change request; admin2's own approval is
	// refused, admin3 (independent of admin2) approves it.
	out := q.mustAs("admin2", "user", "set-roles", "op1", "--role", "operator,approver")
	id := changeID(t, out)
	if !strings.Contains(out, "Set the roles of op1: operator → operator, approver") {
		t.Errorf("the request does not show the roles before and after:\n%s", out)
	}
	if got := roles("op1"); got != "operator/active" {
		t.Fatalf("a pending grant already applied: op1 = %s", got)
	}
	if code, _, errs := q.as("admin2", "change", "approve", id, "--yes"); code == 0 || !strings.Contains(errs, "cannot approve it") {
		t.Errorf("admin2 approved their own grant: exit %d, %s", code, errs)
	}
	q.mustAs("admin3", "change", "approve", id, "--yes")
	if got := roles("op1"); got != "operator,approver/active" {
		t.Fatalf("op1 after the approved grant = %s", got)
	}
	// Nobody approves a grant to themselves: admin2 asks to make op1 (now an
	// approver) an admin, and op1 may not approve it.
	q.login("op1")
	id = changeID(t, q.mustAs("admin2", "user", "set-roles", "op1", "--role", "operator,approver,admin"))
	if code, _, errs := q.as("op1", "change", "approve", id, "--yes", "--otp", q.otp("op1")); code == 0 || !strings.Contains(errs, "changes your own account") {
		t.Errorf("op1 approved their own promotion to admin: exit %d, %s", code, errs)
	}
	if got := roles("op1"); got != "operator,approver/active" {
		t.Fatalf("op1 after refusing their own promotion = %s", got)
	}
	q.mustAs("admin2", "change", "withdraw", id)
	// Taking a role away only tightens: at once.
	if out := q.mustAs("admin2", "user", "set-roles", "op1", "--role", "operator"); strings.Contains(out, "change request") {
		t.Errorf("taking a role away made a change request:\n%s", out)
	}
	if got := roles("op1"); got != "operator/active" {
		t.Errorf("op1 after losing approver = %s", got)
	}

	// Disable approver1 (a request), then enable them: they hold approver,
	// so enabling is a request too, which admin3 approves.
	q.mustAs("admin3", "change", "approve", changeID(t, q.mustAs("admin2", "user", "disable", "approver1")), "--yes")
	if got := roles("approver1"); got != "approver/disabled" {
		t.Fatalf("approver1 after disable = %s", got)
	}
	out = q.mustAs("admin2", "user", "enable", "approver1")
	id = changeID(t, out)
	if !strings.Contains(out, "Enable approver1 (now disabled)") || roles("approver1") != "approver/disabled" {
		t.Errorf("enable of an approver did not wait for approval:\n%s", out)
	}
	q.mustAs("admin3", "change", "approve", id, "--yes")
	if got := roles("approver1"); got != "approver/active" {
		t.Fatalf("approver1 after the approved enable = %s", got)
	}
	q.login("approver1")

	// An operator is enabled at once.
	q.mustAs("admin3", "change", "approve", changeID(t, q.mustAs("admin2", "user", "disable", "op1")), "--yes")
	if out := q.mustAs("admin2", "user", "enable", "op1"); !strings.Contains(out, "Enabled op1") {
		t.Errorf("enabling an operator: %s", out)
	}
	q.login("op1")
}

func (q *quickstart) userList() []wire.User {
	q.t.Helper()
	var l wire.UserList
	mustJSON(q.t, q.mustAs("admin", "--json", "user", "list"), &l)
	return l.Users
}
