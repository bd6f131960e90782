package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store"
)

// attackInvite adds a person with role, signed in on the command line.
func (q *quickstart) attackInvite(user, role string) {
	q.t.Helper()
	var inv wire.Invitation
	mustJSON(q.t, q.mustAs("admin", "--json", "user", "invite", user, "--role", role), &inv)
	f := filepath.Join(q.dir, user+".totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret(user, f)
	q.login(user)
}

// consolePage GETs path with c and returns status, body and Location.
func (q *quickstart) consolePage(c *http.Client, path string) (int, string, string) {
	q.t.Helper()
	res, err := c.Get(q.consoleURL() + path)
	if err != nil {
		q.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header.Get("Location")
}

// postRaw posts body with contentType and returns status and body.
func (q *quickstart) postRaw(c *http.Client, path, contentType, body string) (int, string, string) {
	q.t.Helper()
	req, _ := http.NewRequest("POST", q.consoleURL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", q.consoleURL())
	res, err := c.Do(req)
	if err != nil {
		q.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header.Get("Location")
}

// TestConsoleAttackerHoldsOff is an attacker with a console session of
// each role, driving the console over HTTPS with a plain HTTP client: a
// viewer's approve, deny and halt; an approver's swapped plan hash; a
// stored script in the reason; a console cookie against the API; bad and
// oversized forms. Every one is a clear 4xx that changes nothing.
func TestConsoleAttackerHoldsOff(t *testing.T) {
	q := startServer(t, "")
	q.setUp(20)
	q.attackInvite("viewer1", "viewer")
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", `<script>alert(1)</script>"><img src=x onerror=alert(2)>`), &run)
	opID, hash := run.Operation.ID, run.Result.Plan.Hash
	form := "application/x-www-form-urlencoded"

	viewer := q.consoleClient("viewer1")
	_, vpage, _ := q.consolePage(viewer, "/ui/approvals")
	vcsrf := csrfFrom(t, vpage)
	for _, a := range []string{"approve", "deny", "halt"} {
		f := url.Values{"csrf": {vcsrf}, "plan_hash": {hash}, "otp": {q.otp("viewer1")}, "reason": {"x"}}
		if st, _, _ := q.postRaw(viewer, "/ui/ops/"+opID+"/"+a, form, f.Encode()); st != http.StatusForbidden {
			t.Errorf("a viewer's %s answered %d, want 403", a, st)
		}
	}
	ap := q.consoleClient("approver1")
	_, apage, _ := q.consolePage(ap, "/ui/approvals")
	if !strings.Contains(apage, "&lt;script&gt;alert(1)") || strings.Contains(apage, "<script>alert") || strings.Contains(apage, "<img src=x") {
		t.Errorf("the reason is not escaped on the approvals page")
	}
	acsrf := csrfFrom(t, apage)
	// An approval carrying another plan hash than the operation's.
	f := url.Values{"csrf": {acsrf}, "plan_hash": {"sha256:" + strings.Repeat("0", 64)}, "otp": {q.otp("approver1")}}
	if st, _, _ := q.postRaw(ap, "/ui/ops/"+opID+"/approve", form, f.Encode()); st != http.StatusConflict {
		t.Errorf("approving another plan hash answered %d, want 409", st)
	}
	for _, tc := range []struct{ name, path, ctype, body string }{
		{"unknown operation's progress", "/ui/ops/nope/progress", "", ""},
		{"progress since a word", "/ui/ops/" + opID + "/progress?since=abc", "", ""},
		{"log since a word", "/ui/log/data?since=bad", "", ""},
		{"log seen a word", "/ui/log/data?seen=-1", "", ""},
		{"unknown operation", "/ui/ops/nope", "", ""},
		{"bad escape in a form", "/ui/ops/" + opID + "/deny", form, "csrf=" + acsrf + "&reason=%zz"},
		{"form as text/plain", "/ui/ops/" + opID + "/deny", "text/plain", "csrf=" + acsrf + "&reason=x"},
		{"multipart with an empty reason", "/ui/ops/" + opID + "/deny", "multipart/form-data; boundary=zz",
			"--zz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + acsrf + "\r\n--zz\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\n\r\n--zz--\r\n"},
		{"junk passkey sign-in", "/ui/passkeys/signin/finish", form, "ceremony=x&credential={}"},
		{"junk passkey approval", "/ui/ops/" + opID + "/approve/passkey/finish", form, url.Values{"csrf": {acsrf}, "plan_hash": {hash}, "ceremony": {"x"}, "credential": {"{}"}}.Encode()},
		{"passkey approval for a 600-byte hash", "/ui/ops/" + opID + "/approve/passkey/begin", form, url.Values{"csrf": {acsrf}, "plan_hash": {strings.Repeat("h", 600)}}.Encode()},
	} {
		var st int
		if tc.ctype == "" {
			st, _, _ = q.consolePage(ap, tc.path)
		} else {
			st, _, _ = q.postRaw(ap, tc.path, tc.ctype, tc.body)
		}
		if st < 400 || st >= 500 {
			t.Errorf("%s answered %d, want a 4xx", tc.name, st)
		}
	}
	// The console's cookie is no API credential.
	var tok string
	for _, ck := range ap.Jar.Cookies(mustURL(t, q.consoleURL())) {
		tok = ck.Value
	}
	for _, h := range []string{"Bearer " + tok, "DPoP " + tok} {
		req, _ := http.NewRequest("GET", q.ready.URL+"/v1/ops", nil)
		req.Header.Set("Authorization", h)
		res, err := ap.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("the console cookie as %q on /v1/ops answered %s", h[:5], res.Status)
		}
	}
	// And a CLI session's token (bound to its DPoP key) is no console cookie.
	b, err := os.ReadFile(filepath.Join(q.dir, "config", "profiles", "approver1", "profile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prof struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &prof); err != nil || !strings.HasPrefix(prof.Token, "ilk_sess_") {
		t.Fatalf("no CLI token in approver1's profile: %v", err)
	}
	cli := q.consoleClient("viewer1")
	cli.Jar.SetCookies(mustURL(t, q.consoleURL()), []*http.Cookie{{Name: "__Host-interlock-console", Value: prof.Token, Path: "/"}})
	if st, _, loc := q.consolePage(cli, "/ui/approvals"); st != http.StatusSeeOther || loc != "/ui/signin" {
		t.Errorf("a CLI token as the console cookie: %d to %q, want 303 to /ui/signin", st, loc)
	}
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &got)
	if got.State != "pending_approval" || len(got.Approvals) != 0 {
		t.Errorf("after the attempts the operation is %s with %d approvals", got.State, len(got.Approvals))
	}
}

// TestConsoleRefusesDotSegmentIDs: an id of "." or ".." in a console
// address turned the API call into /v1/ops/../halt, which the API's mux
// answers with a redirect, and the console took the redirect for success:
// "Halted." with nothing halted, "Denied.", "The passkey is removed.", and
// a 500 for the page. Each is a 404 now, and nothing changes.
func TestConsoleRefusesDotSegmentIDs(t *testing.T) {
	q := startServer(t, "")
	q.setUp(20)
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-1"), &run)
	ap := q.consoleClient("approver1")
	_, page, _ := q.consolePage(ap, "/ui/approvals")
	csrf := csrfFrom(t, page)
	form := "application/x-www-form-urlencoded"
	for _, id := range []string{"%2E%2E", "%2E"} {
		for _, path := range []string{"/ui/ops/" + id + "/halt", "/ui/ops/" + id + "/deny", "/ui/passkeys/" + id + "/remove", "/ui/changes/" + id + "/deny"} {
			st, _, loc := q.postRaw(ap, path, form, url.Values{"csrf": {csrf}, "reason": {"x"}}.Encode())
			if st != http.StatusNotFound || strings.Contains(loc, "done=") {
				t.Errorf("POST %s answered %d to %q, want 404", path, st, loc)
			}
		}
		if st, _, _ := q.consolePage(ap, "/ui/ops/"+id); st != http.StatusNotFound {
			t.Errorf("GET /ui/ops/%s answered %d, want 404", id, st)
		}
	}
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", run.Operation.ID), &got)
	if got.State != "pending_approval" {
		t.Errorf("the operation is %s", got.State)
	}
}

// TestConsoleSessionsEndForGood: a console cookie copied before sign-out,
// before `device revoke` of its console device, or before its person is
// disabled opens no page and posts no form afterwards.
func TestConsoleSessionsEndForGood(t *testing.T) {
	q := startServer(t, "")
	q.setUp(20)
	q.attackInvite("viewer1", "viewer")
	cookieOf := func(c *http.Client) *http.Cookie {
		for _, ck := range c.Jar.Cookies(mustURL(t, q.consoleURL())) {
			return ck
		}
		t.Fatal("no console cookie")
		return nil
	}
	// Sign-out.
	a := q.consoleClient("approver1")
	ck := cookieOf(a)
	_, page, _ := q.consolePage(a, "/ui/approvals")
	if st, _, _ := q.postRaw(a, "/ui/signout", "application/x-www-form-urlencoded", url.Values{"csrf": {csrfFrom(t, page)}}.Encode()); st != http.StatusSeeOther {
		t.Fatalf("sign-out answered %d", st)
	}
	c := &http.Client{Jar: a.Jar, Transport: a.Transport, CheckRedirect: a.CheckRedirect}
	c.Jar.SetCookies(mustURL(t, q.consoleURL()), []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/"}})
	if st, _, loc := q.consolePage(c, "/ui/fleet"); st != http.StatusSeeOther || loc != "/ui/signin" {
		t.Errorf("a cookie after sign-out: %d to %q, want 303 to /ui/signin", st, loc)
	}
	if st, _, _ := q.postRaw(c, "/ui/ops/op_x/deny", "application/x-www-form-urlencoded", url.Values{"csrf": {csrfFrom(t, page)}, "reason": {"x"}}.Encode()); st != http.StatusUnauthorized {
		t.Errorf("a form after sign-out answered %d, want 401", st)
	}
	// device revoke.
	v := q.consoleClient("viewer1")
	var devs wire.DeviceList
	mustJSON(t, q.mustAs("admin", "--json", "device", "list", "--all"), &devs)
	revoked := 0
	for _, d := range devs.Devices {
		if d.Username == "viewer1" && strings.HasPrefix(d.JKT, "console:") {
			q.mustAs("admin", "device", "revoke", d.ID)
			revoked++
		}
	}
	if revoked == 0 {
		t.Fatalf("no console device of viewer1 listed: %+v", devs.Devices)
	}
	if st, _, loc := q.consolePage(v, "/ui/fleet"); st != http.StatusSeeOther || loc != "/ui/signin" {
		t.Errorf("a cookie after device revoke: %d to %q, want 303 to /ui/signin", st, loc)
	}
	// Disabling the person.
	v2 := q.consoleClient("viewer1")
	if st, _, _ := q.consolePage(v2, "/ui/fleet"); st != http.StatusOK {
		t.Fatalf("a fresh viewer session: %d", st)
	}
	q.invitePuppet("admin", "admin2", "admin")
	q.mustChange("admin2", "approver1", "user", "disable", "viewer1")
	if st, _, loc := q.consolePage(v2, "/ui/fleet"); st != http.StatusSeeOther || loc != "/ui/signin" {
		t.Errorf("a cookie after the person is disabled: %d to %q, want 303 to /ui/signin", st, loc)
	}
}

// TestConsoleLogRefusesARolledBackCheckpoint: the log explorer showed
// "verified" for any checkpoint signed by the log key, so a server (or a
// database attacker) presenting an old checkpoint hid every newer entry
// behind a green page. The browser now remembers the newest checkpoint it
// verified and believes a later one only with a consistency proof from it
// (RFC 9162 §2.1.4.2, checked in the browser); an older one, another one
// of the same size, or a bigger one that is not consistent is NOT
// verified, and so is every entry under it.
func TestConsoleLogRefusesARolledBackCheckpoint(t *testing.T) {
	root := browser(t)
	q := startServer(t, "")
	q.setUp(2)
	q.mustAs("admin", "log", "verify")
	ctx := person(t, root)
	q.signInBrowser(ctx, "admin")
	load := func() (string, map[string]string) {
		bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/log"),
			chromedp.Poll[chromedp.Void](`document.querySelector('#log-rows .proof') !== null`, chromedp.WithPollingTimeout(30*time.Second)))
		return run1(t, ctx, chromedp.Text(chromedp.ID("log-checkpoint"))),
			run1(t, ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('#log-rows tr[data-index]')].map(r => [r.dataset.index, r.querySelector('.proof').textContent]))`))
	}
	allVerified := func(name string, status string, rows map[string]string, want bool) {
		t.Helper()
		if strings.Contains(status, "NOT verified") == want {
			t.Errorf("%s: checkpoint status %q", name, status)
		}
		for idx, v := range rows {
			if (v == "verified") != want {
				t.Errorf("%s: entry %s shows %q", name, idx, v)
			}
		}
	}
	status, rows := load()
	allVerified("first visit", status, rows, true)
	seen := run1(t, ctx, chromedp.Evaluate[string](`localStorage.getItem('interlock-log-seen')`))
	var first struct {
		Size uint64 `json:"size"`
		Root string `json:"root"`
	}
	if err := json.Unmarshal([]byte(seen), &first); err != nil || first.Size == 0 {
		t.Fatalf("the browser remembers no checkpoint: %q", seen)
	}
	// The log grows; the next visit proves the new checkpoint consistent with the one seen.
	q.mustAs("admin", "service", "set", "index", "--min-healthy", "70%")
	q.mustAs("admin", "log", "verify")
	for i := 0; ; i++ {
		status, rows = load()
		if !strings.Contains(status, fmt.Sprintf("Checkpoint of %d ", first.Size)) || i == 20 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	allVerified("a later, consistent checkpoint", status, rows, true)
	if !strings.Contains(status, "consistent") {
		t.Errorf("the status does not say the checkpoint was proved consistent: %q", status)
	}
	set := func(size uint64, root string) {
		b, _ := json.Marshal(map[string]any{"size": size, "root": root})
		bdo(t, ctx, chromedp.Evaluate[chromedp.Void](`localStorage.setItem('interlock-log-seen', `+strconv.Quote(string(b))+`)`))
	}
	forged := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name string
		size uint64
		root string
	}{
		{"this browser saw a bigger log (rolled back)", 1 << 40, forged},
		{"this browser saw an earlier checkpoint with another root", first.Size, forged},
	} {
		set(tc.size, tc.root)
		status, rows = load()
		allVerified(tc.name, status, rows, false)
	}
	set(first.Size, first.Root)
	status, rows = load()
	allVerified("back to the real history", status, rows, true)
}

// TestConsoleApprovesWithAnOldSession: the console proved a fresh second
// factor (a one-time code) and then asked the API to approve as the
// principal it had read before that proof, whose second factor was as old
// as the sign-in. A console session older than five minutes could never
// approve: every approval, with a valid code, was refused for want of a
// fresh second factor. The approval now goes as the person with the
// factor just proved.
func TestConsoleApprovesWithAnOldSession(t *testing.T) {
	q := startServer(t, "")
	q.setUp(20)
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-11"), &run)
	ap := q.consoleClient("approver1")
	_, page, _ := q.consolePage(ap, "/ui/approvals")
	// The sign-in was ten minutes ago, as far as its second factor goes.
	ageConsoleMFA(t, q, 10*time.Minute)
	f := url.Values{"csrf": {csrfFrom(t, page)}, "plan_hash": {run.Result.Plan.Hash}, "otp": {q.otp("approver1")}}
	st, body, loc := q.postRaw(ap, "/ui/ops/"+run.Operation.ID+"/approve", "application/x-www-form-urlencoded", f.Encode())
	if st != http.StatusSeeOther || !strings.Contains(loc, "done=approved") {
		t.Errorf("approving with a fresh code in an old session answered %d %q:\n%.2000s", st, loc, body)
	}
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", run.Operation.ID), &got)
	if len(got.Approvals) != 1 {
		t.Errorf("the operation has %d approvals, want 1", len(got.Approvals))
	}
}

// ageConsoleMFA makes the second factor of every console session age old,
// in the database, as if the sign-in had been that long ago.
func ageConsoleMFA(t *testing.T, q *quickstart, age time.Duration) {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: filepath.Join(q.dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), `UPDATE login_sessions SET mfa_at = $1 WHERE device_id IN (SELECT id FROM devices WHERE jkt LIKE 'console:%')`,
		time.Now().Add(-age).UnixNano()); err != nil {
		t.Fatal(err)
	}
}
