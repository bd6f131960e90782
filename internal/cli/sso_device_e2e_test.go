package cli_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/dpop"
)

// deviceGrants adds the device authorization grant (RFC 8628), which
// mockoidc lacks, to the in-process identity provider: a device
// authorization endpoint of its own, device_code grants at mockoidc's
// token endpoint (ID tokens signed with mockoidc's key), and the endpoint
// in its discovery document. The person "approves" while the first poll
// is answered authorization_pending, unless deny is set.
type deviceGrants struct {
	t    *testing.T
	idp  *mockoidc.MockOIDC
	srv  *httptest.Server
	mu   sync.Mutex
	next []idpUser
	byDC map[string]*deviceGrant
	deny bool
	n    int
}

type deviceGrant struct {
	user           idpUser
	approved, used bool
}

const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

func newDeviceGrants(t *testing.T, idp *mockoidc.MockOIDC) *deviceGrants {
	d := &deviceGrants{t: t, idp: idp, byDC: map[string]*deviceGrant{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.authorize))
	t.Cleanup(d.srv.Close)
	return d
}

// queue names the person of the next device sign-in.
func (d *deviceGrants) queue(u idpUser) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next = append(d.next, u)
}

func (d *deviceGrants) authorize(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if r.Method != http.MethodPost || r.Form.Get("client_id") != d.idp.ClientID {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.next) == 0 {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	d.n++
	dc := fmt.Sprintf("dc-%d", d.n)
	d.byDC[dc] = &deviceGrant{user: d.next[0]}
	d.next = d.next[1:]
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"device_code": dc, "user_code": fmt.Sprintf("WDJB-%04d", d.n),
		"verification_uri": d.srv.URL + "/activate", "expires_in": 600, "interval": 1})
}

func (d *deviceGrants) middleware() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				var doc map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
					d.t.Errorf("discovery: %v", err)
				}
				doc["device_authorization_endpoint"] = d.srv.URL + "/device"
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(doc)
			case strings.HasSuffix(r.URL.Path, "/token"):
				_ = r.ParseForm()
				if r.Form.Get("grant_type") != deviceGrantType {
					next.ServeHTTP(w, r)
					return
				}
				d.token(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}}
}

func (d *deviceGrants) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fail := func(code string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":%q}`, code)
	}
	if r.Form.Get("client_id") != d.idp.ClientID || r.Form.Get("client_secret") != d.idp.ClientSecret {
		fail("invalid_client")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.byDC[r.Form.Get("device_code")]
	switch {
	case g == nil || g.used:
		fail("invalid_grant")
		return
	case d.deny:
		fail("access_denied")
		return
	case !g.approved:
		g.approved = true // the person approves while the CLI waits
		fail("authorization_pending")
		return
	}
	g.used = true
	now := d.idp.Now()
	claims := &idpClaims{IDTokenClaims: &mockoidc.IDTokenClaims{RegisteredClaims: &jwt.RegisteredClaims{
		Audience: jwt.ClaimStrings{d.idp.ClientID}, ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		Issuer: d.idp.Issuer(), Subject: g.user.sub}}, PreferredUsername: g.user.name, Groups: g.user.groups}
	tok, err := d.idp.Keypair.SignJWT(claims)
	if err != nil {
		d.t.Errorf("sign id token: %v", err)
	}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(map[string]any{"access_token": "at-" + g.user.sub, "token_type": "Bearer", "id_token": tok, "expires_in": 600})
	_, _ = w.Write(b.Bytes())
}

// TestSSODeviceFlow: `login --sso --no-browser` signs in with the device
// authorization grant, bound to the device key like every sign-in; a
// device sign-in polled with another key, polled again after it completed,
// or denied at the IdP is refused with a sentence.
func TestSSODeviceFlow(t *testing.T) {
	w := startSSOWorld(t, "")
	w.dev.queue(idpUser{sub: "00u-dana", name: "dana", groups: []string{"sre"}})
	code, out, errs := w.run("", append([]string{"--profile", "dana", "login", "--sso", "--no-browser"}, w.serverFlags()...)...)
	if code != 0 || !strings.Contains(out, "Logged in as dana") || !strings.Contains(errs, "enter the code") || !strings.Contains(errs, "WDJB-") {
		t.Fatalf("device login: exit %d\n%s\n%s", code, out, errs)
	}
	if p := w.whoami("dana"); strings.Join(p.Roles, ",") != "operator" {
		t.Fatalf("dana after device login = %+v, want operator from group sre", p)
	}

	// The server API directly: start with one key, poll with another.
	key, other := w.profileKey("dana"), w.profileKey("admin")
	jwk := mustPublicJWK(t, key)
	w.dev.queue(idpUser{sub: "00u-dana", name: "dana", groups: []string{"sre"}})
	var st wire.SSOStartResponse
	if err := w.rawClient(key).Do(w.ctx, "POST", "/v1/sso/start", wire.SSOStartRequest{Device: true}, &st); err != nil || st.UserCode == "" {
		t.Fatalf("start a device sign-in: %v %+v", err, st)
	}
	poll := func(k ed25519.PrivateKey) error {
		return w.rawClient(k).Do(w.ctx, "POST", "/v1/sso/finish", wire.SSOFinishRequest{State: st.State, DeviceJWK: mustPublicJWK(t, k)}, nil)
	}
	if err := poll(other); apiclient.Code(err) != "sso_device_mismatch" {
		t.Errorf("a device sign-in polled with another key: %v", err)
	}
	if err := poll(key); apiclient.Code(err) != "sso_pending" || !strings.Contains(err.Error(), "waiting for you to approve") {
		t.Errorf("first poll: %v, want sso_pending", err)
	}
	var resp wire.SSOLoginResponse
	if err := w.rawClient(key).Do(w.ctx, "POST", "/v1/sso/finish", wire.SSOFinishRequest{State: st.State, DeviceJWK: jwk}, &resp); err != nil || resp.Username != "dana" {
		t.Fatalf("poll after approval: %v %+v", err, resp)
	}
	if err := poll(key); apiclient.Code(err) != "sso_code_replayed" {
		t.Errorf("a completed device sign-in polled again: %v", err)
	}

	// Denied at the IdP.
	w.dev.mu.Lock()
	w.dev.deny = true
	w.dev.mu.Unlock()
	w.dev.queue(idpUser{sub: "00u-erin", name: "erin", groups: []string{"sre"}})
	if code, _, errs := w.run("", append([]string{"--profile", "erin", "login", "--sso", "--no-browser"}, w.serverFlags()...)...); code == 0 || !strings.Contains(errs, "denied at the identity provider") {
		t.Errorf("denied device sign-in: exit %d, %s", code, errs)
	}
}

func mustPublicJWK(t *testing.T, k ed25519.PrivateKey) string {
	t.Helper()
	jwk, err := dpop.PublicJWK(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return jwk
}
