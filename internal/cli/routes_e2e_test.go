package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/policy"
)

// signedClient sends raw requests as a saved CLI profile: its session
// token with a fresh DPoP proof from its device key.
type signedClient struct {
	http  *http.Client
	token string
	key   ed25519.PrivateKey
}

func (q *quickstart) signedClient(user string) *signedClient {
	q.t.Helper()
	dir := filepath.Join(os.Getenv("INTERLOCK_CONFIG_DIR"), "profiles", user)
	var p struct{ Token string }
	b, err := os.ReadFile(filepath.Join(dir, "profile.json"))
	if err != nil {
		q.t.Fatal(err)
	}
	mustJSON(q.t, string(b), &p)
	kb, err := os.ReadFile(filepath.Join(dir, "device.key"))
	if err != nil {
		q.t.Fatal(err)
	}
	blk, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		q.t.Fatal(err)
	}
	return &signedClient{http: q.httpClient(), token: p.Token, key: k.(ed25519.PrivateKey)}
}

func (q *quickstart) httpClient() *http.Client {
	q.t.Helper()
	tlsCfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		q.t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}
}

// do sends method url; sc == nil sends no credentials at all.
func do(t *testing.T, hc *http.Client, sc *signedClient, method, url string) (int, wire.Problem) {
	t.Helper()
	var body *strings.Reader = strings.NewReader("{}")
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sc != nil {
		proof, err := dpop.NewProof(sc.key, method, strings.SplitN(url, "?", 2)[0], sc.token, time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+sc.token)
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var p wire.Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p
}

var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryRouteIsGuarded enumerates every route the server registers and
// proves that each non-public one refuses a call without credentials, and
// a call from a principal whose role lacks the route's action.
func TestEveryRouteIsGuarded(t *testing.T) {
	q := startServer(t, "")
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	roles := []string{"viewer", "operator", "approver", "admin"}
	for _, role := range roles[:3] {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", role+"1", "--role", role), &inv)
		f := filepath.Join(q.dir, role+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(role+"1", f)
		q.login(role + "1")
	}
	clients := map[string]*signedClient{"admin": q.signedClient("admin")}
	for _, role := range roles[:3] {
		clients[role] = q.signedClient(role + "1")
	}
	hc := q.httpClient()
	routes := q.app.API.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes registered; the enumeration must cover the whole API", len(routes))
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = wildcard.ReplaceAllString(path, "probe")
		url := q.ready.URL + path
		t.Run(rt.Pattern, func(t *testing.T) {
			if rt.Public {
				t.Skip("public by design (health, bootstrap, login, invitation accept, agent enrollment)")
			}
			if status, p := do(t, hc, nil, method, url); status != http.StatusUnauthorized {
				t.Errorf("without credentials: %d %s, want 401", status, p.Code)
			}
			if rt.Agent {
				// A person's session is not an agent's certificate.
				if status, p := do(t, hc, clients["admin"], method, url); status != http.StatusUnauthorized {
					t.Errorf("as a person: %d %s, want 401", status, p.Code)
				}
				return
			}
			res := api.SystemResource
			if rt.Resource != nil {
				r, _ := http.NewRequest(method, url, nil)
				res = rt.Resource(r)
			}
			for _, role := range roles {
				d := q.app.Engine.Decide(context.Background(), policy.Request{
					Principal: wire.Principal{Kind: "person", ID: "p_probe", Name: "probe", Roles: []string{role}, MFAAt: time.Now()},
					Action:    rt.Action, Resource: policy.Resource{Type: res.Type, ID: res.ID, Attrs: res.Attrs},
					Context: map[string]any{"source_ip": "127.0.0.1"}})
				if d.Allow {
					continue
				}
				if status, p := do(t, hc, clients[role], method, url); status != http.StatusForbidden {
					t.Errorf("as %s, who lacks %s: %d %s, want 403", role, rt.Action, status, p.Code)
				}
				return
			}
			t.Logf("every role may %s; only the unauthenticated call is refused", rt.Action)
		})
	}
}

// TestViewerSeesOnlyOwnDevices: listing every person's devices is for
// those who may revoke them, not for every signed-in viewer.
func TestViewerSeesOnlyOwnDevices(t *testing.T) {
	q := startServer(t, "")
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	var inv wire.Invitation
	mustJSON(t, q.mustAs("admin", "--json", "user", "invite", "viewer1", "--role", "viewer"), &inv)
	f := filepath.Join(q.dir, "viewer.totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret("viewer1", f)
	q.login("viewer1")
	if code, _, errs := q.as("viewer1", "device", "list", "--all"); code == 0 || !strings.Contains(errs, "policy does not allow") {
		t.Errorf("viewer listing everyone's devices: exit %d, %s", code, errs)
	}
	var own wire.DeviceList
	mustJSON(t, q.mustAs("viewer1", "--json", "device", "list"), &own)
	if len(own.Devices) != 1 || own.Devices[0].Username != "viewer1" {
		t.Errorf("viewer's own devices = %+v", own.Devices)
	}
	var all wire.DeviceList
	mustJSON(t, q.mustAs("admin", "--json", "device", "list", "--all"), &all)
	if len(all.Devices) != 2 {
		t.Errorf("admin sees %d devices, want 2", len(all.Devices))
	}
}
