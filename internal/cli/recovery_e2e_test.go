package cli_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestAccountRecovery: nobody resets a credential alone. A person who lost
// their authenticator recovers with their password and one of their own
// recovery codes (once each); an admin's reset is a change request that
// only another, independent admin approves, after which the person
// re-enrols with a one-time code. On SQLite and PostgreSQL.
func TestAccountRecovery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testAccountRecovery(t, startServer(t, tc.store(t))) })
	}
}

// enrol accepts an invitation for user and returns their recovery codes.
func (q *quickstart) enrol(by, user, role string) []string {
	q.t.Helper()
	var inv wire.Invitation
	mustJSON(q.t, q.mustAs(by, "--json", "user", "invite", user, "--role", role), &inv)
	f := filepath.Join(q.dir, user+".totp")
	var enr struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	mustJSON(q.t, q.must(password+"\n", append([]string{"--json", "user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...), &enr)
	q.readSecret(user, f)
	if len(enr.RecoveryCodes) != 10 {
		q.t.Fatalf("%s got %d recovery codes at enrolment, want 10", user, len(enr.RecoveryCodes))
	}
	return enr.RecoveryCodes
}

// newSecret makes user's next logins use the TOTP secret in file.
func (q *quickstart) newSecret(user, file string) {
	q.readSecret(user, file)
	q.mu.Lock()
	q.otpAt[user] = 0
	q.mu.Unlock()
}

var resetCodeRE = regexp.MustCompile(`ilk_rst_[A-Za-z0-9_-]+`)

func testAccountRecovery(t *testing.T, q *quickstart) {
	secretFile := filepath.Join(q.dir, "admin.totp")
	var boot struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	mustJSON(t, q.must(password+"\n", append([]string{"--json", "bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...), &boot)
	if len(boot.RecoveryCodes) != 10 {
		t.Fatalf("the first admin got %d recovery codes, want 10", len(boot.RecoveryCodes))
	}
	q.readSecret("admin", secretFile)
	q.login("admin")
	codes := q.enrol("admin", "carol", "operator")
	q.login("carol")

	// With a single admin, an admin cannot reset anyone: nobody could approve.
	code, _, errs := q.as("admin", "user", "reset", "carol", "--totp")
	if code == 0 || !strings.Contains(errs, "no other active admin could approve") || !strings.Contains(errs, "interlock user recover") {
		t.Fatalf("reset with a single admin: exit %d, %s; want a refusal that points to the recovery codes", code, errs)
	}

	// carol lost her phone: her password and a recovery code give her a new
	// authenticator, and end her sessions.
	recover := func(code, pw string) (int, string, string) {
		return q.run(pw+"\n", append([]string{"user", "recover", "--user", "carol", "--recovery-code", code, "--password-stdin",
			"--totp-secret-out", filepath.Join(q.dir, "carol.totp")}, q.serverFlags()...)...)
	}
	if code, _, errs := recover(codes[0], "not-carols-password-at-all"); code == 0 || !strings.Contains(errs, "recovery code is wrong") {
		t.Fatalf("recovery with a wrong password: exit %d, %s", code, errs)
	}
	oldSecret := q.secret["carol"]
	if code, out, errs := recover(strings.ToUpper(codes[0]), password); code != 0 || !strings.Contains(out, "9 left") {
		t.Fatalf("recovery with password and an unused code (the wrong password did not use it up): exit %d\n%s\n%s", code, out, errs)
	}
	q.newSecret("carol", filepath.Join(q.dir, "carol.totp"))
	if q.secret["carol"] == oldSecret {
		t.Fatalf("recovery kept the lost TOTP secret")
	}
	if code, _, errs := q.as("carol", "whoami"); code == 0 || !strings.Contains(errs, "ended") {
		t.Errorf("carol's session from before the recovery still works: exit %d, %s", code, errs)
	}
	q.login("carol") // with the new authenticator
	if code, _, errs := recover(codes[0], password); code == 0 || !strings.Contains(errs, "already used") {
		t.Errorf("a used recovery code worked again: exit %d, %s", code, errs)
	}

	// Two more admins (invited together, so they owe their accounts to
	// admin but not to each other) and an approver.
	var invs []wire.Invitation
	for _, u := range []struct{ name, role string }{{"admin2", "admin"}, {"admin3", "admin"}, {"approver1", "approver"}} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", u.name, "--role", u.role), &inv)
		invs = append(invs, inv)
	}
	for _, inv := range invs {
		f := filepath.Join(q.dir, inv.Username+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(inv.Username, f)
		q.login(inv.Username)
	}

	// carol loses her authenticator again. admin2 asks; nobody resets alone.
	out := q.mustAs("admin2", "user", "reset", "carol", "--totp")
	id := changeID(t, out)
	if !strings.Contains(out, "Reset the authenticator (TOTP) of carol") {
		t.Errorf("the reset request does not say what it resets:\n%s", out)
	}
	for _, try := range []struct{ who, want string }{
		{"admin2", "you cannot approve it"},            // the requester
		{"approver1", "Only a person with role admin"}, // not an admin
		{"admin", "admin invited admin2"},              // invited admin2: admin2's request could be admin's own
	} {
		code, _, errs := q.as(try.who, "--json", "change", "approve", id, "--yes")
		if code == 0 || !strings.Contains(errs, try.want) {
			t.Errorf("%s approving carol's reset: exit %d, %s; want refused (%s)", try.who, code, errs, try.want)
		}
	}
	if code, _, errs := q.as("admin2", "change", "apply", id); code == 0 || !strings.Contains(errs, "not approved") {
		t.Errorf("collecting an unapproved reset: exit %d, %s", code, errs)
	}
	if code, _, errs := q.as("carol", "whoami"); code != 0 {
		t.Errorf("a pending reset already ended carol's session: %s", errs)
	}
	q.mustAs("admin3", "change", "approve", id, "--yes")
	if code, _, errs := q.as("admin3", "change", "apply", id); code == 0 || !strings.Contains(errs, "Only the person who requested") {
		t.Errorf("the approver collected the reset code: exit %d, %s", code, errs)
	}
	collected := q.mustAs("admin2", "change", "apply", id)
	resetCode := resetCodeRE.FindString(collected)
	if resetCode == "" {
		t.Fatalf("change apply printed no reset code:\n%s", collected)
	}
	if code, _, _ := q.as("admin2", "change", "apply", id); code == 0 {
		t.Errorf("a reset code was collected twice")
	}

	// carol re-enrols with the code: a new authenticator, her password stays.
	reenrol := func() (int, string, string) {
		return q.run("", append([]string{"--json", "user", "reenrol", "--code", resetCode, "--totp-secret-out", filepath.Join(q.dir, "carol.totp")}, q.serverFlags()...)...)
	}
	code, out, errs = reenrol()
	if code != 0 {
		t.Fatalf("reenrol: exit %d\n%s\n%s", code, out, errs)
	}
	var enr struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := json.Unmarshal([]byte(out), &enr); err != nil || len(enr.RecoveryCodes) != 10 {
		t.Errorf("re-enrolment gave %d new recovery codes (%v), want 10", len(enr.RecoveryCodes), err)
	}
	before := q.secret["carol"]
	q.newSecret("carol", filepath.Join(q.dir, "carol.totp"))
	if q.secret["carol"] == before {
		t.Fatalf("re-enrolment kept the old TOTP secret")
	}
	if code, _, errs := q.as("carol", "whoami"); code == 0 || !strings.Contains(errs, "ended") {
		t.Errorf("carol's session survived the reset: exit %d, %s", code, errs)
	}
	q.login("carol")
	if code, _, errs := reenrol(); code == 0 || !strings.Contains(errs, "already used") {
		t.Errorf("a reset code worked twice: exit %d, %s", code, errs)
	}
	// Her old recovery codes went with the old authenticator.
	if code, _, errs := recover(codes[1], password); code == 0 || !strings.Contains(errs, "already used") {
		t.Errorf("a recovery code from before the reset still works: exit %d, %s", code, errs)
	}

	kinds := q.auditKinds("identity.credentials_reset")
	for _, k := range []string{"identity.recovered", "identity.recovery_failed", "identity.reset_issued", "identity.credentials_reset", "change.approval_refused"} {
		if kinds[k] == 0 {
			t.Errorf("no %s entry in the log", k)
		}
	}
}
