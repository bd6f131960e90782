package cli_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestAccessReview: the CSV lists every person's standing roles with each
// permission and its last use from the log, and flags unused ones
// (approver1 approved a change in setUp but never an operation); an
// admin confirms a line and revokes an eligibility, and the review and
// each decision are in the log.
func TestAccessReview(t *testing.T) { onBothStores(t, accessReview) }

func accessReview(t *testing.T, store string) {
	q, _ := accessServer(t, store)
	q.mustAs("admin", "grants", "eligible", "operator1", "approver")
	q.auditEntries("elevate.eligibility_set") // the log has integrated every use so far

	rows, err := csv.NewReader(strings.NewReader(q.mustAs("admin", "access", "review", "--format", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "line,person,status,role,source,permission,last_used,tracked,unused,grant_state,expires" {
		t.Fatalf("CSV header = %v", rows[0])
	}
	byLine := map[string][]string{}
	for _, r := range rows[1:] {
		byLine[r[0]] = r
	}
	if r := byLine["approver1:approver:standing:op.approve"]; r == nil || r[6] != "" || r[7] != "true" || r[8] != "true" {
		t.Errorf("approver1's never-used op.approve line = %v, want listed as unused", r)
	}
	if r := byLine["approver1:approver:standing:change.approve"]; r == nil || r[6] == "" || r[8] != "false" {
		t.Errorf("approver1's used change.approve line = %v, want a last use and not unused", r)
	}
	if r := byLine["approver1:approver:standing:op.list"]; r == nil || r[7] != "false" || r[8] != "false" {
		t.Errorf("a read-only permission line = %v, want untracked and never unused", r)
	}
	if r := byLine["approver1:approver:standing"]; r == nil || r[5] != "*" || r[8] != "false" {
		t.Errorf("approver1's role line = %v, want the whole role, used", r)
	}
	if r := byLine["operator1:approver:eligible"]; r == nil || r[8] != "true" {
		t.Errorf("operator1's eligibility line = %v, want listed and unused", r)
	}

	// A permission line cannot be revoked alone; the role line can.
	if errs := q.refused("admin", "access", "revoke", "approver1:approver:standing:op.approve"); !strings.Contains(errs, "roles are revoked whole") {
		t.Errorf("revoking one permission was not refused with a sentence: %s", errs)
	}
	if errs := q.refused("admin", "access", "revoke", "nobody:admin:standing"); !strings.Contains(errs, "no line") {
		t.Errorf("an unknown line was not refused with a sentence: %s", errs)
	}
	if errs := q.refused("admin", "access", "revoke", "approver1:approver:standing"); !strings.Contains(errs, "holds only approver") {
		t.Errorf("revoking a person's last role was not refused with a sentence: %s", errs)
	}
	if errs := q.refused("admin", "access", "revoke", "admin:admin:standing"); !strings.Contains(errs, "from yourself") {
		t.Errorf("an admin revoked their own role in a review, or was refused for another reason: %s", errs)
	}
	q.mustAs("admin", "access", "confirm", "approver1:approver:standing")
	q.mustAs("admin", "access", "revoke", "operator1:approver:eligible")
	var gl wire.GrantList
	mustJSON(t, q.mustAs("admin", "--json", "grants", "list"), &gl)
	if len(gl.Eligibility) != 0 {
		t.Errorf("after the review revoked it, eligibility = %+v", gl.Eligibility)
	}
	kinds := q.auditKinds("access.revoked")
	for _, k := range []string{"access.reviewed", "access.confirmed", "access.revoked"} {
		if kinds[k] == 0 {
			t.Errorf("the log has no %s entry", k)
		}
	}
	checkEntryLayouts(t, q.auditEntries("access.revoked"))
}
