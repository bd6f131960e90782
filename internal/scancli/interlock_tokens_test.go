package scancli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/witness"
)

// interlockSecrets makes one of each secret Interlock itself emits, through
// the code paths that make them for real: the identity service's bootstrap,
// invitation and session tokens, the ops manager's join tokens (twenty, as
// the quickstart's `tokens` file has), the KMS root key's text form and a
// witness key file's text. It returns them by the rule that must find them.
func interlockSecrets(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	idn := storetest.NewIdentityEnv(t, db)
	boot, _, ok, err := idn.Svc.EnsureBootstrapCode(ctx)
	if err != nil || !ok {
		t.Fatalf("EnsureBootstrapCode = %v, %v", ok, err)
	}
	enr, err := idn.Svc.Bootstrap(ctx, boot.Reveal(), "admin", storetest.IdentityTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	sess, admin := idn.Login(enr, storetest.NewIdentityDevice(t))
	inv, err := idn.Svc.Invite(ctx, admin, "operator1", "operator")
	if err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	engine, err := policy.NewEngine(policy.EngineConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ops.New(ops.Config{Store: db.OpsStore(), Policy: engine, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	opsAdmin := wire.Principal{Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}}
	var joins []string
	for range 20 {
		tok, err := m.CreateJoinToken(ctx, opsAdmin, []string{"index", "billing"}, map[string]string{"zone": "a"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		joins = append(joins, tok.Reveal())
	}
	root, err := kms.NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The witness key file is written by `interlock log witness --init`
	// (internal/cli, which this package may not import): KeyPrefix and the
	// base64url Ed25519 seed.
	seed := make([]byte, 32)
	rand.Read(seed)
	wkey := witness.KeyPrefix + base64.RawURLEncoding.EncodeToString(seed)

	return map[string][]string{
		"interlock-bootstrap-code":  {boot.Reveal()},
		"interlock-session-token":   {sess.Token.Reveal()},
		"interlock-invitation-code": {inv.Code.Reveal()},
		"interlock-join-token":      joins,
		"interlock-root-key":        {root.Text()},
		"interlock-witness-key":     {wkey},
	}
}

// TestScanFindsInterlockSecrets writes real Interlock secrets into the
// files where people leave them (the quickstart's `tokens` file, a shell
// history, an env file, YAML) and checks that `interlock scan` finds every
// one under its own rule and fails the scan.
func TestScanFindsInterlockSecrets(t *testing.T) {
	secrets := interlockSecrets(t)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The quickstart: join-token create --count 20 > tokens.
	write("tokens", strings.Join(secrets["interlock-join-token"], "\n")+"\n")
	write(".bash_history", "interlock bootstrap --code "+secrets["interlock-bootstrap-code"][0]+"\n"+
		"curl -H 'Authorization: DPoP "+secrets["interlock-session-token"][0]+"' https://ilk.example/v1/me\n")
	write("invite.txt", "Your code: "+secrets["interlock-invitation-code"][0]+".\n")
	write("server.env", "INTERLOCK_ROOT_KEY="+secrets["interlock-root-key"][0]+"\n")
	write("witness.key", secrets["interlock-witness-key"][0]+"\n")

	out, stderr, code := runCmd(t, "", dir, "--format", "json", "--kinds", "secret")
	if code != ExitFindings {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitFindings, stderr)
	}
	var rep struct {
		Findings []struct {
			RuleID      string `json:"rule_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for rule, toks := range secrets {
		for _, tok := range toks {
			fp := scan.Fingerprint(tok)
			if !slices.ContainsFunc(rep.Findings, func(f struct {
				RuleID      string `json:"rule_id"`
				Fingerprint string `json:"fingerprint"`
			}) bool {
				return f.RuleID == rule && f.Fingerprint == fp
			}) {
				t.Errorf("%s %s…: not found by %s", rule, tok[:14], rule)
			}
		}
	}
	if strings.Contains(out, secrets["interlock-root-key"][0]) {
		t.Error("the report carries a secret in plaintext")
	}
}
