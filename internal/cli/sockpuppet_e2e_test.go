package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestSockPuppets plays issue 9's attacks through the real CLI over real
// HTTPS, on SQLite and PostgreSQL: a person who can invite makes a second
// "person" and approves their own operation, and their own KMS
// dual-control request, through it; an approver made after a request
// approves it. Each is refused with a sentence and an audit entry, and the
// request stays pending. Beside them: the single-admin warning, withdraw,
// approve failing before it spends a one-time code, abort without a
// reason, and user names beside person IDs.
func TestSockPuppets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := startServer(t, tc.store(t))
			q.setUp(10)
			runSockPuppets(t, q)
		})
	}
}

// invitePuppet makes user with role, invited by inviter, accepted and logged in
// on this machine, as the attacker would.
func (q *quickstart) invitePuppet(inviter, user, role string) {
	q.t.Helper()
	var inv wire.Invitation
	mustJSON(q.t, q.mustAs(inviter, "--json", "user", "invite", user, "--role", role), &inv)
	f := filepath.Join(q.dir, user+".totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret(user, f)
	q.login(user)
}

func (q *quickstart) runOne(user, reason string) wire.Operation {
	q.t.Helper()
	var run wire.RunResponse
	mustJSON(q.t, q.mustAs(user, "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", reason), &run)
	if run.Operation.State != "pending_approval" {
		q.t.Fatalf("operation %s is %s, want pending_approval", run.Operation.ID, run.Operation.State)
	}
	return run.Operation
}

// auditCodes returns the Data.code of every entry of kind, once the log
// holds at least want of them.
func (q *quickstart) auditCodes(kind string, want int) []string {
	q.t.Helper()
	var codes []string
	// Entries show once a checkpoint covers them: wait up to two
	// checkpoint intervals.
	for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		codes = codes[:0]
		for _, e := range q.auditEntries(kind) {
			if e.Kind == kind {
				var c string
				_ = json.Unmarshal(e.Data["code"], &c)
				codes = append(codes, c)
			}
		}
		if len(codes) >= want {
			break
		}
	}
	return codes
}

func runSockPuppets(t *testing.T, q *quickstart) {
	var users wire.UserList
	mustJSON(t, q.mustAs("admin", "--json", "user", "list"), &users)
	ids := map[string]string{}
	for _, u := range users.Users {
		ids[u.Username] = u.ID
	}

	// The quickstart path: approver1 (invited by admin) approves
	// operator1's operation. A failed approve of an unknown operation does
	// not spend the one-time code: the same code then approves.
	op1 := q.runOne("operator1", "INC-2")
	code := q.otp("approver1")
	if c, _, errs := q.as("approver1", "approve", "op_doesnotexist", "--otp", code); c == 0 || !strings.Contains(errs, "There is no operation op_doesnotexist") {
		t.Fatalf("approve of an unknown operation: exit %d, %s", c, errs)
	}
	out := q.mustAs("approver1", "approve", op1.ID, "--otp", code)
	for _, want := range []string{
		"requested by: person:" + ids["operator1"] + " (operator1)", `reason:       "INC-2"`, "wave 1 (canary):", "Guardrails:",
		"ok   ", "Approved.", "WARNING: Separation of duties rests on one person",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("approve output does not say %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "Guardrails:") > strings.Index(out, "Approved.") {
		t.Errorf("the plan was shown after the approval:\n%s", out)
	}
	if w := q.mustAs("approver1", "--json", "ops", "watch", op1.ID); !strings.Contains(w, `"succeeded"`) {
		t.Fatalf("the approved operation did not succeed:\n%s", w)
	}
	if m := q.metrics(); !strings.Contains(m, "interlock_active_admins 1\n") || !strings.Contains(m, "interlock_separation_of_duties_single_admin 1\n") {
		t.Errorf("/metrics with one admin:\n%s", grepLines(m, "admin"))
	}
	// Names beside IDs, for people.
	if s := q.mustAs("admin", "ops", "show", op1.ID); !strings.Contains(s, "person:"+ids["operator1"]+" (operator1)") ||
		!strings.Contains(s, "person:"+ids["approver1"]+" (approver1, role approver)") {
		t.Errorf("ops show does not name the people:\n%s", s)
	}
	if s := q.mustAs("admin", "log", "tail", "-n", "500"); !strings.Contains(s, "person:"+ids["operator1"]+" (operator1)") ||
		!strings.Contains(s, "person:"+ids["approver1"]+" (approver1)") {
		t.Errorf("log tail does not name the people:\n%s", s)
	}

	// Sock puppet on an operation: admin asks, invites "puppet" as an
	// approver, accepts on the same machine, and approves as puppet.
	op2 := q.runOne("admin", "puppet show")
	q.invitePuppet("admin", "puppet", "approver")
	c, _, errs := q.as("puppet", "approve", op2.ID, "--otp", q.otp("puppet"))
	if c == 0 || !strings.Contains(errs, "puppet cannot approve admin's request: admin invited puppet") || !strings.Contains(errs, "stays pending") {
		t.Fatalf("a sock puppet approving its maker's operation: exit %d, %s", c, errs)
	}
	if got := q.opState("admin", op2.ID); got.State != "pending_approval" || len(got.Approvals) != 0 {
		t.Fatalf("after the refused puppet, operation %s is %s with %d approvals", op2.ID, got.State, len(got.Approvals))
	}
	// The requester takes it back (admin may; it is their own).
	if s := q.mustAs("admin", "ops", "withdraw", op2.ID); !strings.Contains(s, "withdrawn") {
		t.Errorf("withdraw printed %q", s)
	}

	// An approver younger than the request: operator1 asks, then admin
	// (not the requester) makes approver2, who approves.
	op3 := q.runOne("operator1", "INC-3")
	q.invitePuppet("admin", "approver2", "approver")
	c, _, errs = q.as("approver2", "approve", op3.ID, "--otp", q.otp("approver2"))
	if c == 0 || !strings.Contains(errs, "approver2's account became usable at") || !strings.Contains(errs, "after the request was made") {
		t.Fatalf("an approver made after the request: exit %d, %s", c, errs)
	}
	if got := q.opState("admin", op3.ID); got.State != "pending_approval" || len(got.Approvals) != 0 {
		t.Fatalf("after the refused new approver, operation %s is %s with %d approvals", op3.ID, got.State, len(got.Approvals))
	}
	// Only the requester withdraws; abort needs a reason.
	if c, _, errs := q.as("admin", "ops", "withdraw", op3.ID); c == 0 || !strings.Contains(errs, "Only the person who requested") {
		t.Errorf("admin withdrawing operator1's operation: exit %d, %s", c, errs)
	}
	if c, _, errs := q.as("operator1", "ops", "abort", op3.ID); c == 0 || !strings.Contains(errs, "Say why you are aborting") {
		t.Errorf("abort without --reason: exit %d, %s", c, errs)
	}
	if got := q.opState("admin", op3.ID); got.State != "pending_approval" {
		t.Fatalf("refused withdraw/abort changed operation %s to %s", op3.ID, got.State)
	}
	q.mustAs("operator1", "ops", "withdraw", op3.ID, "--reason", "typo in the ticket")
	if got := q.opState("admin", op3.ID); got.State != "withdrawn" {
		t.Fatalf("withdrawn operation %s is %s", op3.ID, got.State)
	}
	if c, _, errs := q.as("operator1", "ops", "withdraw", op3.ID); c == 0 || !strings.Contains(errs, "is withdrawn") {
		t.Errorf("withdrawing twice: exit %d, %s", c, errs)
	}

	// Sock puppet on KMS dual control: admin asks to lower a key's minimum
	// decryption version, makes "kmspuppet" an admin, and approves as it.
	q.mustAs("admin", "kms", "key", "create", "payments")
	q.mustAs("admin", "kms", "key", "rotate", "payments")
	q.mustAs("admin", "kms", "key", "set-min-version", "payments", "2")
	var req wire.KMSRequest
	mustJSON(t, q.mustAs("admin", "--json", "kms", "key", "set-min-version", "payments", "1"), &req)
	if req.State != "pending" || req.Hash == "" {
		t.Fatalf("lowering the minimum version did not ask for a second person: %+v", req)
	}
	q.invitePuppet("admin", "kmspuppet", "admin")
	c, _, errs = q.as("kmspuppet", "kms", "request", "approve", req.ID, "--hash", req.Hash)
	if c == 0 || !strings.Contains(errs, "kmspuppet cannot approve admin's request: admin invited kmspuppet") || !strings.Contains(errs, "stays pending") {
		t.Fatalf("a sock puppet approving its maker's KMS request: exit %d, %s", c, errs)
	}
	var after wire.KMSRequest
	mustJSON(t, q.mustAs("admin", "--json", "kms", "request", "show", req.ID), &after)
	if after.State != "pending" || after.ApprovedBy != "" {
		t.Fatalf("after the refused puppet, request %s is %s (approved by %q)", req.ID, after.State, after.ApprovedBy)
	}
	if s := q.mustAs("admin", "kms", "request", "show", req.ID); !strings.Contains(s, "Requested by person:"+ids["admin"]+" (admin)") {
		t.Errorf("kms request show does not name the requester:\n%s", s)
	}
	var key wire.KMSKey
	mustJSON(t, q.mustAs("admin", "--json", "kms", "key", "show", "payments"), &key)
	if key.MinDecryptionVersion != 2 {
		t.Fatalf("the refused approval changed the minimum decryption version to %d", key.MinDecryptionVersion)
	}

	// Every refusal is in the log, with its reason code.
	if got := strings.Join(q.auditCodes("op.approval_refused", 2), ","); !strings.Contains(got, "approver_invited_by_requester") ||
		!strings.Contains(got, "approver_account_too_new") {
		t.Errorf("op.approval_refused codes = %s", got)
	}
	if got := strings.Join(q.auditCodes("kms.request.approval_refused", 1), ","); got != "approver_invited_by_requester" {
		t.Errorf("kms.request.approval_refused codes = %q", got)
	}
	entries := q.auditEntries("op.withdrawn")
	withdrawn := 0
	for _, e := range entries {
		if e.Kind == "op.withdrawn" {
			withdrawn++
		}
	}
	if withdrawn != 2 {
		t.Errorf("the log has %d op.withdrawn entries, want 2", withdrawn)
	}
	checkEntryLayouts(t, entries)

	// A second active admin (kmspuppet): the warning goes away.
	if m := q.metrics(); !strings.Contains(m, "interlock_active_admins 2\n") || !strings.Contains(m, "interlock_separation_of_duties_single_admin 0\n") {
		t.Errorf("/metrics with two admins:\n%s", grepLines(m, "admin"))
	}
	op4 := q.runOne("operator1", "INC-4")
	if out := q.mustAs("approver1", "approve", op4.ID, "--otp", q.otp("approver1")); !strings.Contains(out, "Approved.") || strings.Contains(out, "WARNING") {
		t.Errorf("approve with two admins:\n%s", out)
	}
}
