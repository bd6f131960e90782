package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// virtualAuthenticator gives the tab a platform authenticator that holds
// discoverable credentials and verifies its user (CDP WebAuthn domain).
func virtualAuthenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	bdo(t, ctx, chromedp.Navigate("about:blank"), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	}))
}

// TestConsolePasskeys: approver1 registers a passkey in the console, signs
// in with it (no password), and approves the count=2 operation with an
// assertion whose challenge is bound to its plan hash; an assertion begun
// for another plan hash is refused.
func TestConsolePasskeys(t *testing.T) {
	root := browser(t)
	q := startServer(t, "")
	q.setUp(20)
	ctx := person(t, root)
	virtualAuthenticator(t, ctx)
	q.signInBrowser(ctx, "approver1")

	bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/passkeys"),
		chromedp.SendKeys(chromedp.ID("passkey-name"), "virtual key"),
		chromedp.Click(chromedp.CSS("#passkey-register button")))
	waitOnPage(t, ctx, "tr.passkey", "#passkey-status")
	screenshot(t, ctx, "passkeys")
	var list wire.PasskeyList
	mustJSON(t, q.mustAs("approver1", "--json", "passkey", "list"), &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].Name != "virtual key" {
		t.Fatalf("interlock passkey list after registering: %+v", list)
	}

	// Sign out, then in with the passkey alone.
	bdo(t, ctx, chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	screenshot(t, ctx, "signin")
	bdo(t, ctx, chromedp.Click(chromedp.ID("passkey-signin")))
	waitOnPage(t, ctx, "#me", "#passkey-status")
	if me, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("me"))); err != nil || me != "approver1" {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("signed in with the passkey as %q (%v):\n%s", me, err, status)
	}

	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-3"), &run)
	opID, hash := run.Operation.ID, run.Result.Plan.Hash
	card := chromedp.CSS(`section.op[data-op="` + opID + `"]`)
	bdo(t, ctx, chromedp.Navigate(q.consoleURL()+"/ui/approvals"), chromedp.WaitVisible(card+" button.approve-passkey"))

	// An assertion begun for another plan hash does not finish for this one.
	forged := run1(t, ctx, chromedp.Evaluate[string](`(async () => {
		const begin = await postJSON('/ui/ops/`+opID+`/approve/passkey/begin', { plan_hash: 'sha256:0000' });
		const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(begin.options.publicKey) });
		try {
			await postJSON('/ui/ops/`+opID+`/approve/passkey/finish', { ceremony: begin.ceremony, plan_hash: '`+hash+`', credential: JSON.stringify(cred.toJSON()) });
			return 'accepted';
		} catch (e) { return e.message; }
	})()`, chromedp.EvalAwaitPromise))
	if !strings.Contains(forged, "made for something else") {
		t.Errorf("an assertion made for another plan hash: %q", forged)
	}
	var op wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &op)
	if len(op.Approvals) != 0 {
		t.Fatalf("a mismatched assertion approved the operation: %+v", op.Approvals)
	}

	// The passkey sign-in's second factor is made ten minutes old: the
	// approval must stand on the step-up alone.
	ageConsoleMFA(t, q, 10*time.Minute)
	bdo(t, ctx, chromedp.Click(card+" button.approve-passkey"))
	waitOnPage(t, ctx, "#live", string(card)+" .passkey-note")
	bdo(t, ctx, chromedp.Poll[chromedp.Void](`document.getElementById('live-state').textContent === 'succeeded'`, chromedp.WithPollingTimeout(90*time.Second)))
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", opID), &op)
	if op.State != "succeeded" || len(op.Approvals) != 1 || op.Approvals[0].Name != "approver1" || op.Approvals[0].PlanHash != hash {
		t.Errorf("after the passkey approval: %s, %+v", op.State, op.Approvals)
	}
	if kinds := q.auditKinds("passkey.registered"); kinds["identity.passkey_mfa_verified"] == 0 || kinds["identity.console_login"] < 2 {
		t.Errorf("audit kinds after passkey use: %v", kinds)
	}

	// interlock passkey remove: the passkey no longer signs in.
	q.mustAs("approver1", "passkey", "remove", list.Passkeys[0].ID)
	mustJSON(t, q.mustAs("approver1", "--json", "passkey", "list"), &list)
	if len(list.Passkeys) != 0 {
		t.Errorf("after remove: %+v", list.Passkeys)
	}
	bdo(t, ctx, chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.ID("passkey-signin")),
		chromedp.Click(chromedp.ID("passkey-signin")),
		chromedp.Poll[chromedp.Void](`/failed/.test(document.getElementById('passkey-status').textContent)`, chromedp.WithPollingTimeout(20*time.Second)))
}

// waitOnPage waits (through navigations) until sel is on the page; after 20 s
// it fails with the text of status, where the page says what went wrong.
func waitOnPage(t *testing.T, ctx context.Context, sel, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+sel+`').length`))
		if err == nil && n > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('`+status+`')||{}).textContent||document.body.innerText`))
	t.Fatalf("%s did not appear: %s", sel, msg)
}
