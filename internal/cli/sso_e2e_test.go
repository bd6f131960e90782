package cli_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/cli"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// idpUser is a person at the in-process identity provider, with the claims
// mockoidc's default user cannot carry (amr, auth_time, another audience).
type idpUser struct {
	sub, name string
	groups    []string
	amr       []string
	authTime  time.Time
	aud       []string // replaces the token's audience when set
}

type idpClaims struct {
	*mockoidc.IDTokenClaims
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	AuthTime          int64    `json:"auth_time,omitempty"`
}

func (u idpUser) ID() string { return u.sub }

func (u idpUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.sub, "preferred_username": u.name, "groups": u.groups})
}

func (u idpUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if u.aud != nil {
		c.Audience = u.aud
	}
	out := &idpClaims{IDTokenClaims: c, PreferredUsername: u.name, Groups: u.groups, AMR: u.amr}
	if !u.authTime.IsZero() {
		out.AuthTime = u.authTime.Unix()
	}
	return out, nil
}

// ssoWorld is a control plane configured with one identity provider: a
// real OpenID Connect provider (mockoidc) on loopback.
type ssoWorld struct {
	*quickstart
	idp *mockoidc.MockOIDC
	dev *deviceGrants
	// browser is the "browser" the CLI opens: it follows the IdP's
	// redirects to the CLI's loopback listener and remembers the last URL
	// the IdP sent it to (state and code).
	mu       sync.Mutex
	callback *url.URL
}

func startSSOWorld(t *testing.T, store string) *ssoWorld {
	t.Helper()
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatalf("make the identity provider: %v", err)
	}
	dev := newDeviceGrants(t, idp)
	for _, mw := range dev.middleware() {
		if err := idp.AddMiddleware(mw); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(ln, nil); err != nil {
		t.Fatalf("start the identity provider: %v", err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	cfg := config.Config{Listen: "127.0.0.1:0", Store: store, CheckpointInterval: time.Second, SSO: []config.SSOIssuer{{
		Name: "corp", Issuer: idp.Issuer(), ClientID: idp.ClientID, ClientSecret: "secret:oidc/corp", SessionTTL: time.Hour,
		Roles: []config.SSORoleRule{
			{Claim: "groups", Value: "sre", Role: "operator"},
			{Claim: "groups", Value: "change-board", Role: "approver"},
		},
	}}}
	w := &ssoWorld{quickstart: startServerConfig(t, cfg, app.Options{}), idp: idp, dev: dev}
	prev := cli.OpenBrowser
	cli.OpenBrowser = w.openBrowser
	t.Cleanup(func() { cli.OpenBrowser = prev })
	// The first admin is a local account (break-glass), and puts the
	// client secret among Interlock's secrets, where the config names it.
	secretFile := filepath.Join(w.dir, "admin.totp")
	w.must(password+"\n", append([]string{"bootstrap", "--code", w.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, w.serverFlags()...)...)
	w.readSecret("admin", secretFile)
	w.login("admin")
	w.must(idp.ClientSecret, "--profile", "admin", "secret", "put", "oidc/corp")
	return w
}

func (w *ssoWorld) openBrowser(u string) error {
	resp, err := http.Get(u) // follows the IdP's redirect to the loopback listener
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.mu.Lock()
	w.callback = resp.Request.URL
	w.mu.Unlock()
	return nil
}

// ssoLogin signs profile in as u through the IdP and the real CLI.
func (w *ssoWorld) ssoLogin(profile string, u idpUser, extra ...string) (int, string, string) {
	w.idp.QueueUser(u)
	return w.run("", append(append([]string{"--profile", profile, "login", "--sso"}, extra...), w.serverFlags()...)...)
}

func (w *ssoWorld) whoami(profile string) wire.Principal {
	w.t.Helper()
	var p wire.Principal
	mustJSON(w.t, w.mustAs(profile, "--json", "whoami"), &p)
	return p
}

// profileKey reads a profile's device key, as a thief with the disk would.
func (w *ssoWorld) profileKey(profile string) ed25519.PrivateKey {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "config", "profiles", profile, "device.key"))
	if err != nil {
		w.t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		w.t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// rawClient calls the API directly, signing with key.
func (w *ssoWorld) rawClient(key ed25519.PrivateKey) *apiclient.Client {
	w.t.Helper()
	tlsCfg, err := pki.PinnedTLSConfig(w.ready.CAFingerprint)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := apiclient.New(apiclient.Config{Server: w.ready.URL, TLS: tlsCfg, Prove: func(method, u, token string) (string, error) {
		return dpop.NewProof(key, method, u, token, time.Now(), rand.Reader)
	}})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func TestSSO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testSSO(t, startSSOWorld(t, tc.store(t))) })
	}
}

func testSSO(t *testing.T, w *ssoWorld) {
	alice := idpUser{sub: "00u-alice", name: "alice@corp.example", groups: []string{"sre", "everyone"}}

	// A group claim mapped to a role: alice is in "sre", so she is an operator.
	code, out, errs := w.ssoLogin("alice", alice)
	if code != 0 || !strings.Contains(out, "Logged in as alice") {
		t.Fatalf("SSO login: exit %d\n%s\n%s", code, out, errs)
	}
	p := w.whoami("alice")
	if p.Name != "alice" || strings.Join(p.Roles, ",") != "operator" {
		t.Fatalf("alice after SSO login = %+v, want alice with role operator from group sre", p)
	}
	if !p.MFAAt.IsZero() {
		t.Errorf("the IdP claimed no second factor, yet the session records MFA at %s", p.MFAAt)
	}
	var prof struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	if b, err := os.ReadFile(filepath.Join(w.dir, "config", "profiles", "alice", "profile.json")); err != nil {
		t.Fatal(err)
	} else if mustJSON(t, string(b), &prof); time.Until(prof.ExpiresAt) > time.Hour+time.Minute {
		t.Errorf("alice's SSO session expires at %s, beyond the issuer's session_ttl of 1h", prof.ExpiresAt)
	}

	// The session is bound to the device key: the token copied next to
	// another key is refused.
	thief := filepath.Join(w.dir, "config", "profiles", "thief")
	if err := os.MkdirAll(thief, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ from, name string }{{"alice", "profile.json"}, {"admin", "device.key"}} {
		b, err := os.ReadFile(filepath.Join(w.dir, "config", "profiles", f.from, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(thief, f.name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errs := w.as("thief", "whoami"); code == 0 || !strings.Contains(errs, "not signed with the key of the device this session belongs to") {
		t.Errorf("alice's SSO session replayed with another device key: exit %d, %s", code, errs)
	}

	// The code that reached the loopback listener is good once, and only
	// for the key that started the sign-in.
	w.mu.Lock()
	cb := w.callback
	w.mu.Unlock()
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("the browser never reached the CLI's loopback listener with a code: %v", cb)
	}
	aliceKey := w.profileKey("alice")
	jwk, _ := dpop.PublicJWK(aliceKey.Public().(ed25519.PublicKey))
	replay := wire.SSOFinishRequest{State: cb.Query().Get("state"), Code: cb.Query().Get("code"), DeviceJWK: jwk}
	err := w.rawClient(aliceKey).Do(w.ctx, "POST", "/v1/sso/finish", replay, nil)
	if apiclient.Code(err) != "sso_code_replayed" || !strings.Contains(err.Error(), "works once") {
		t.Errorf("replayed code with the same key: %v, want sso_code_replayed", err)
	}
	otherKey := w.profileKey("admin")
	replay.DeviceJWK, _ = dpop.PublicJWK(otherKey.Public().(ed25519.PublicKey))
	err = w.rawClient(otherKey).Do(w.ctx, "POST", "/v1/sso/finish", replay, nil)
	if apiclient.Code(err) != "sso_device_mismatch" || !strings.Contains(err.Error(), "started by another device key") {
		t.Errorf("caught code finished with another key: %v, want sso_device_mismatch", err)
	}

	// Bad input to the sign-in routes: a sentence, a 4xx, nothing started.
	raw := w.rawClient(aliceKey)
	for _, bad := range []struct {
		path string
		in   any
		code string
	}{
		{"/v1/sso/start", wire.SSOStartRequest{RedirectURI: "https://evil.example/callback"}, "sso_redirect_invalid"},
		{"/v1/sso/start", wire.SSOStartRequest{RedirectURI: "http://127.0.0.1:9/cb", Issuer: "nope"}, "sso_issuer_unknown"},
		{"/v1/sso/finish", wire.SSOFinishRequest{State: "made-up", Code: "c", DeviceJWK: jwk}, "sso_state_unknown"},
		{"/v1/sso/finish", wire.SSOFinishRequest{State: replay.State, Code: "c", DeviceJWK: "{}"}, "device_key_mismatch"},
	} {
		err := raw.Do(w.ctx, "POST", bad.path, bad.in, nil)
		var ae *apiclient.Error
		if apiclient.Code(err) != bad.code || !errors.As(err, &ae) || ae.Status >= 500 || len(ae.Error()) < 20 {
			t.Errorf("POST %s %+v: %v, want a 4xx %s with a sentence", bad.path, bad.in, err, bad.code)
		}
	}

	// The same person on a second device: keyed by (issuer, subject), not
	// by name, so a renamed IdP account is still alice, and nobody else
	// becomes alice by choosing her name.
	renamed := alice
	renamed.name = "alice.smith"
	if code, out, errs := w.ssoLogin("alice-laptop", renamed); code != 0 {
		t.Fatalf("second device: exit %d\n%s\n%s", code, out, errs)
	}
	if p2 := w.whoami("alice-laptop"); p2.ID != p.ID || p2.DeviceID == p.DeviceID {
		t.Errorf("alice's second device = person %s device %s; want person %s on a new device", p2.ID, p2.DeviceID, p.ID)
	}
	mallory := idpUser{sub: "00u-mallory", name: "alice", groups: []string{"sre"}}
	if code, out, errs := w.ssoLogin("mallory", mallory); code != 0 {
		t.Fatalf("mallory: exit %d\n%s\n%s", code, out, errs)
	}
	if pm := w.whoami("mallory"); pm.ID == p.ID || pm.Name == "alice" {
		t.Errorf("another subject who calls herself alice became %+v (alice is %s)", pm, p.ID)
	}

	// Refusals: each a sentence, a 4xx, an audit entry, and nothing changed.
	before := w.userList()
	failures := func() int { return w.auditKinds("identity.sso_login")["identity.sso_login_failed"] }
	// The count to start from, once the log has integrated what came
	// before (on PostgreSQL the sequencer runs under a lease and may lag).
	nFail := failures()
	for settled := time.Now(); time.Since(settled) < 1500*time.Millisecond; time.Sleep(100 * time.Millisecond) {
		if n := failures(); n != nFail {
			nFail, settled = n, time.Now()
		}
	}
	refuse := func(what, profile string, u idpUser, want string) {
		t.Helper()
		code, _, errs := w.ssoLogin(profile, u)
		if code == 0 || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, %q; want a refusal saying %q", what, code, errs, want)
		}
		if got := w.userList(); len(got) != len(before) {
			t.Errorf("%s changed the people: %d → %d", what, len(before), len(got))
		}
		nFail++
		if deadline := time.Now().Add(10 * time.Second); true {
			for failures() < nFail && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if got := failures(); got != nFail {
			t.Errorf("%s: %d identity.sso_login_failed entries, want %d", what, got, nFail)
		}
	}
	refuse("a token for another client", "eve", idpUser{sub: "00u-eve", name: "eve", groups: []string{"sre"}, aud: []string{"some-other-app"}},
		"is for some-other-app, not for this Interlock")
	w.idp.FastForward(-time.Hour) // the IdP's clock is an hour behind: its tokens expired 50 minutes ago
	refuse("an expired token", "eve", idpUser{sub: "00u-eve", name: "eve", groups: []string{"sre"}}, "ID token expired at")
	w.idp.FastForward(time.Hour)
	refuse("no mapped group", "eve", idpUser{sub: "00u-eve", name: "eve", groups: []string{"marketing"}}, "no group that Interlock maps to a role")

	// Step-up: an approver by group whose IdP attests no second factor
	// cannot approve; signing in again with --fresh, where the IdP attests
	// one (amr mfa, auth_time now), makes the approval possible. An SSO
	// person has no Interlock TOTP to fall back on, and is told so.
	carl := idpUser{sub: "00u-carl", name: "carl", groups: []string{"change-board"}, amr: []string{"pwd"}, authTime: time.Now()} // a password only
	if code, out, errs := w.ssoLogin("carl", carl); code != 0 {
		t.Fatalf("carl: exit %d\n%s\n%s", code, out, errs)
	}
	id := changeID(t, w.mustAs("admin", "user", "disable", "alice-2"))
	if code, _, errs := w.as("carl", "change", "approve", id, "--yes"); code == 0 || !strings.Contains(errs, "second factor proved in the last 5 minutes") {
		t.Errorf("carl approved without a fresh second factor: exit %d, %s", code, errs)
	}
	if code, _, errs := w.as("carl", "change", "approve", id, "--yes", "--otp", "123456"); code == 0 || !strings.Contains(errs, "login --sso --fresh") {
		t.Errorf("carl's TOTP step-up: exit %d, %s; want the advice to sign in again with --fresh", code, errs)
	}
	carl.amr, carl.authTime = []string{"pwd", "otp"}, time.Now()
	if code, out, errs := w.ssoLogin("carl", carl, "--fresh"); code != 0 || !strings.Contains(errs, "prompt=login") {
		t.Fatalf("carl --fresh (the IdP must be asked to authenticate again): exit %d\n%s\n%s", code, out, errs)
	}
	w.mustAs("carl", "change", "approve", id, "--yes")
	// While the IdP's factor is fresh, carl enrols an Interlock authenticator
	// for later step-ups; alice, whose IdP attested none, cannot.
	if code, _, errs := w.as("alice", "user", "totp-enrol"); code == 0 || !strings.Contains(errs, "login --sso --fresh") {
		t.Errorf("totp-enrol without a fresh IdP factor: exit %d, %s", code, errs)
	}
	w.mustAs("carl", "user", "totp-enrol", "--totp-secret-out", filepath.Join(w.dir, "carl.totp"))
	w.readSecret("carl", filepath.Join(w.dir, "carl.totp"))

	// A disabled person is refused although the IdP vouches for her. Disabling
	// is a change request, which carl approves with his new authenticator.
	// bob's IdP attests a second factor (amr mfa, auth_time now): his session
	// records it.
	bob := idpUser{sub: "00u-bob", name: "bob", groups: []string{"change-board"}, amr: []string{"pwd", "mfa"}, authTime: time.Now()}
	if code, out, errs := w.ssoLogin("bob", bob); code != 0 {
		t.Fatalf("bob: exit %d\n%s\n%s", code, out, errs)
	}
	if pb := w.whoami("bob"); strings.Join(pb.Roles, ",") != "approver" || pb.MFAAt.IsZero() {
		t.Fatalf("bob = %+v, want approver with the IdP's MFA time", pb)
	}
	id = changeID(t, w.mustAs("admin", "user", "disable", "alice"))
	if code, _, errs := w.as("carl", "change", "approve", id, "--yes", "--otp", "000000"); code == 0 || !strings.Contains(errs, "one-time code is wrong") {
		t.Errorf("carl's step-up with a wrong code: exit %d, %s", code, errs)
	}
	w.mustAs("carl", "change", "approve", id, "--yes", "--otp", w.otp("carl"))
	before = w.userList()
	refuse("a disabled person", "alice", alice, "Your Interlock account is disabled")
	if code, _, errs := w.as("alice-laptop", "whoami"); code == 0 || !strings.Contains(errs, "session has ended") {
		t.Errorf("disabled alice's other session still works: exit %d, %s", code, errs)
	}

	// Local accounts stay for break-glass; an SSO person has no password.
	if code, _, _ := w.run(password+"\n", append([]string{"--profile", "pw", "login", "--user", "bob", "--password-stdin", "--otp", "123456"}, w.serverFlags()...)...); code == 0 {
		t.Errorf("an SSO person signed in with a password")
	}
}
