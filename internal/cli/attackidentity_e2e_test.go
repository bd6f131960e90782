package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
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
	if !strings.Contains(errs, "grant") {
		t.Errorf("refusal does not say the grant is why: %s", errs)
	}
}
