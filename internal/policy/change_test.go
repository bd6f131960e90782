package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// A policy under which nobody could approve a change request could never be
// replaced (every policy change is a request), so Prepare refuses it.
func TestPrepareRefusesUnapprovableChanges(t *testing.T) {
	s := &Service{now: func() time.Time { return testNow }}
	text := DefaultText + `
@id("no.changes")
forbid (principal, action == Action::"change.approve", resource);
`
	_, err := s.Prepare(text)
	if ue, ok := usererr.As(err); !ok || ue.Code != "policy_lockout" || !strings.Contains(ue.Msg, "change.approve") {
		t.Fatalf("Prepare = %v, want a policy_lockout refusal naming change.approve", err)
	}
	if _, err := s.Prepare(DefaultText); err != nil {
		t.Fatalf("Prepare(default) = %v", err)
	}
}
