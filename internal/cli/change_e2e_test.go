package cli_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestNobodyActsAlone is issue 9 written as the attacker: one admin,
// alone, tries every way to disarm the gate — a policy with
// @approvals("0"), approving their own change, a flag-less `service set`
// that wipes a floor, a typo'd service, a new runbook version run at once,
// content edited in the database after review, an expired request. Each
// is refused with a sentence and an audit entry; tightening still applies
// at once; and a loosening applies once a second person approves it.
func TestNobodyActsAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		store  func(t *testing.T) string
		driver string
	}{
		{"sqlite", func(*testing.T) string { return "" }, "sqlite"},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }, "pgx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.store(t)
			q := startServer(t, dsn)
			q.setUp(10) // index's 80% floor leaves room to remove one host
			if dsn == "" {
				// Wait for the server's writes, as the server's own
				// connections do, instead of failing with SQLITE_BUSY.
				dsn = "file:" + filepath.Join(q.dir, "data", "interlock.db") + "?_pragma=busy_timeout(10000)"
			}
			db, err := sql.Open(tc.driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			nobodyActsAlone(t, q, db)
		})
	}
}

func nobodyActsAlone(t *testing.T, q *quickstart, db *sql.DB) {
	refusals := 0
	mustRefuse := func(want string, user string, args ...string) {
		t.Helper()
		code, out, errs := q.as(user, args...)
		if code == 0 {
			t.Fatalf("interlock %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(errs, want) {
			t.Fatalf("interlock %s refused without saying %q:\n%s%s", strings.Join(args, " "), want, out, errs)
		}
		refusals++
	}
	floorOf := func(name string) string {
		t.Helper()
		var list wire.ServiceList
		mustJSON(t, q.mustAs("admin", "--json", "service", "list"), &list)
		for _, s := range list.Services {
			if s.Name == name {
				return s.MinHealthy
			}
		}
		return "(no such service)"
	}
	policyHash := func() string {
		var p wire.Policy
		mustJSON(t, q.mustAs("admin", "--json", "policy", "get"), &p)
		return p.Hash
	}

	// admin2 comes first, while admin is the only admin (so at once). The
	// changes an approver is meant to act on below are admin2's: everyone
	// else owes their account to admin, and an approver must not owe their
	// account to the person asking (sock puppets; TestSockPuppets).
	// admin3 is invited in the same breath, before either accepts: the
	// two owe their accounts to admin, not to each other, so each may
	// approve the other's requests — two admins who are independent.
	invites := map[string]wire.Invitation{}
	for _, name := range []string{"admin2", "admin3"} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", name, "--role", "admin"), &inv)
		invites[name] = inv
	}
	for _, name := range []string{"admin2", "admin3"} {
		f := filepath.Join(q.dir, name+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", invites[name].Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(name, f)
		q.login(name)
	}

	// 1. A policy with @approvals("0") does not take effect alone.
	loose := strings.Replace(policy.DefaultText, "@id(\"approvals.baseline\")\n@approvals(\"1\")", "@id(\"approvals.baseline\")\n@approvals(\"0\")", 1)
	if loose == policy.DefaultText {
		t.Fatal("the default policy no longer has approvals.baseline at 1")
	}
	looseFile := filepath.Join(q.dir, "loose.cedar")
	if err := os.WriteFile(looseFile, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	out := q.mustAs("admin", "policy", "apply", "-f", looseFile)
	policyCR := changeID(t, out)
	for _, want := range []string{"Approvals needed to run an operation:", "risk=medium removes_capacity=true: 1 → 0", "policies changed: approvals.baseline"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy apply does not show %q:\n%s", want, out)
		}
	}
	if h := policyHash(); h != policy.Hash(policy.DefaultText) {
		t.Fatalf("a requested policy is in force before approval (hash %s)", h)
	}
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "probe"), &run)
	if run.Operation.Needed != 1 {
		t.Fatalf("with the @approvals(\"0\") request pending, an operation needs %d approvals, want 1", run.Operation.Needed)
	}
	q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "probe only")

	// 2. Nobody approves their own change, not even an admin with fresh MFA.
	mustRefuse("cannot approve it", "admin", "change", "approve", policyCR, "--yes")
	if h := policyHash(); h != policy.Hash(policy.DefaultText) {
		t.Fatal("self-approval put the policy in force")
	}
	// Saying no at the prompt approves nothing.
	if code, _, errs := q.run("n\n", "--profile", "approver1", "change", "approve", policyCR); code == 0 || !strings.Contains(errs, "not approved") {
		t.Fatalf("answering n approved: %d %s", code, errs)
	}
	q.mustAs("admin", "change", "withdraw", policyCR, "--reason", "only a probe")
	mustRefuse("is withdrawn", "approver1", "change", "approve", policyCR, "--yes")

	// 3. A flag-less `service set` wipes nothing.
	mustRefuse("needs at least one rule", "admin", "service", "set", "billing")
	if f := floorOf("billing"); f != "50%" {
		t.Fatalf("billing's floor is %q after a flag-less service set, want 50%%", f)
	}
	// 4. A typo does not create a new, unprotected service.
	mustRefuse("There is no service biling", "admin", "service", "set", "biling", "--min-healthy", "50%")
	if f := floorOf("biling"); f != "(no such service)" {
		t.Fatalf("the typo created service biling (floor %q)", f)
	}
	q.mustAs("admin", "service", "set", "payments", "--min-healthy", "1", "--create")
	if f := floorOf("payments"); f != "1" {
		t.Fatalf("--create did not create payments with its floor: %q", f)
	}

	// 5. Tightening applies at once, and changes only the rule named.
	if out := q.mustAs("admin", "service", "set", "billing", "--min-healthy", "60%"); strings.Contains(out, "change request") {
		t.Fatalf("raising a floor made a change request:\n%s", out)
	}
	var list wire.ServiceList
	mustJSON(t, q.mustAs("admin", "--json", "service", "list"), &list)
	for _, s := range list.Services {
		if s.Name == "billing" && (s.MinHealthy != "60%" || s.MaxPerOperation != "10%") {
			t.Fatalf("billing after --min-healthy 60%%: floor %q, max/op %q; want 60%% and the untouched 10%%", s.MinHealthy, s.MaxPerOperation)
		}
	}

	// A services file that lowers a floor is a change request too.
	yamlFile := filepath.Join(q.dir, "services.yaml")
	if err := os.WriteFile(yamlFile, []byte("services:\n  - name: billing\n    min_healthy: 10%\n    max_per_operation: 10%\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileCR := changeID(t, q.mustAs("admin", "service", "set", "-f", yamlFile))
	if f := floorOf("billing"); f != "60%" {
		t.Fatalf("a services file lowered billing's floor to %q without approval", f)
	}
	q.mustAs("admin", "change", "withdraw", fileCR)

	// 6. A new runbook version cannot be applied and run alone.
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(q.dir, "evil.yaml")
	if err := os.WriteFile(evil, []byte(strings.Replace(string(src), `argv: ["echo", "removing", "{{service}}", "from service"]`, `argv: ["rm", "-rf", "/srv/{{service}}"]`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out = q.mustAs("admin", "runbook", "apply", "-f", evil)
	evilCR := changeID(t, out)
	if !strings.Contains(out, `"rm","-rf","/srv/{{service}}"`) || !strings.Contains(out, `"removing"`) {
		t.Errorf("the runbook diff does not show the old and new argv:\n%s", out)
	}
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "probe"), &run)
	if run.Result.Plan.RunbookVersion != 1 || strings.Contains(strings.Join(run.Result.Plan.Step.Argv, " "), "rm -rf") {
		t.Fatalf("an unapproved runbook version was planned: v%d %v", run.Result.Plan.RunbookVersion, run.Result.Plan.Step.Argv)
	}
	q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "probe only")
	mustRefuse("cannot approve it", "admin", "change", "approve", evilCR, "--yes")
	q.mustAs("approver1", "change", "deny", evilCR, "--reason", "rm -rf is not a removal from rotation")

	// 7. Hash binding: content edited in the database after the approver
	// reviewed it is refused, whether or not the attacker fixed up the hash.
	out = q.mustAs("admin2", "service", "set", "billing", "--min-healthy", "40%")
	lowerCR := changeID(t, out)
	if !strings.Contains(out, "lowers the capacity floor of billing from 60% to 40%") {
		t.Errorf("floor-lowering request does not say so:\n%s", out)
	}
	var reviewed wire.ChangeRequest
	mustJSON(t, q.mustAs("approver1", "--json", "change", "show", lowerCR), &reviewed)
	var content, base string
	if err := db.QueryRowContext(q.ctx, `SELECT content, base FROM change_requests WHERE id = $1`, lowerCR).Scan(&content, &base); err != nil {
		t.Fatal(err)
	}
	wiped := strings.Replace(content, `"min_healthy":"40%"`, `"min_healthy":"0%"`, 1)
	if wiped == content {
		t.Fatalf("content %s has no 40%% floor to edit", content)
	}
	if _, err := db.ExecContext(q.ctx, `UPDATE change_requests SET content = $1 WHERE id = $2`, wiped, lowerCR); err != nil {
		t.Fatal(err)
	}
	mustRefuse("no longer matches the hash", "approver1", "change", "approve", lowerCR, "--yes", "--hash", reviewed.Hash)
	if _, err := db.ExecContext(q.ctx, `UPDATE change_requests SET hash = $1 WHERE id = $2`,
		change.ContentHash(change.KindServices, "billing", wiped, base), lowerCR); err != nil {
		t.Fatal(err)
	}
	mustRefuse("look at it again", "approver1", "change", "approve", lowerCR, "--yes", "--hash", reviewed.Hash)
	if f := floorOf("billing"); f != "60%" {
		t.Fatalf("tampered change applied: billing floor %q", f)
	}

	// A request whose base moved on (the floor was raised since) is void:
	// its diff is no longer the change.
	staleCR := changeID(t, q.mustAs("admin2", "service", "set", "billing", "--min-healthy", "50%"))
	q.mustAs("admin", "service", "set", "billing", "--min-healthy", "70%")
	mustRefuse("is void", "approver1", "change", "approve", staleCR, "--yes")
	if f := floorOf("billing"); f != "70%" {
		t.Fatalf("a stale change applied: billing floor %q", f)
	}
	q.mustChange("admin2", "approver1", "service", "set", "billing", "--min-healthy", "60%") // back to 60%: a lowering, approved

	// 8. An expired request cannot be approved (time passing is simulated
	// by moving its expiry into the past).
	out = q.mustAs("admin2", "service", "set", "billing", "--max-per-operation", "none")
	oldCR := changeID(t, out)
	if _, err := db.ExecContext(q.ctx, `UPDATE change_requests SET expires_at = $1 WHERE id = $2`, time.Now().Add(-time.Minute).UnixNano(), oldCR); err != nil {
		t.Fatal(err)
	}
	mustRefuse("expired", "approver1", "change", "approve", oldCR, "--yes", "--otp", q.otp("approver1"))
	mustRefuse("is expired", "approver1", "change", "approve", oldCR, "--yes")
	var expired wire.ChangeList
	mustJSON(t, q.mustAs("admin", "--json", "change", "list", "--state", "expired"), &expired)
	if len(expired.Changes) != 1 || expired.Changes[0].ID != oldCR {
		t.Fatalf("change list --state expired = %+v, want just %s", expired.Changes, oldCR)
	}

	// 9. With a second admin, a floor lowered by one is applied only when
	// another person approves it with fresh MFA. admin invited admin2, so
	// neither approves the other: admin2 owes their account to admin, and
	// a request of admin2's could be admin's own (admin held the code).
	out = q.mustAs("admin", "service", "set", "billing", "--min-healthy", "34%")
	mustRefuse("admin invited admin2", "admin2", "change", "approve", changeID(t, out), "--yes", "--otp", q.otp("admin2"))
	q.mustAs("admin", "change", "withdraw", changeID(t, out))
	out = q.mustAs("admin2", "service", "set", "billing", "--min-healthy", "34%")
	floorCR := changeID(t, out)
	mustRefuse("admin2 owes their account to admin", "admin", "change", "approve", floorCR, "--yes", "--otp", q.otp("admin"))
	// admin3, a second admin who owes admin2 nothing, approves it.
	approved := q.must("y\n", "--profile", "admin3", "change", "approve", floorCR, "--otp", q.otp("admin3"))
	if !strings.Contains(approved, "min_healthy:       60% → 34%") || !strings.Contains(approved, "is applied") {
		t.Errorf("the second admin's approval did not show the floor's diff or apply it:\n%s", approved)
	}
	if f := floorOf("billing"); f != "34%" {
		t.Fatalf("approved floor change not applied: billing floor %q", f)
	}
	t.Logf("interlock service set (admin2):\n%s\ninterlock change approve (admin3):\n%s", out, approved)

	// 10. With two admins, granting approver or admin is a change request,
	// and only the requester collects the invitation code.
	out = q.mustAs("admin2", "user", "invite", "approver2", "--role", "approver")
	grantCR := changeID(t, out)
	if strings.Contains(out, "ilk_inv_") {
		t.Fatalf("a gated invitation printed a code:\n%s", out)
	}
	q.mustAs("approver1", "change", "approve", grantCR, "--yes")
	mustRefuse("Only the person who requested", "admin", "change", "apply", grantCR)
	var applied wire.ChangeApplied
	mustJSON(t, q.mustAs("admin2", "--json", "change", "apply", grantCR), &applied)
	if applied.Invitation == nil || applied.Invitation.Role != "approver" || !strings.HasPrefix(applied.Invitation.Code, "ilk_inv_") {
		t.Fatalf("collecting the approved invitation: %+v", applied)
	}
	if out := q.mustAs("admin", "user", "invite", "viewer2", "--role", "viewer"); !strings.Contains(out, "ilk_inv_") {
		t.Fatalf("inviting a viewer did not apply at once:\n%s", out)
	}

	// 11. Disabling a person waits for another person too; they stay
	// active until then, and only the requester withdraws a request.
	disableCR := changeID(t, q.mustAs("admin2", "user", "disable", "operator1"))
	mustRefuse("Only the person who requested", "admin", "change", "withdraw", disableCR)
	q.mustAs("operator1", "whoami")
	q.mustAs("approver1", "change", "approve", disableCR, "--yes")
	if code, _, _ := q.as("operator1", "whoami"); code == 0 {
		t.Fatal("operator1 still signs in after their disabling was approved")
	}

	// Every refusal left a record.
	entries := q.auditEntries("identity.user_disabled") // the last change made above
	checkEntryLayouts(t, entries)
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if got := kinds["change.approval_refused"] + kinds["change.refused"]; got < refusals {
		t.Errorf("%d refusals left %d audit entries (kinds %v)", refusals, got, kinds)
	}
	for _, k := range []string{"change.requested", "change.approved", "change.applied", "change.denied", "change.withdrawn", "change.expired", "change.refused", "change.approval_refused"} {
		if kinds[k] == 0 {
			t.Errorf("the log has no %s entry (kinds %v)", k, kinds)
		}
	}
}

// TestPolicyDiffOffline runs `interlock policy diff` on two files, no server.
func TestPolicyDiffOffline(t *testing.T) {
	q := &quickstart{t: t, ctx: t.Context()}
	dir := t.TempDir()
	old, next := filepath.Join(dir, "old.cedar"), filepath.Join(dir, "new.cedar")
	if err := os.WriteFile(old, []byte(policy.DefaultText), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := policy.DefaultText + "\n@id(\"ops.policy\")\npermit (principal in Role::\"operator\", action == Action::\"policy.apply\", resource);\n"
	if err := os.WriteFile(next, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	out := q.must("", "policy", "diff", old, next)
	for _, want := range []string{"policies added: ops.policy", "Permissions gained:", `+ role operator: policy.apply on Policy::"interlock" (denied → allowed)`} {
		if !strings.Contains(out, want) {
			t.Errorf("policy diff does not show %q:\n%s", want, out)
		}
	}
	// A loosening hidden behind a condition the diff cannot vary is named,
	// never shown as "no decision changes".
	hidden := policy.DefaultText + "\n@id(\"ops.from-ip\")\npermit (principal in Role::\"operator\", action == Action::\"policy.apply\", resource)\nwhen { context.source_ip == \"10.9.9.9\" };\n"
	if err := os.WriteFile(next, []byte(hidden), 0o600); err != nil {
		t.Fatal(err)
	}
	out = q.must("", "policy", "diff", old, next)
	if !strings.Contains(out, "conditions the diff cannot enumerate") || !strings.Contains(out, "? ops.from-ip (reads context.source_ip)") ||
		strings.Contains(out, "No decision changes for any role and action") {
		t.Errorf("policy diff of a conditional grant:\n%s", out)
	}
	// The same count from a weaker role is shown as such, not as "▲".
	viewers := strings.Replace(policy.DefaultText, "@approvals(\"1\")\n@approver_role(\"approver\")", "@approvals(\"1\")\n@approver_role(\"viewer\")", 1)
	if err := os.WriteFile(next, []byte(viewers), 0o600); err != nil {
		t.Fatal(err)
	}
	if out = q.must("", "policy", "diff", old, next); !strings.Contains(out, "~ other approvers risk=high removes_capacity=true: 1 (from approver) → 1 (from viewer)") {
		t.Errorf("policy diff of approvals from viewers:\n%s", out)
	}
	if code, _, errs := q.run("", "policy", "diff", old, filepath.Join(dir, "missing.cedar")); code == 0 || errs == "" {
		t.Errorf("policy diff with a missing file: %d %q", code, errs)
	}
}
