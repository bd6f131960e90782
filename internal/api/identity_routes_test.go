package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// allowPersons lets every person do everything: these tests are about
// authentication; the route-by-role test lives with the framework.
type allowPersons struct{}

func (allowPersons) Authorize(_ context.Context, p wire.Principal, _ string, _ api.Resource, _ map[string]any) (bool, []string, error) {
	return p.Kind == "person", nil, nil
}

type identityClient struct {
	t     *testing.T
	h     http.Handler
	e     *storetest.IdentityEnv
	key   ed25519.PrivateKey
	token string
}

func (c *identityClient) do(method, path string, in, out any, hdr ...string) (int, wire.Problem, http.Header) {
	c.t.Helper()
	var body *strings.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	} else {
		body = strings.NewReader("")
	}
	url := "https://interlock.test" + path
	req := httptest.NewRequest(method, url, body)
	req.Header.Set("Content-Type", "application/json")
	if c.key != nil {
		proof, err := dpop.NewProof(c.key, method, url, c.token, c.e.Now(), rand.Reader)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("DPoP", proof)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "DPoP "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
	} else if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code, p, rec.Header()
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jwkOf(t *testing.T, k ed25519.PrivateKey) string {
	j, err := dpop.PublicJWK(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestIdentityRoutes(t *testing.T) {
	e := storetest.NewIdentityEnv(t, storetest.OpenSQLite(t))
	proofs := dpop.NewVerifier(dpop.VerifierConfig{})
	srv, err := api.New(api.Config{Authenticator: e.Svc, Proofs: proofs, Authorizer: allowPersons{}, Now: e.Now},
		api.IdentityRoutes(e.Svc, proofs))
	if err != nil {
		t.Fatal(err)
	}
	anon := &identityClient{t: t, h: srv.Handler(), e: e}
	ctx := context.Background()

	// Bootstrap.
	code, _, _, err := e.Svc.EnsureBootstrapCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var enr wire.Enrollment
	if st, p, _ := anon.do("POST", "/v1/bootstrap", wire.BootstrapRequest{Code: code.Reveal(), Username: "admin", Password: "short"}, nil); st != 400 || p.Code != "password_too_short" {
		t.Fatalf("bootstrap with a short password = %d %+v", st, p)
	}
	if st, p, _ := anon.do("POST", "/v1/bootstrap", map[string]any{"code": code.Reveal(), "username": "admin", "password": "x", "role": "god"}, nil); st != 400 || p.Code != "unknown_field" {
		t.Fatalf("bootstrap with an unknown field = %d %+v", st, p)
	}
	if st, p, _ := anon.do("POST", "/v1/bootstrap", wire.BootstrapRequest{Code: code.Reveal(), Username: "admin", Password: storetest.IdentityTestPassword}, &enr); st != 201 {
		t.Fatalf("bootstrap = %d %+v", st, p)
	}
	if st, _, _ := anon.do("POST", "/v1/bootstrap", wire.BootstrapRequest{Code: code.Reveal(), Username: "admin2", Password: storetest.IdentityTestPassword}, nil); st < 400 || st >= 500 {
		t.Fatalf("second bootstrap = %d, want 4xx", st)
	}
	ienr := identity.Enrollment{Username: enr.Username, TOTPSecret: identity.Secret(enr.TOTPSecret)}

	// Login needs a proof made by the key it registers.
	key := newKey(t)
	login := wire.LoginRequest{Username: "admin", Password: storetest.IdentityTestPassword, OTP: e.OTP(ienr), DeviceJWK: jwkOf(t, key), DeviceName: "laptop"}
	if st, p, _ := anon.do("POST", "/v1/login", login, nil); st != 401 || p.Code != "dpop_missing" {
		t.Fatalf("login without a proof = %d %+v", st, p)
	}
	other := &identityClient{t: t, h: srv.Handler(), e: e, key: newKey(t)}
	if st, p, _ := other.do("POST", "/v1/login", login, nil); st != 400 || p.Code != "device_key_mismatch" {
		t.Fatalf("login with a proof by another key = %d %+v", st, p)
	}
	admin := &identityClient{t: t, h: srv.Handler(), e: e, key: key}
	var lr wire.LoginResponse
	if st, p, _ := admin.do("POST", "/v1/login", login, &lr); st != 200 {
		t.Fatalf("login = %d %+v", st, p)
	}
	if !strings.HasPrefix(lr.Token, "ilk_sess_") || !lr.NewDevice {
		t.Errorf("login answer = %+v", lr)
	}
	admin.token = lr.Token
	var me wire.Principal
	if st, p, _ := admin.do("GET", "/v1/whoami", nil, &me); st != 200 || me.Name != "admin" || me.DeviceID != lr.DeviceID {
		t.Fatalf("whoami = %d %+v %+v", st, p, me)
	}

	// A copied token without the device key is useless.
	thief := &identityClient{t: t, h: srv.Handler(), e: e, key: newKey(t), token: lr.Token}
	if st, p, _ := thief.do("GET", "/v1/whoami", nil, nil); st != 401 || p.Code != "device_mismatch" {
		t.Fatalf("whoami with a stolen token = %d %+v", st, p)
	}
	// A replayed proof is refused.
	url := "https://interlock.test/v1/whoami"
	proof, _ := dpop.NewProof(key, "GET", url, lr.Token, e.Now(), rand.Reader)
	replay := &identityClient{t: t, h: srv.Handler(), e: e, token: lr.Token}
	if st, _, _ := replay.do("GET", "/v1/whoami", nil, nil, "DPoP", proof); st != 200 {
		t.Fatalf("first use of a proof = %d", st)
	}
	if st, _, _ := replay.do("GET", "/v1/whoami", nil, nil, "DPoP", proof); st != 401 {
		t.Fatalf("replayed proof = %d, want 401", st)
	}

	// Invite and accept.
	var inv wire.Invitation
	if st, p, _ := admin.do("POST", "/v1/users/invitations", wire.InviteRequest{Username: "operator1", Role: "operator"}, &inv); st != 201 {
		t.Fatalf("invite = %d %+v", st, p)
	}
	if st, p, _ := admin.do("POST", "/v1/users/invitations", wire.InviteRequest{Username: "x1", Role: "root"}, nil); st != 400 || p.Code != "invalid_role" {
		t.Fatalf("invite with an unknown role = %d %+v", st, p)
	}
	var openr wire.Enrollment
	if st, p, _ := anon.do("POST", "/v1/invitations/accept", wire.AcceptRequest{Code: inv.Code, Password: storetest.IdentityTestPassword}, &openr); st != 200 || openr.TOTPURI == "" {
		t.Fatalf("accept = %d %+v", st, p)
	}
	if st, p, _ := anon.do("POST", "/v1/invitations/accept", wire.AcceptRequest{Code: inv.Code, Password: storetest.IdentityTestPassword}, nil); st != 401 || p.Code != "invitation_code_invalid" {
		t.Fatalf("second accept = %d %+v", st, p)
	}
	var users wire.UserList
	if st, _, _ := admin.do("GET", "/v1/users", nil, &users); st != 200 || len(users.Users) != 2 {
		t.Fatalf("users = %d %+v", st, users)
	}

	// The operator signs in; the admin revokes that device; its next request fails.
	e.Advance(30 * time.Second)
	okey := newKey(t)
	op := &identityClient{t: t, h: srv.Handler(), e: e, key: okey}
	oenr := identity.Enrollment{Username: "operator1", TOTPSecret: identity.Secret(openr.TOTPSecret)}
	if st, p, _ := op.do("POST", "/v1/login", wire.LoginRequest{Username: "operator1", Password: storetest.IdentityTestPassword, OTP: e.OTP(oenr), DeviceJWK: jwkOf(t, okey)}, &lr); st != 200 {
		t.Fatalf("operator login = %d %+v", st, p)
	}
	op.token = lr.Token
	var devs wire.DeviceList
	if st, _, _ := op.do("GET", "/v1/devices", nil, &devs); st != 200 || len(devs.Devices) != 1 || devs.Devices[0].ID != lr.DeviceID {
		t.Fatalf("operator's devices = %d %+v", st, devs)
	}
	if st, _, _ := admin.do("GET", "/v1/devices?all=true", nil, &devs); st != 200 || len(devs.Devices) != 2 {
		t.Fatalf("all devices = %d %+v", st, devs)
	}
	if st, p, _ := admin.do("POST", "/v1/devices/"+lr.DeviceID+"/revoke", nil, nil); st != 204 {
		t.Fatalf("revoke = %d %+v", st, p)
	}
	if st, p, _ := op.do("GET", "/v1/whoami", nil, nil); st != 401 || p.Code != "device_revoked" {
		t.Fatalf("whoami from a revoked device = %d %+v", st, p)
	}

	// Step-up MFA.
	e.Advance(30 * time.Second)
	var mr wire.MFAResponse
	if st, p, _ := admin.do("POST", "/v1/mfa", wire.MFARequest{OTP: e.OTP(ienr)}, &mr); st != 200 || !mr.MFAAt.Equal(e.Now()) {
		t.Fatalf("mfa = %d %+v %+v", st, p, mr)
	}
	if st, p, _ := admin.do("POST", "/v1/mfa", wire.MFARequest{OTP: e.OTP(ienr)}, nil); st != 403 || p.Code != "otp_wrong" {
		t.Fatalf("replayed mfa code = %d %+v", st, p)
	}

	// Disable, then logout.
	if st, p, _ := admin.do("POST", "/v1/users/operator1/disable", nil, nil); st != 204 {
		t.Fatalf("disable = %d %+v", st, p)
	}
	if st, p, _ := admin.do("POST", "/v1/users/nobody/disable", nil, nil); st != 404 {
		t.Fatalf("disable nobody = %d %+v", st, p)
	}
	if st, _, _ := admin.do("POST", "/v1/logout", nil, nil); st != 204 {
		t.Fatalf("logout = %d", st)
	}
	if st, p, _ := admin.do("GET", "/v1/whoami", nil, nil); st != 401 || p.Code != "session_ended" {
		t.Fatalf("whoami after logout = %d %+v", st, p)
	}
}

func TestLoginLockoutAnswers429(t *testing.T) {
	e := storetest.NewIdentityEnv(t, storetest.OpenSQLite(t))
	proofs := dpop.NewVerifier(dpop.VerifierConfig{})
	srv, err := api.New(api.Config{Authenticator: e.Svc, Proofs: proofs, Authorizer: allowPersons{}, Now: e.Now},
		api.IdentityRoutes(e.Svc, proofs))
	if err != nil {
		t.Fatal(err)
	}
	enr := e.Bootstrap("admin")
	key := newKey(t)
	c := &identityClient{t: t, h: srv.Handler(), e: e, key: key}
	for i := range 10 {
		st, p, _ := c.do("POST", "/v1/login", wire.LoginRequest{Username: "admin", Password: "wrong-but-long-enough", OTP: "123456", DeviceJWK: jwkOf(t, key)}, nil)
		if st != 401 || p.Code != "login_failed" {
			t.Fatalf("failure %d = %d %+v", i, st, p)
		}
	}
	st, p, hdr := c.do("POST", "/v1/login", wire.LoginRequest{Username: "admin", Password: storetest.IdentityTestPassword, OTP: e.OTP(enr), DeviceJWK: jwkOf(t, key)}, nil)
	if st != 429 || p.Code != "account_locked" || hdr.Get("Retry-After") == "" {
		t.Fatalf("11th attempt = %d %+v Retry-After %q", st, p, hdr.Get("Retry-After"))
	}
}
