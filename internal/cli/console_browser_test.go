package cli_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store"
)

// browser starts Debian's chromium for the console tests, or skips the test
// when chromium is absent and INTERLOCK_REQUIRE_BROWSER is unset (.ci/run
// sets it, so CI never skips).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("INTERLOCK_REQUIRE_BROWSER") != "" {
			t.Fatalf("INTERLOCK_REQUIRE_BROWSER is set but chromium is not installed (apt-get install -y chromium): %v", err)
		}
		t.Skip("chromium is not installed (apt-get install -y chromium); the console's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1280, 1100))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// person opens a fresh browser context (its own cookies) for one person.
func person(t *testing.T, root context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	return ctx
}

// consoleURL is the server's address by name: WebAuthn refuses IP
// addresses as relying-party IDs, and the server certificate names
// localhost.
func (q *quickstart) consoleURL() string {
	return strings.Replace(q.ready.URL, "127.0.0.1", "localhost", 1)
}

func (q *quickstart) signInBrowser(ctx context.Context, user string) {
	q.t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(q.consoleURL()+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("otp"), q.otp(user)),
		chromedp.Submit(chromedp.ID("signin-form")),
		chromedp.WaitVisible(chromedp.ID("me")),
	)
	if err != nil {
		q.t.Fatalf("sign in %s in the console: %v", user, err)
	}
}

func bdo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func run1[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

// TestConsoleApprovesAndWatches is the quickstart's count=2 operation
// through the web console in a real browser over real HTTPS: the requester
// is not offered an approve button, approver1 approves it with a one-time
// code, and watches it to success.
func TestConsoleApprovesAndWatches(t *testing.T) {
	root := browser(t)
	q := startServer(t, "")
	q.setUp(20)
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-1"), &run)
	opID := run.Operation.ID

	// The requester sees the plan but no approve button.
	op1 := person(t, root)
	q.signInBrowser(op1, "operator1")
	card := chromedp.CSS(`section.op[data-op="` + opID + `"]`)
	bdo(t, op1, chromedp.Navigate(q.consoleURL()+"/ui/approvals"), chromedp.WaitVisible(card))
	mine := run1(t, op1, chromedp.Text(card+" .mine"))
	approveButtons := run1(t, op1, chromedp.Evaluate[int](`document.querySelectorAll('section.op[data-op="`+opID+`"] button.approve, section.op[data-op="`+opID+`"] button.approve-passkey').length`))
	if approveButtons != 0 || !strings.Contains(mine, "someone else must approve") {
		t.Errorf("the requester's inbox offers %d approve buttons, says %q", approveButtons, mine)
	}
	screenshot(t, op1, "approvals-requester")

	// approver1 sees who asked, why, the hosts by wave, the verdicts and the plan hash, and approves.
	ap := person(t, root)
	q.signInBrowser(ap, "approver1")
	bdo(t, ap, chromedp.Navigate(q.consoleURL()+"/ui/approvals"), chromedp.WaitVisible(card+" button.approve"))
	cardText := run1(t, ap, chromedp.Text(card))
	for _, want := range []string{"operator1", "INC-1", "remove-capacity v1", "count=2", "wave 1 (canary)", "wave 2", run.Result.Plan.Hash, "capacity_floor", "pass"} {
		if !strings.Contains(cardText, want) {
			t.Errorf("the approval card does not show %q:\n%s", want, cardText)
		}
	}
	png := screenshot(t, ap, "approvals")
	if *update {
		if err := os.WriteFile("../../docs/console.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := chromedp.Do(ap,
		chromedp.SendKeys(chromedp.ID("otp-"+opID), q.otp("approver1")),
		chromedp.Click(card+" button.approve"),
		chromedp.WaitVisible(chromedp.ID("live")),
		chromedp.Poll[chromedp.Void](`document.getElementById('live-state').textContent === 'succeeded'`, chromedp.WithPollingTimeout(90*time.Second)),
	)
	if err != nil {
		detail, _ := chromedp.Run(ap, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("approve and watch in the console: %v\n%s", err, detail)
	}
	hostRows := run1(t, ap, chromedp.Evaluate[int](`document.querySelectorAll('#live-waves tr.host').length`))
	if hostRows != 2 {
		t.Errorf("the live page shows %d hosts, want the plan's 2", hostRows)
	}
	screenshot(t, ap, "operation")
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &got)
	if got.State != "succeeded" || len(got.Approvals) != 1 || got.Approvals[0].Name != "approver1" {
		t.Errorf("after the console approval the operation is %s with approvals %+v", got.State, got.Approvals)
	}

	// Fleet: 20 live hosts, the services with floors and healthy counts.
	bdo(t, ap, chromedp.Navigate(q.consoleURL()+"/ui/fleet"))
	fleet := run1(t, ap, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"billing", "index", "16 (80%)", "10 (50%)", "host-"} {
		if !strings.Contains(fleet, want) {
			t.Errorf("the fleet page does not show %q", want)
		}
	}
	screenshot(t, ap, "fleet")
	bdo(t, ap, chromedp.Navigate(q.consoleURL()+"/ui/ops"))
	opsPage := run1(t, ap, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(opsPage, "succeeded") || !strings.Contains(opsPage, "operator1") {
		t.Errorf("the operations page:\n%s", opsPage)
	}
	screenshot(t, ap, "operations")
}

// consoleClient signs user in to the console with Go's HTTP client (as a
// script or an attacker would) and returns the client, holding the cookie.
func (q *quickstart) consoleClient(user string) *http.Client {
	q.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test checks the console, not TLS
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"username": {user}, "password": {password}, "otp": {q.otp(user)}}
	res := q.post(c, "/ui/signin", form, q.consoleURL())
	if res.StatusCode != http.StatusSeeOther {
		q.t.Fatalf("console sign-in of %s: %s", user, res.Status)
	}
	return c
}

func (q *quickstart) post(c *http.Client, path string, form url.Values, origin string) *http.Response {
	q.t.Helper()
	req, _ := http.NewRequest("POST", q.consoleURL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := c.Do(req)
	if err != nil {
		q.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestConsoleRefusesForgedForms is the attacker's side: a form posted
// without the session's CSRF token, with a wrong one, or from another
// origin is refused with 403 and changes nothing; every page carries a
// strict Content-Security-Policy and cannot be framed.
func TestConsoleRefusesForgedForms(t *testing.T) {
	q := startServer(t, "")
	q.setUp(20)
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-2"), &run)
	opID := run.Operation.ID
	c := q.consoleClient("approver1")

	res, err := c.Get(q.consoleURL() + "/ui/approvals")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy allows unsafe script: %q", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options = %q", res.Header.Get("X-Frame-Options"))
	}
	if strings.Contains(string(page), "<script>") || strings.Contains(string(page), " on") && strings.Contains(string(page), "onclick=") {
		t.Errorf("a console page carries inline script")
	}
	for _, ck := range c.Jar.Cookies(mustURL(t, q.consoleURL())) {
		if ck.Name != "__Host-interlock-console" {
			t.Errorf("unexpected cookie %s", ck.Name)
		}
	}
	good := csrfFrom(t, string(page))

	deny := url.Values{"reason": {"forged"}}
	for _, tc := range []struct {
		name, csrf, origin string
	}{
		{"no token", "", q.consoleURL()},
		{"wrong token", strings.Repeat("A", len(good)), q.consoleURL()},
		{"right token, other origin", good, "https://evil.example"},
	} {
		form := url.Values{"reason": deny["reason"]}
		if tc.csrf != "" {
			form.Set("csrf", tc.csrf)
		}
		if res := q.post(c, "/ui/ops/"+opID+"/deny", form, tc.origin); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: deny answered %s, want 403", tc.name, res.Status)
		}
	}
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &got)
	if got.State != "pending_approval" {
		t.Fatalf("a refused forged form changed the operation to %s", got.State)
	}
	// The same form with the session's token is the person's own act.
	if res := q.post(c, "/ui/ops/"+opID+"/deny", url.Values{"reason": {"not during the freeze"}, "csrf": {good}}, q.consoleURL()); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny with the right token answered %s", res.Status)
	}
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &got)
	if got.State != "denied" {
		t.Errorf("after a genuine deny the operation is %s", got.State)
	}
	// The requester, with a genuine token and a valid one-time code, is
	// refused by the same rule as the API: nobody approves their own.
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-4"), &run)
	own := q.consoleClient("operator1")
	res3, err := own.Get(q.consoleURL() + "/ui/ops/" + run.Operation.ID)
	if err != nil {
		t.Fatal(err)
	}
	ownPage, _ := io.ReadAll(res3.Body)
	res3.Body.Close()
	if strings.Contains(string(ownPage), "Approve this plan") {
		t.Errorf("the requester's operation page offers an approve button")
	}
	approve := url.Values{"csrf": {csrfFrom(t, string(ownPage))}, "plan_hash": {run.Result.Plan.Hash}, "otp": {q.otp("operator1")}}
	if res := q.post(own, "/ui/ops/"+run.Operation.ID+"/approve", approve, q.consoleURL()); res.StatusCode != http.StatusForbidden {
		t.Errorf("the requester approving their own operation in the console answered %s, want 403", res.Status)
	}
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", run.Operation.ID), &got)
	if len(got.Approvals) != 0 {
		t.Errorf("the requester approved their own operation: %+v", got.Approvals)
	}
	// GET / sends a browser to the console.
	res4, err := c.Get(q.consoleURL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res4.Body.Close()
	if res4.StatusCode != http.StatusFound || res4.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %s to %q, want 302 to /ui/", res4.Status, res4.Header.Get("Location"))
	}

	// Another session's token does not work for this one.
	res2, err := own.Get(q.consoleURL() + "/ui/approvals")
	if err != nil {
		t.Fatal(err)
	}
	otherPage, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	if csrfFrom(t, string(otherPage)) == good {
		t.Errorf("two sessions share a CSRF token")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func csrfFrom(t *testing.T, page string) string {
	t.Helper()
	const marker = `name="csrf" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	rest := page[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestConsoleLogVerifiesInBrowser: the log explorer checks each entry's
// inclusion proof and the checkpoint's signature with WebCrypto, and an
// entry someone rewrote in the database shows as not verified.
func TestConsoleLogVerifiesInBrowser(t *testing.T) {
	root := browser(t)
	q := startServer(t, "")
	q.setUp(2)
	q.mustAs("admin", "log", "verify") // waits for a checkpoint covering setUp's entries
	ctx := person(t, root)
	q.signInBrowser(ctx, "admin")
	rows := func() map[string]string {
		bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/log"),
			chromedp.Poll[chromedp.Void](`document.querySelector('#log-rows .proof') !== null`, chromedp.WithPollingTimeout(30*time.Second)))
		return run1(t, ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('#log-rows tr[data-index]')].map(r => [r.dataset.index, r.querySelector('.proof').textContent]))`))
	}
	before := rows()
	if len(before) == 0 {
		t.Fatal("the log explorer shows no entries")
	}
	for idx, v := range before {
		if v != "verified" {
			t.Errorf("entry %s shows %q before any tampering", idx, v)
		}
	}
	status := run1(t, ctx, chromedp.Text(chromedp.ID("log-checkpoint")))
	if !strings.Contains(status, "signature verified") {
		t.Errorf("checkpoint status: %q", status)
	}
	screenshot(t, ctx, "log")

	// Filters: kind, and actor by username.
	// The explorer shows what a signed checkpoint covers: wait until one
	// covers the runbook's approval (the checkpoint the first load used may
	// predate it) before filtering for it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		kinds := run1(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#log-rows tr[data-index]')].map(r => r.children[2].textContent)`))
		if slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, "change.") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log explorer never showed the runbook's change entries; it shows %v", kinds)
		}
		time.Sleep(time.Second)
		rows()
	}
	bdo(t, ctx, chromedp.SendKeys(chromedp.ID("f-kind"), "change."), chromedp.SendKeys(chromedp.ID("f-actor"), "approver1"),
		chromedp.Click(chromedp.CSS("#log-filter button")),
		chromedp.Poll[chromedp.Void](`(tds => tds.length > 0 && tds.every(td => td.textContent.startsWith('change.')))([...document.querySelectorAll('#log-rows tr[data-index] td:nth-child(3)')])`, chromedp.WithPollingTimeout(20*time.Second)))
	filtered := run1(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#log-rows tr[data-index]')].map(r => r.children[2].textContent + ' ' + r.children[3].textContent)`))
	if len(filtered) == 0 {
		t.Fatal("filtering by kind change. and actor approver1 shows nothing; setUp's runbook approval is such an entry")
	}
	for _, row := range filtered {
		if !strings.HasPrefix(row, "change.") || !strings.Contains(row, "approver1 (person:") {
			t.Errorf("a filtered row: %q", row)
		}
	}

	// An attacker with write access to the database rewrites entry 3.
	db, err := store.Open(context.Background(), store.Config{DataDir: filepath.Join(q.dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), `UPDATE audit_entries SET subject = 'person:nobody' WHERE idx = 3`); err != nil {
		t.Fatal(err)
	}
	after := rows()
	if after["3"] != "not verified" {
		t.Errorf("the rewritten entry 3 shows %q, want \"not verified\"", after["3"])
	}
	for idx, v := range after {
		if idx != "3" && v != "verified" {
			t.Errorf("untouched entry %s shows %q", idx, v)
		}
	}
	screenshot(t, ctx, "log-tampered")

	// A server presenting another log key than the one this browser pinned is not believed.
	bdo(t, ctx, chromedp.Evaluate[chromedp.Void](`localStorage.setItem('interlock-log-key', 'interlock/log+00000000+AQ==')`))
	rows()
	if status := run1(t, ctx, chromedp.Text(chromedp.ID("log-checkpoint"))); !strings.Contains(status, "NOT verified") || !strings.Contains(status, "pinned") {
		t.Errorf("with another pinned key the checkpoint status says %q", status)
	}
}

// TestConsoleHalts: an approver halts a running operation from its live
// page with a reason; the operation stops (halted) and the page says so.
func TestConsoleHalts(t *testing.T) {
	root := browser(t)
	q := startServer(t, "")
	q.setUp(20)
	slow := strings.NewReplacer(`name: remove-capacity`, `name: slow-drain`,
		`argv: ["echo", "removing", "{{service}}", "from service"]`, `argv: ["sleep", "20"]`).Replace(readFile(t, "../../examples/runbooks/remove-capacity.yaml"))
	f := filepath.Join(q.dir, "slow-drain.yaml")
	if err := os.WriteFile(f, []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	// The runbook is a change request: approver1 approves it in the console's inbox, after its diff.
	var pend wire.ChangePending
	mustJSON(t, q.mustAs("operator1", "--json", "runbook", "apply", "-f", f), &pend)
	crID := pend.ChangeRequest.ID
	ctx := person(t, root)
	q.signInBrowser(ctx, "approver1")
	cr := `section[aria-labelledby="cr-` + crID + `"]`
	bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/approvals"), chromedp.WaitVisible(chromedp.CSS(cr)))
	if text := run1(t, ctx, chromedp.TextContent(chromedp.CSS(cr))); !strings.Contains(text, "operator1") || !strings.Contains(text, "sleep") {
		t.Errorf("the change request card does not show its requester and new step:\n%s", text)
	}
	bdo(t, ctx, chromedp.SendKeys(chromedp.ID("cr-otp-"+crID), q.otp("approver1")),
		chromedp.Click(chromedp.CSS(cr+" button.approve")))
	waitOnPage(t, ctx, "p.note", "main")
	var applied wire.ChangeRequest
	mustJSON(t, q.mustAs("admin", "--json", "change", "show", crID), &applied)
	if applied.State != "applied" {
		t.Fatalf("after approval in the console the change request is %s", applied.State)
	}

	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "slow-drain", "--param", "service=billing", "--param", "count=2", "--reason", "INC-5"), &run)
	opID := run.Operation.ID
	q.mustAs("approver1", "approve", opID, "--yes") // its CLI sign-in is still fresh MFA
	bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/ops/"+opID),
		chromedp.WaitVisible(chromedp.ID("halt-reason")),
		chromedp.SendKeys(chromedp.ID("halt-reason"), "wrong ticket"),
		chromedp.Click(chromedp.CSS("#halt button")))
	waitOnPage(t, ctx, `p.note`, "main")
	bdo(t, ctx, chromedp.Poll[chromedp.Void](`document.getElementById('live-state').textContent === 'halted'`, chromedp.WithPollingTimeout(30*time.Second)))
	screenshot(t, ctx, "operation-halted")
	var got wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &got)
	if got.State != "halted" {
		t.Errorf("after Halt in the console the operation is %s", got.State)
	}
	if kinds := q.auditKinds("op.halted"); kinds["op.halted"] != 1 {
		t.Errorf("audit kinds after the halt: %v", kinds)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
