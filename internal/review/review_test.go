package review

import (
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/identity"
)

// TestBuild: a standing role's line counts only the permissions it adds
// to viewer's (reading is not operating), a grant's lines count only its
// own decisions, an eligibility counts its person's grants of that role,
// and never-used or stale permissions are unused.
func TestBuild(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	g := elevate.Grant{ID: "gr_1", PersonID: "p1", Role: "approver", State: elevate.StateActive, StartsAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
	in := Inputs{
		People:   []identity.User{{ID: "p1", Username: "olga", Roles: []string{"operator"}, Status: identity.StatusActive}},
		Eligible: []elevate.Eligibility{{PersonID: "p1", Role: "approver"}},
		Grants:   []elevate.Grant{g},
		LastUse: map[string]map[string]time.Time{
			"p1":         {"op.list": now.Add(-time.Hour), "op.halt": now.AddDate(0, 0, -200), "op.approve": now.Add(-time.Minute)},
			"grant:1":    {"op.approve": now}, // another grant's id: must not count
			"grant:gr_1": {"op.approve": now.Add(-time.Minute)},
		},
		RoleActions: map[string][]string{
			"viewer":   {"op.list"},
			"operator": {"op.list", "op.run", "op.halt"},
			"approver": {"op.list", "op.approve"},
		},
		Now: now, UnusedDays: 90,
	}
	r := Build(in)
	lines := map[string]Line{}
	for _, l := range r.Lines {
		lines[l.ID] = l
	}
	for id, wantUnused := range map[string]bool{
		"olga:operator:standing":         true,  // op.list is viewer's; op.halt is 200 days old; op.run never
		"olga:operator:standing:op.list": false, // a read: not tracked, never unused
		"olga:operator:standing:op.run":  true,
		"olga:operator:standing:op.halt": true,
		"olga:approver:grant:gr_1":       false, // the grant approved a minute ago
		"olga:approver:eligible":         false, // through its grant
	} {
		l, ok := lines[id]
		if !ok {
			t.Errorf("no line %s in %v", id, r.Lines)
			continue
		}
		if l.Unused != wantUnused {
			t.Errorf("line %s unused = %v, want %v", id, l.Unused, wantUnused)
		}
	}
	csv := string(r.CSV())
	if !strings.HasPrefix(csv, strings.Join(CSVHeader, ",")+"\n") || !strings.Contains(csv, "olga:operator:standing:op.run,olga,active,operator,standing,op.run,,true,true,,") {
		t.Errorf("CSV:\n%s", csv)
	}
}
