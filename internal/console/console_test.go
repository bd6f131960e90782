package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakeAPI records the in-process calls the console makes and answers
// from a table.
type fakeAPI struct {
	calls   []string
	answers map[string]any
}

func (f *fakeAPI) Invoke(ctx context.Context, p wire.Principal, remoteAddr, method, target string, in, out any) error {
	body, _ := json.Marshal(in)
	f.calls = append(f.calls, p.Name+" "+method+" "+target+" "+string(body))
	a, ok := f.answers[method+" "+target]
	if !ok {
		return nil
	}
	if err, isErr := a.(error); isErr {
		return err
	}
	b, _ := json.Marshal(a)
	return json.Unmarshal(b, out)
}

type fakeSessions struct{}

const goodToken = "ilk_sess_good"

func (fakeSessions) ConsoleSignIn(ctx context.Context, req identity.ConsoleSignInRequest) (identity.Session, error) {
	if req.Password != "right" {
		return identity.Session{}, usererr.New(usererr.Unauthenticated, "login_failed", "The username, password or one-time code is wrong.")
	}
	return identity.Session{Token: identity.Secret(goodToken), ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (fakeSessions) StartPasskeySession(ctx context.Context, personID, credentialID, sourceIP, userAgent string) (identity.Session, error) {
	return identity.Session{}, usererr.New(usererr.Unauthenticated, "x", "no")
}

func (fakeSessions) AuthenticateConsole(ctx context.Context, token string) (wire.Principal, error) {
	if token != goodToken {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "session_invalid", "The console session is not valid; sign in again.")
	}
	return wire.Principal{Kind: "person", ID: "p-ann", Name: "ann", Roles: []string{"approver"}, SessionID: "ses_1"}, nil
}

func (fakeSessions) RecordPasskeyMFA(ctx context.Context, p wire.Principal, credentialID, purpose string) (time.Time, error) {
	return time.Now(), nil
}

func newTestConsole(t *testing.T) (*Console, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{answers: map[string]any{}}
	c, err := New(Config{API: api, Sessions: fakeSessions{}})
	if err != nil {
		t.Fatal(err)
	}
	return c, api
}

func do(c *Console, method, target string, form url.Values, cookie string, hdr map[string]string) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "https://console.test"+target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "https://console.test"+target, nil)
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return w
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	c, _ := newTestConsole(t)
	for _, target := range []string{"/ui/signin", "/ui/approvals", "/ui/static/console.js", "/ui/nothing-here"} {
		w := do(c, "GET", target, nil, "", nil)
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", target, w.Header().Get("X-Frame-Options"))
		}
	}
}

func TestPagesNeedASession(t *testing.T) {
	c, api := newTestConsole(t)
	for _, cookie := range []string{"", "ilk_sess_forged"} {
		w := do(c, "GET", "/ui/approvals", nil, cookie, nil)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/signin" {
			t.Errorf("cookie %q: %d to %q, want 303 to /ui/signin", cookie, w.Code, w.Header().Get("Location"))
		}
	}
	if len(api.calls) != 0 {
		t.Errorf("the API was called without a session: %v", api.calls)
	}
}

func TestSignInSetsAHostOnlyStrictCookie(t *testing.T) {
	c, _ := newTestConsole(t)
	w := do(c, "POST", "/ui/signin", url.Values{"username": {"ann"}, "password": {"wrong"}, "otp": {"123456"}}, "", nil)
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "password or one-time code is wrong") {
		t.Errorf("a wrong password: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	w = do(c, "POST", "/ui/signin", url.Values{"username": {"ann"}, "password": {"right"}, "otp": {"123456"}}, "", nil)
	cks := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || len(cks) != 1 {
		t.Fatalf("sign-in: %d, cookies %v", w.Code, cks)
	}
	ck := cks[0]
	if ck.Name != "__Host-interlock-console" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("session cookie %+v", ck)
	}
}

func TestFormsNeedTheSessionsTokenAndOrigin(t *testing.T) {
	c, api := newTestConsole(t)
	good := csrfToken(goodToken)
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{"reason": {"x"}}, nil},
		{"another session's token", url.Values{"reason": {"x"}, "csrf": {csrfToken("ilk_sess_other")}}, nil},
		{"cross-site", url.Values{"reason": {"x"}, "csrf": {good}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"other origin", url.Values{"reason": {"x"}, "csrf": {good}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		w := do(c, "POST", "/ui/ops/op_1/deny", tc.form, goodToken, tc.hdr)
		if w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, w.Code)
		}
	}
	if len(api.calls) != 0 {
		t.Fatalf("a refused form reached the API: %v", api.calls)
	}
	w := do(c, "POST", "/ui/ops/op_1/deny", url.Values{"reason": {"not now"}, "csrf": {good}}, goodToken, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if w.Code != http.StatusSeeOther || len(api.calls) != 1 || api.calls[0] != `ann POST /v1/ops/op_1/deny {"reason":"not now"}` {
		t.Errorf("a genuine deny: %d, calls %v", w.Code, api.calls)
	}
	// Deny needs a reason, and says so.
	w = do(c, "POST", "/ui/ops/op_1/deny", url.Values{"csrf": {good}}, goodToken, nil)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "a reason is required") || len(api.calls) != 1 {
		t.Errorf("deny without a reason: %d, calls %v", w.Code, api.calls)
	}
}

func TestApprovalsShowNamesEscapedAndNoButtonForOwnRequests(t *testing.T) {
	c, api := newTestConsole(t)
	mk := func(id, requester string) wire.Operation {
		return wire.Operation{ID: id, State: "pending_approval", RequesterID: requester, Reason: `<script>alert(1)</script>`, Needed: 1,
			Plan: wire.Plan{Runbook: "remove-capacity", RunbookVersion: 2, Service: "billing", Params: map[string]string{"count": "20"}, Hash: "abc",
				Waves: []wire.Wave{{Number: 1, Hosts: []string{"h_1"}}}, HostNames: map[string]string{"h_1": "web-1"}},
			Verdicts: []wire.Verdict{{Rule: "unusual_input", Pass: false, Message: "count=20 is far above this runbook's history"}}}
	}
	api.answers["GET /v1/ops?state=pending_approval"] = wire.OperationList{Operations: []wire.Operation{{ID: "op_theirs"}, {ID: "op_mine"}}}
	api.answers["GET /v1/ops/op_theirs"] = mk("op_theirs", "p-bob")
	api.answers["GET /v1/ops/op_mine"] = mk("op_mine", "p-ann")
	api.answers["GET /v1/users"] = wire.UserList{Users: []wire.User{{ID: "p-bob", Username: "bob"}, {ID: "p-ann", Username: "ann"}}}
	w := do(c, "GET", "/ui/approvals", nil, goodToken, nil)
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("approvals: %d\n%s", w.Code, body)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the reason is not escaped")
	}
	for _, want := range []string{"bob at", "web-1", `class="unusual"`, "remove-capacity v2"} {
		if !strings.Contains(body, want) {
			t.Errorf("the inbox does not show %q", want)
		}
	}
	theirs := body[strings.Index(body, `data-op="op_theirs"`):strings.Index(body, `data-op="op_mine"`)]
	mine := body[strings.Index(body, `data-op="op_mine"`):]
	if !strings.Contains(theirs, "/ui/ops/op_theirs/approve") {
		t.Errorf("no approve form for another person's operation")
	}
	if strings.Contains(mine, "/approve") || !strings.Contains(mine, "someone else must approve") {
		t.Errorf("an approve form is offered for one's own operation")
	}
}

func TestSignInSpendsTheAddressBudget(t *testing.T) {
	api := &fakeAPI{answers: map[string]any{}}
	left := 2
	c, err := New(Config{API: api, Sessions: fakeSessions{}, AllowSignIn: func(ip string) bool { left--; return left >= 0 }})
	if err != nil {
		t.Fatal(err)
	}
	codes := []int{}
	for range 3 {
		codes = append(codes, do(c, "POST", "/ui/signin", url.Values{"username": {"ann"}, "password": {"wrong"}, "otp": {"1"}}, "", nil).Code)
	}
	if codes[0] != http.StatusUnauthorized || codes[2] != http.StatusTooManyRequests {
		t.Errorf("three sign-ins with a budget of two answered %v", codes)
	}
}

// TestLargeWaveFolded: a wave of thousands of hosts shows ten names and a
// count, with every host in a folded list, and the plan's hosts digest.
func TestLargeWaveFolded(t *testing.T) {
	c, api := newTestConsole(t)
	hosts, names := make([]string, 3000), map[string]string{}
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h_%04d", i)
		names[hosts[i]] = fmt.Sprintf("fleet-%04d", i)
	}
	api.answers["GET /v1/ops?state=pending_approval"] = wire.OperationList{Operations: []wire.Operation{{ID: "op_big"}}}
	api.answers["GET /v1/ops/op_big"] = wire.Operation{ID: "op_big", State: "pending_approval", RequesterID: "p-bob", Reason: "INC-3k", Needed: 1,
		Plan: wire.Plan{Runbook: "bench-step", RunbookVersion: 1, Service: "fleet", Hash: "abc", HostsDigest: "d1g3st",
			Waves: []wire.Wave{{Number: 1, Hosts: hosts[:1]}, {Number: 2, Hosts: hosts[1:]}}, HostNames: names}}
	api.answers["GET /v1/users"] = wire.UserList{Users: []wire.User{{ID: "p-bob", Username: "bob"}}}
	w := do(c, "GET", "/ui/approvals", nil, goodToken, nil)
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("approvals: %d\n%s", w.Code, body)
	}
	for _, want := range []string{"fleet-0001, fleet-0002", "… and 2989 more", "all 2999 hosts of wave 2", "fleet-2999", "d1g3st"} {
		if !strings.Contains(body, want) {
			t.Errorf("the card does not show %q", want)
		}
	}
	if strings.Count(body, "fleet-2999") != 1 || strings.Index(body, "<details>") > strings.Index(body, "fleet-2999") {
		t.Error("every host past the tenth must be in the folded list only")
	}
}
