package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakeStore is an in-memory Store; a transaction works on a copy that
// replaces the original only when fn succeeds.
type fakeStore struct {
	versions []StoredPolicy
	audit    []audit.Record
	failNext error
}

type fakeTx struct{ s *fakeStore }

func (s *fakeStore) LatestPolicy(ctx context.Context) (StoredPolicy, bool, error) {
	if len(s.versions) == 0 {
		return StoredPolicy{}, false, nil
	}
	return s.versions[len(s.versions)-1], true, nil
}

func (s *fakeStore) InTx(ctx context.Context, fn func(Tx) error) error {
	work := &fakeStore{versions: slices.Clone(s.versions), audit: slices.Clone(s.audit)}
	if err := fn(fakeTx{work}); err != nil {
		return err
	}
	if s.failNext != nil {
		err := s.failNext
		s.failNext = nil
		return err
	}
	s.versions, s.audit = work.versions, work.audit
	return nil
}

func (t fakeTx) InsertAuditRecord(ctx context.Context, r audit.Record) error {
	t.s.audit = append(t.s.audit, r)
	return nil
}

func (t fakeTx) LatestPolicyVersion(ctx context.Context) (int, string, error) {
	p, ok, _ := t.s.LatestPolicy(ctx)
	if !ok {
		return 0, "", nil
	}
	return p.Version, p.Hash, nil
}

func (t fakeTx) InsertPolicyVersion(ctx context.Context, p StoredPolicy) error {
	for _, v := range t.s.versions {
		if v.Version == p.Version {
			return ErrVersionTaken
		}
	}
	t.s.versions = append(t.s.versions, p)
	return nil
}

var rootAdmin = wire.Principal{Kind: "person", ID: "p-root", Name: "root", Roles: []string{"admin"}, MFAAt: testNow}

func newTestService(t *testing.T) (*Service, *Engine, *fakeStore) {
	t.Helper()
	st := &fakeStore{}
	e := newTestEngine(t)
	s, err := New(Config{Store: st, Engine: e, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return s, e, st
}

const viewerSecrets = "\n@id(\"viewer.secrets\")\npermit (principal in Role::\"viewer\", action == Action::\"secret.list\", resource);\n"

func TestServiceGetBeforeAnyApply(t *testing.T) {
	s, _, _ := newTestService(t)
	got, err := s.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Current{Text: DefaultText, Version: 0, Hash: Hash(DefaultText)}, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
}

func TestServiceApply(t *testing.T) {
	ctx := context.Background()
	s, e, st := newTestService(t)
	text := DefaultText + viewerSecrets
	v, err := s.Apply(ctx, rootAdmin, text)
	if err != nil || v != 1 {
		t.Fatalf("Apply = %d, %v; want 1", v, err)
	}
	if ev, eh := e.Version(); ev != 1 || eh != Hash(text) {
		t.Errorf("engine version = %d %s, want 1 %s", ev, eh, Hash(text))
	}
	viewer := wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}}
	if d := e.Decide(ctx, Request{Principal: viewer, Action: ActionSecretList}); !d.Allow {
		t.Errorf("viewer secret.list after Apply = %+v, want allow", d)
	}
	want := []audit.Record{{Kind: "policy.applied", Version: 1, Actor: "person:p-root", Subject: "policy:1", Time: testNow.UTC(),
		Data: []byte(`{"hash":"` + Hash(text) + `","policy_ids":["viewer.read","person.own-passkeys","operator.operate","approver.decide","admin.all","agent.protocol","agent.nothing-else","mfa.fresh-for-approval","mfa.fresh-for-credentials","approvals.baseline","approvals.low-risk-read-only","operator.withdraw","elevate.ask","elevate.decide","mfa.fresh-for-elevation","approvals.elevation","approvals.elevation-admin","viewer.secrets"],"previous_version":0,"version":1}`),
	}}
	// Compare what this package decides; the rest belongs to internal/audit.
	var gotAudit []audit.Record
	for _, r := range st.audit {
		gotAudit = append(gotAudit, audit.Record{Kind: r.Kind, Version: r.Version, Actor: r.Actor, Subject: r.Subject, Time: r.Time, Data: r.Data})
	}
	if diff := cmp.Diff(want, gotAudit); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// The same text again stores nothing.
	if v, err := s.Apply(ctx, rootAdmin, text); err != nil || v != 1 {
		t.Errorf("re-Apply of the text in force = %d, %v; want 1, nil", v, err)
	}
	if len(st.versions) != 1 || len(st.audit) != 1 {
		t.Errorf("re-Apply stored %d versions and %d audit entries, want 1 and 1", len(st.versions), len(st.audit))
	}

	// Back to the default: version 2.
	if v, err := s.Apply(ctx, rootAdmin, DefaultText); err != nil || v != 2 {
		t.Errorf("Apply default = %d, %v; want 2", v, err)
	}
	if d := e.Decide(ctx, Request{Principal: viewer, Action: ActionSecretList}); d.Allow {
		t.Errorf("viewer secret.list after reverting = %+v, want deny", d)
	}
}

func TestServiceApplyRefusalsChangeNothing(t *testing.T) {
	for _, tt := range []struct {
		name, text, code, msg string
	}{
		{"syntax", DefaultText + "\n@id(\"x\")\npermit (principal, action, resource", "policy_syntax", "line"},
		{"lockout", `@id("viewers") permit (principal in Role::"viewer", action == Action::"whoami", resource);`, "policy_lockout", "could not apply policy again"},
		{"lockout by forbid", DefaultText + "\n@id(\"no-policy\")\nforbid (principal, action == Action::\"policy.apply\", resource);\n", "policy_lockout", "role admin"},
		{"unknown action", DefaultText + "\n@id(\"x\")\npermit (principal, action == Action::\"op.explode\", resource);\n", "policy_action_unknown", "op.explode"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, e, st := newTestService(t)
			_, h0 := e.Version()
			_, err := s.Apply(context.Background(), rootAdmin, tt.text)
			ue, ok := usererr.As(err)
			if !ok || ue.Kind != usererr.Invalid || ue.Code != tt.code || !strings.Contains(ue.Msg, tt.msg) {
				t.Fatalf("Apply = %v, want usererr Invalid %s containing %q", err, tt.code, tt.msg)
			}
			if _, h := e.Version(); h != h0 || len(st.versions) != 0 || len(st.audit) != 0 {
				t.Errorf("refused Apply changed state: engine %s (was %s), %d versions, %d audit", h, h0, len(st.versions), len(st.audit))
			}
		})
	}
}

func TestServiceApplyFailedCommitKeepsEngine(t *testing.T) {
	s, e, st := newTestService(t)
	st.failNext = errors.New("disk full")
	if _, err := s.Apply(context.Background(), rootAdmin, DefaultText+viewerSecrets); err == nil {
		t.Fatal("Apply succeeded though the commit failed")
	}
	if v, h := e.Version(); v != 0 || h != Hash(DefaultText) {
		t.Errorf("engine after failed commit = %d %s, want the default", v, h)
	}
}

func TestServiceSyncLoadsAnotherServersVersion(t *testing.T) {
	s, e, st := newTestService(t)
	text := DefaultText + viewerSecrets
	st.versions = append(st.versions, StoredPolicy{Version: 5, Text: text, Hash: Hash(text), Author: "person:x", CreatedAt: testNow})
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, h := e.Version(); v != 5 || h != Hash(text) {
		t.Errorf("engine after Sync = %d %s, want 5 %s", v, h, Hash(text))
	}
}

func TestServiceTest(t *testing.T) {
	s, e, st := newTestService(t)
	viewer := wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}}
	cases := []TestCase{
		{Name: "viewer lists secrets", Principal: viewer, Action: ActionSecretList, Want: "allow", WantReasons: []string{"viewer.secrets"}},
		{Name: "viewer reads a secret", Principal: viewer, Action: ActionSecretGet, Resource: Resource{Type: ResourceSecret, ID: "db"}, Want: "allow"},
		{Name: "approver with fresh MFA", Principal: wire.Principal{ID: "ann", Roles: []string{"approver"}}, Action: ActionOpApprove,
			Context: map[string]any{"mfa_age_s": float64(10)}, Want: "allow"},
		{Name: "approvals", Principal: wire.Principal{ID: "o", Roles: []string{"operator"}}, Action: ActionOpRun,
			Context: map[string]any{"risk": "low", "removes_capacity": false}, WantApprovals: &Requirement{Count: 0}},
	}
	got, err := s.Test(context.Background(), DefaultText+viewerSecrets, cases)
	if err != nil {
		t.Fatal(err)
	}
	var pass []bool
	for _, r := range got {
		pass = append(pass, r.Pass)
	}
	if diff := cmp.Diff([]bool{true, false, true, true}, pass); diff != "" {
		t.Errorf("Test passes (-want +got):\n%s\n%+v", diff, got)
	}
	if want := "want allow, got deny (reasons [], errors [])"; len(got[1].Failures) != 1 || got[1].Failures[0] != want {
		t.Errorf("failure of case 2 = %q, want %q", got[1].Failures, want)
	}
	// Testing applied nothing.
	if v, h := e.Version(); v != 0 || h != Hash(DefaultText) || len(st.versions) != 0 {
		t.Errorf("Test changed the policy in force: %d %s, %d stored", v, h, len(st.versions))
	}
	// Empty text tests the policy in force.
	got, err = s.Test(context.Background(), "", cases[:1])
	if err != nil || got[0].Pass {
		t.Errorf("Test of the policy in force = %+v, %v; want the case to fail", got, err)
	}
	for _, bad := range []TestCase{
		{Name: "bad action", Principal: viewer, Action: "op.nope"},
		{Name: "bad want", Principal: viewer, Action: ActionWhoami, Want: "maybe"},
		{Name: "bad kind", Principal: wire.Principal{Kind: "robot", ID: "r"}, Action: ActionWhoami},
		{Name: "bad resource", Principal: viewer, Action: ActionWhoami, Resource: Resource{Type: "Server"}},
		{Name: "bad mfa", Principal: viewer, Action: ActionWhoami, Context: map[string]any{"mfa_age_s": "recent"}},
	} {
		if _, err := s.Test(context.Background(), "", []TestCase{bad}); err == nil {
			t.Errorf("Test with case %q succeeded, want an error", bad.Name)
		} else if ue, ok := usererr.As(err); !ok || ue.Kind != usererr.Invalid || !strings.Contains(ue.Msg, bad.Name) {
			t.Errorf("Test with case %q = %v, want a usererr.Invalid naming the case", bad.Name, err)
		}
	}
}
