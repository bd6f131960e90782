package cli_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestInsiderAttacks plays an insider's attacks through the real CLI over
// real HTTPS, on SQLite and PostgreSQL. First the sock puppet the other way
// round. An admin alone
// invites "puppet" (keeping the invitation code, as the inviter always
// can), makes a loosening request as puppet and approves it as themselves:
// one person acting alone, though the approver owes nothing to the
// requester. And a request whose requester was disabled since (fired, or
// their session found copied) is not approved on their behalf. Each is
// refused with a sentence; nothing is applied or run. Then runbooks: a
// placeholder smuggled into code through env -S or xargs sh -c is refused
// at apply, and a value that would be an option (ssh's
// -oProxyCommand=…) at plan, leaving no operation. Before all that, a copied
// session: minting credentials needs fresh MFA, like approving.
func TestInsiderAttacks(t *testing.T) {
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
			q.setUp(10)
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
			runCopiedSession(t, q, db)
			runPuppetRequesters(t, q)
			runBadHash(t, q)
			runSmuggling(t, q)
		})
	}
}

func runPuppetRequesters(t *testing.T, q *quickstart) {
	mustRefuse := func(want, user string, args ...string) {
		t.Helper()
		code, out, errs := q.as(user, args...)
		if code == 0 {
			t.Fatalf("interlock %s as %s succeeded:\n%s", strings.Join(args, " "), user, out)
		}
		if !strings.Contains(errs, want) {
			t.Fatalf("interlock %s as %s refused without saying %q:\n%s%s", strings.Join(args, " "), user, want, out, errs)
		}
	}
	runbookNamed := func(name string) string {
		return q.writeRunbook(name, `name: `+name+`
risk: low
removes_capacity: true
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1}
target: {service: service, count: count}
step: {argv: ["true"]}
waves: {size: "100%"}
`)
	}

	// 1. The puppet asks, its maker approves. (Operations need role
	// approver, which the default policy does not give admins.)
	q.invitePuppet("admin", "puppet", "operator")
	cr := changeID(t, q.mustAs("puppet", "runbook", "apply", "-f", runbookNamed("drain-all")))
	mustRefuse("puppet owes their account to admin", "admin", "change", "approve", cr, "--yes", "--otp", q.otp("admin"))
	if code, _, _ := q.as("admin", "runbook", "show", "drain-all"); code == 0 {
		t.Fatal("the puppet's runbook was applied with its maker's approval")
	}
	// Someone who did not make the puppet may still approve (one hop, as
	// for approvers: see identity.CheckIndependentApprover).
	q.mustAs("approver1", "change", "approve", cr, "--yes")

	// 2. A request outlives its requester's account: operator1 asks for a
	// runbook and an operation, is disabled (admin2 asks, approver1
	// approves), and approver1 then approves neither.
	pendingCR := changeID(t, q.mustAs("operator1", "runbook", "apply", "-f", runbookNamed("orphan")))
	orphanOp := q.runOne("operator1", "INC-orphan")
	q.invitePuppet("admin", "admin2", "admin")
	q.mustChange("admin2", "approver1", "user", "disable", "operator1")
	mustRefuse("operator1's account is disabled", "approver1", "change", "approve", pendingCR, "--yes", "--otp", q.otp("approver1"))
	mustRefuse("operator1's account is disabled", "approver1", "approve", orphanOp.ID, "--otp", q.otp("approver1"))
	if code, _, _ := q.as("admin", "runbook", "show", "orphan"); code == 0 {
		t.Fatal("a disabled requester's runbook was applied")
	}
	if got := strings.Join(q.auditCodes("change.approval_refused", 2), ","); !strings.Contains(got, "approver_not_independent") {
		t.Errorf("change.approval_refused codes = %s", got)
	}
}

// runSmuggling runs as puppet, an operator (operator1 is disabled by now).
func runSmuggling(t *testing.T, q *quickstart) {
	runbook := func(name, argv string) string {
		return q.writeRunbook(name, `name: `+name+`
risk: low
removes_capacity: false
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1}
  - {name: host, type: string}
target: {service: service, count: count}
step: {argv: [`+argv+`]}
health_check: {argv: ["true"]}
waves: {size: "100%"}
`)
	}
	for _, tc := range []struct{ argv, want string }{
		{`"env", "-S", "sh -c 'ping -c1 {{host}}'"`, "into a string env -S splits into words again"},
		{`"xargs", "sh", "-c", "ping -c1 {{host}}"`, "into the script sh -c runs"},
	} {
		code, out, errs := q.as("puppet", "runbook", "apply", "-f", runbook("smuggle", tc.argv))
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Fatalf("runbook apply with argv [%s]: exit %d, want a refusal saying %q:\n%s%s", tc.argv, code, tc.want, out, errs)
		}
	}
	q.mustChange("puppet", "approver1", "runbook", "apply", "-f", runbook("probe", `"echo", "{{host}}"`))
	code, out, errs := q.as("puppet", "run", "probe", "--param", "service=billing", "--param", "count=1",
		"--param", "host=-oProxyCommand=sh -c id", "--reason", "INC-opt")
	if code == 0 || !strings.Contains(errs, `parameter host would be read as an option by echo (it starts with "-")`) {
		t.Fatalf("a value that is an option: exit %d:\n%s%s", code, out, errs)
	}
	if l := q.mustAs("puppet", "ops", "list"); strings.Contains(l, "probe") {
		t.Fatalf("a refused run left an operation:\n%s", l)
	}
	q.mustAs("puppet", "run", "probe", "--param", "service=billing", "--param", "count=1", "--param", "host=db01", "--reason", "INC-opt", "--dry-run")
}

// runCopiedSession plays someone who copied admin's device key and session
// ten minutes after admin signed in (simulated by ageing the session's MFA
// in the database): with the session alone they must not mint a lasting
// way in — a new admin's invitation code, a join token for a fake host that
// would receive the next operation's secrets, an approved invitation's
// code. Each needs a second factor proved in the last five minutes, which
// admin (with the authenticator) still gives with --otp.
func runCopiedSession(t *testing.T, q *quickstart, db *sql.DB) {
	var adminID string
	if err := db.QueryRowContext(q.ctx, `SELECT id FROM persons WHERE username = $1`, "admin").Scan(&adminID); err != nil {
		t.Fatal(err)
	}
	age := func(person string) {
		t.Helper()
		if _, err := db.ExecContext(q.ctx, `UPDATE login_sessions SET mfa_at = $1 WHERE person_id = $2`, time.Now().Add(-10*time.Minute).UnixNano(), person); err != nil {
			t.Fatal(err)
		}
	}
	age(adminID)
	for _, args := range [][]string{
		{"user", "invite", "mallory", "--role", "admin"},
		{"join-token", "create", "--services", "billing"},
	} {
		code, out, errs := q.as("admin", args...)
		if code == 0 || strings.Contains(out, "ilk_") || !strings.Contains(errs, "needs a second factor proved in the last 5 minutes") {
			t.Fatalf("interlock %s with a session whose MFA is 10 minutes old: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	var n int
	if err := db.QueryRowContext(q.ctx, `SELECT COUNT(*) FROM persons WHERE username = $1`, "mallory").Scan(&n); err != nil || n != 0 {
		t.Fatalf("mallory exists after a refused invitation (%d, %v)", n, err)
	}
	// The person with the authenticator steps up and carries on.
	if out := q.mustAs("admin", "user", "invite", "viewer9", "--role", "viewer", "--otp", q.otp("admin")); !strings.Contains(out, "ilk_inv_") {
		t.Fatalf("invite with --otp printed no code:\n%s", out)
	}
}

// runBadHash approves with something that is not a content hash: a clear
// 400 before anything is judged, and the junk (here 64 KiB of it) is not
// copied into the log, where every refused approval leaves an entry.
func runBadHash(t *testing.T, q *quickstart) {
	cr := changeID(t, q.mustAs("puppet", "runbook", "apply", "-f", q.writeRunbook("hashcheck", `name: hashcheck
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1}
target: {service: service, count: count}
step: {argv: ["true"]}
health_check: {argv: ["true"]}
`)))
	junk := "sha256:" + strings.Repeat("zz", 32<<10)
	for _, h := range []string{"nothex", junk, "sha256:" + strings.Repeat("A", 64)} {
		code, out, errs := q.as("approver1", "change", "approve", cr, "--yes", "--hash", h)
		if code == 0 || !strings.Contains(errs, "is not a content hash") {
			t.Fatalf("approve with hash %.20q…: exit %d\n%s%s", h, code, out, errs)
		}
	}
	q.mustAs("puppet", "change", "withdraw", cr)
	// A state that does not exist is an error, not an empty list.
	if code, out, errs := q.as("approver1", "change", "list", "--state", "pendng"); code == 0 || !strings.Contains(errs, `There is no change request state "pendng"`) {
		t.Fatalf("change list --state pendng: exit %d\n%s%s", code, out, errs)
	}
	for _, e := range q.auditEntries("change.withdrawn") {
		if e.Kind == "change.approval_refused" && len(e.Data["hash"]) > 80 {
			t.Fatalf("a refused approval logged %d bytes of the caller's hash", len(e.Data["hash"]))
		}
	}
}
