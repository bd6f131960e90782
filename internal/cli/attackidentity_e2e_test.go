package cli_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/policy"
)

// TestElevatedPuppetCannotApprove: the one local admin also has an account
// at the identity provider (mal, an operator by group: no invitation links
// it to admin). Admin makes mal eligible for admin and approves mal's grant
// (both allowed). Elevated, mal must still not approve admin's own policy
// change: the role mal would approve with came from admin, as surely as
// one admin had granted it standing.
func TestElevatedPuppetCannotApprove(t *testing.T) {
	w := startSSOWorld(t, "")
	mal := idpUser{sub: "00u-mal", name: "mal", groups: []string{"sre"}, amr: []string{"pwd", "mfa"}, authTime: time.Now()}
	if code, out, errs := w.ssoLogin("mal", mal); code != 0 {
		t.Fatalf("mal: exit %d\n%s\n%s", code, out, errs)
	}
	w.mustAs("admin", "grants", "eligible", "mal", "admin")
	var g wire.Grant
	mustJSON(t, w.mustAs("mal", "--json", "elevate", "--role", "admin", "--for", "1h", "--reason", "INC-1"), &g)
	mustJSON(t, w.mustAs("admin", "--json", "grants", "approve", g.ID, "--otp", w.otp("admin")), &g)
	if g.State != "active" {
		t.Fatalf("mal's grant = %+v, want active", g)
	}
	loose := strings.Replace(policy.DefaultText, "@id(\"approvals.baseline\")\n@approvals(\"1\")", "@id(\"approvals.baseline\")\n@approvals(\"0\")", 1)
	f := filepath.Join(w.dir, "loose.cedar")
	if err := os.WriteFile(f, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	cr := changeID(t, w.mustAs("admin", "policy", "apply", "-f", f))
	code, out, errs := w.as("mal", "change", "approve", cr, "--yes")
	if code == 0 {
		t.Fatalf("mal, elevated to admin by admin's own approval, approved admin's policy change:\n%s", out)
	}
	if !strings.Contains(errs, "which the requester approved") {
		t.Errorf("refusal does not say the grant is why: %s", errs)
	}

	// The same with the grant approved by someone else (bob, an approver by
	// group): admin still made mal2 eligible, so mal2's granted role is
	// still owed to admin.
	bob := idpUser{sub: "00u-bob", name: "bob", groups: []string{"change-board"}, amr: []string{"pwd", "mfa"}, authTime: time.Now()}
	mal2 := idpUser{sub: "00u-mal2", name: "mal2", groups: []string{"sre"}, amr: []string{"pwd", "mfa"}, authTime: time.Now()}
	for _, u := range []struct {
		profile string
		u       idpUser
	}{{"bob", bob}, {"mal2", mal2}} {
		if code, out, errs := w.ssoLogin(u.profile, u.u); code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", u.profile, code, out, errs)
		}
	}
	w.mustAs("admin", "grants", "eligible", "mal2", "approver")
	mustJSON(t, w.mustAs("mal2", "--json", "elevate", "--role", "approver", "--for", "1h", "--reason", "INC-2"), &g)
	mustJSON(t, w.mustAs("bob", "--json", "grants", "approve", g.ID), &g)
	if g.State != "active" {
		t.Fatalf("mal2's grant = %+v, want active", g)
	}
	cr = changeID(t, w.mustAs("admin", "policy", "apply", "-f", f))
	if code, out, errs := w.as("mal2", "change", "approve", cr, "--yes"); code == 0 || !strings.Contains(errs, "made you eligible") {
		t.Fatalf("mal2, made eligible by admin, approved admin's policy change: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestResetCodeCollectedOnce: one approval of a reset is one reset code,
// even when its requester collects it many times at once. A second code
// would be a way back into the account after its owner re-enrolled.
func TestResetCodeCollectedOnce(t *testing.T) {
	onBothStores(t, testResetCodeCollectedOnce)
}

func testResetCodeCollectedOnce(t *testing.T, store string) {
	q := startServer(t, store)
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	q.enrol("admin", "carol", "operator")
	var invs []wire.Invitation
	for _, u := range []string{"admin2", "admin3"} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", u, "--role", "admin"), &inv)
		invs = append(invs, inv)
	}
	for _, inv := range invs {
		f := filepath.Join(q.dir, inv.Username+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(inv.Username, f)
		q.login(inv.Username)
	}
	id := changeID(t, q.mustAs("admin2", "user", "reset", "carol", "--totp"))
	q.mustAs("admin3", "change", "approve", id, "--yes")

	const n = 8
	var wg sync.WaitGroup
	outs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, outs[i], _ = q.as("admin2", "change", "apply", id)
		}()
	}
	wg.Wait()
	codes := map[string]bool{}
	for _, o := range outs {
		if c := resetCodeRE.FindString(o); c != "" {
			codes[c] = true
		}
	}
	if len(codes) != 1 {
		t.Fatalf("one approved reset handed out %d reset codes to %d simultaneous collections, want exactly 1", len(codes), n)
	}
}

// profileClient calls the API directly as user, with their profile's
// session token and device key (as a script of theirs would).
func (q *quickstart) profileClient(user string) *apiclient.Client {
	q.t.Helper()
	dir := filepath.Join(q.dir, "config", "profiles", user)
	b, err := os.ReadFile(filepath.Join(dir, "profile.json"))
	if err != nil {
		q.t.Fatal(err)
	}
	var prof struct {
		Token string `json:"token"`
	}
	mustJSON(q.t, string(b), &prof)
	kb, err := os.ReadFile(filepath.Join(dir, "device.key"))
	if err != nil {
		q.t.Fatal(err)
	}
	blk, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		q.t.Fatal(err)
	}
	tlsCfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		q.t.Fatal(err)
	}
	c, err := apiclient.New(apiclient.Config{Server: q.ready.URL, TLS: tlsCfg, Token: prof.Token, Prove: func(method, u, token string) (string, error) {
		return dpop.NewProof(k.(ed25519.PrivateKey), method, u, token, time.Now(), rand.Reader)
	}})
	if err != nil {
		q.t.Fatal(err)
	}
	return c
}

// TestGrantDurationOverflow: a duration in seconds so large that it wraps
// around in nanoseconds is refused as out of range, not granted as the
// minute it wraps to.
func TestGrantDurationOverflow(t *testing.T) {
	q, _ := accessServer(t, "")
	q.mustAs("admin", "grants", "eligible", "operator1", "approver")
	c := q.profileClient("operator1")
	for _, s := range []int64{18446744134, 1 << 62, -1 << 63, 0, 43201} {
		var g wire.Grant
		err := c.Do(q.ctx, "POST", "/v1/grants", wire.GrantRequest{Role: "approver", DurationS: s, Reason: "INC-1"}, &g)
		if apiclient.Code(err) != "invalid_duration" {
			t.Errorf("duration_s %d: %v (grant %+v), want invalid_duration", s, err, g)
		}
	}
	var gl wire.GrantList
	mustJSON(t, q.mustAs("operator1", "--json", "grants", "list"), &gl)
	if len(gl.Grants) != 0 {
		t.Errorf("refused requests left grants: %+v", gl.Grants)
	}
}

// TestTrainingNotSelfRecorded: a policy may ask for a current course
// before an operation; the person it gates must not be able to satisfy it
// alone by recording the course for themselves, one at a time or in a
// CSV import (which then records nothing).
func TestTrainingNotSelfRecorded(t *testing.T) {
	q, _ := accessServer(t, "")
	if errs := q.refused("admin", "training", "record", "admin", "production-change", "--expires", "never"); !strings.Contains(errs, "your own training") {
		t.Errorf("admin recorded their own training, or was refused for another reason: %s", errs)
	}
	csv := filepath.Join(q.dir, "self.csv")
	if err := os.WriteFile(csv, []byte("username,course,completed,expires\noperator1,production-change,2026-01-01,\nadmin,production-change,2026-01-01,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := q.refused("admin", "training", "import", csv); !strings.Contains(errs, "Line 3") || !strings.Contains(errs, "your own training") {
		t.Errorf("an import with admin's own row: %s", errs)
	}
	var list wire.TrainingList
	mustJSON(t, q.mustAs("admin", "--json", "training", "list"), &list)
	if len(list.Records) != 0 {
		t.Fatalf("refused recordings left records: %+v", list.Records)
	}
	q.mustAs("admin", "training", "record", "operator1", "production-change", "--expires", "never")
}

// TestEnableDoesNotReviveGrant: operator1 holds approver through a grant
// when two admins disable them. Enabling a disabled approver is a change
// request once two admins exist; enabling operator1, whose approver power
// would come back with the grant, must be one too, not one admin's act.
func TestEnableDoesNotReviveGrant(t *testing.T) {
	q, _ := accessServer(t, "")
	q.mustAs("admin", "grants", "eligible", "operator1", "approver")
	var g wire.Grant
	mustJSON(t, q.mustAs("operator1", "--json", "elevate", "--role", "approver", "--for", "12h", "--reason", "INC-3"), &g)
	q.mustAs("approver1", "grants", "approve", g.ID, "--otp", q.otp("approver1"))
	q.invite("admin2", "admin")
	q.mustAs("approver1", "change", "approve", changeID(t, q.mustAs("admin2", "user", "disable", "operator1")), "--yes", "--otp", q.otp("approver1"))
	code, out, errs := q.as("admin", "user", "enable", "operator1")
	if code != 0 {
		t.Fatalf("enable: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "change request") {
		q.login("operator1")
		t.Fatalf("one admin enabled operator1 at once, and the grant gives them approver again:\n%s\n%s", out, q.mustAs("operator1", "--json", "whoami"))
	}
	if !strings.Contains(out, "approver") {
		t.Errorf("the change request does not say that operator1 would hold approver again:\n%s", out)
	}
}

// TestResetAccountCannotApproveForResetter: admin2 asks to reset admin3's
// password and authenticator, admin4 approves in good faith, admin2
// collects the code and re-enrols admin3's account themselves. admin3's
// account, now admin2's, must not approve admin2's own policy change.
func TestResetAccountCannotApproveForResetter(t *testing.T) {
	onBothStores(t, testResetAccountCannotApproveForResetter)
}

func testResetAccountCannotApproveForResetter(t *testing.T, store string) {
	q := startServer(t, store)
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	var invs []wire.Invitation
	for _, u := range []string{"admin2", "admin3", "admin4"} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", u, "--role", "admin"), &inv)
		invs = append(invs, inv)
	}
	for _, inv := range invs {
		f := filepath.Join(q.dir, inv.Username+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(inv.Username, f)
		q.login(inv.Username)
	}
	id := changeID(t, q.mustAs("admin2", "user", "reset", "admin3", "--both"))
	q.mustAs("admin4", "change", "approve", id, "--yes", "--otp", q.otp("admin4"))
	code := resetCodeRE.FindString(q.mustAs("admin2", "change", "apply", id))
	if code == "" {
		t.Fatal("no reset code collected")
	}
	f := filepath.Join(q.dir, "admin3-new.totp")
	q.must(password+"\n", append([]string{"user", "reenrol", "--code", code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.newSecret("admin3", f)
	q.login("admin3") // admin2, in admin3's account

	loose := strings.Replace(policy.DefaultText, "@id(\"approvals.baseline\")\n@approvals(\"1\")", "@id(\"approvals.baseline\")\n@approvals(\"0\")", 1)
	pf := filepath.Join(q.dir, "loose.cedar")
	if err := os.WriteFile(pf, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	cr := changeID(t, q.mustAs("admin2", "policy", "apply", "-f", pf))
	if c, out, errs := q.as("admin3", "change", "approve", cr, "--yes", "--otp", q.otp("admin3")); c == 0 || !strings.Contains(errs, "collected its code") {
		t.Fatalf("the account admin2 re-enrolled approved admin2's policy change: exit %d\n%s\n%s", c, out, errs)
	}
	// The other way round too: admin2 does not approve a request from the
	// account whose code they collected.
	cr = changeID(t, q.mustAs("admin3", "policy", "apply", "-f", pf))
	if c, out, errs := q.as("admin2", "change", "approve", cr, "--yes", "--otp", q.otp("admin2")); c == 0 || !strings.Contains(errs, "collected its code") {
		t.Fatalf("admin2 approved a request of the account they re-enrolled: exit %d\n%s\n%s", c, out, errs)
	}
}

// TestGrantAfterRequestCannotApprove: viewer2 owes nothing to operator1,
// but is elevated to approver only after operator1's operation was
// requested: a role made after a request does not approve it, whether
// standing or granted.
func TestGrantAfterRequestCannotApprove(t *testing.T) {
	q, _ := accessServer(t, "")
	q.invite("viewer2", "viewer")
	op := q.runOne("operator1", "INC-4")
	q.mustAs("admin", "grants", "eligible", "viewer2", "approver")
	var g wire.Grant
	mustJSON(t, q.mustAs("viewer2", "--json", "elevate", "--role", "approver", "--for", "1h", "--reason", "INC-4"), &g)
	q.mustAs("approver1", "grants", "approve", g.ID, "--otp", q.otp("approver1"))
	if c, out, errs := q.as("viewer2", "approve", op.ID, "--otp", q.otp("viewer2")); c == 0 || !strings.Contains(errs, "after the request was made") {
		t.Fatalf("viewer2, elevated after the request, approved it: exit %d\n%s\n%s", c, out, errs)
	}
	q.mustAs("approver1", "deny", op.ID, "--reason", "test only")
	op2 := q.runOne("operator1", "INC-5") // asked while viewer2's grant is in force
	q.mustAs("viewer2", "approve", op2.ID, "--otp", q.otp("viewer2"))
}

// TestRecoveryCodesLockOut: someone who has carol's password guesses her
// recovery codes; after the sign-in lockout's failures even a right code
// is refused, with the lockout named, until the window passes.
func TestRecoveryCodesLockOut(t *testing.T) {
	q := startServer(t, "")
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	codes := q.enrol("admin", "carol", "operator")
	recoverWith := func(code string) (int, string) {
		c, _, errs := q.run(password+"\n", append([]string{"user", "recover", "--user", "carol", "--recovery-code", code, "--password-stdin",
			"--totp-secret-out", filepath.Join(q.dir, "carol-new.totp")}, q.serverFlags()...)...)
		return c, errs
	}
	for i := range 10 {
		if c, errs := recoverWith("ilk_rc_aaaa-bbbb-cccc-" + string(rune('a'+i)) + "ddd"); c == 0 {
			t.Fatalf("guess %d recovered carol's account: %s", i, errs)
		}
	}
	if c, errs := recoverWith(codes[0]); c == 0 || !strings.Contains(strings.ToLower(errs), "locked") {
		t.Fatalf("after 10 wrong recovery codes a right one: exit %d, %s; want the lockout", c, errs)
	}
}
