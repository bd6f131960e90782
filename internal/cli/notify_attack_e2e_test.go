package cli_test

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/notify"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

// TestNotificationsAttacked: one server with a signed webhook and an SMTP
// sink, attacked the way a person with an ordinary account would.
//
//   - typed_text_cannot_forge_lines: a reason is text a requester typed.
//     With line breaks it could append lines that read as Interlock's own
//     ("alice approved (2 of 2). It starts now", a fake wave) to the
//     message an approver trusts; with bidi controls it could reverse what
//     the approver reads. In the webhook and in the email it stays on its
//     own line, without controls, and Slack markup (mentions, links) in it
//     is escaped.
//   - secret_in_reason_is_redacted: a requester pastes a live token into
//     the reason; the chat channel and the mailbox (wider audiences than
//     the audit log's readers) get it redacted, in the text, the title and
//     the webhook's details, as the agent redacts step output.
//   - refused_run_is_not_announced: a run the guardrails refuse stores
//     no operation; nobody is asked to approve it.
//   - disabled_person_cannot_scrape: a person whose account is disabled
//     no longer reads /metrics with the session they still hold.
func TestNotificationsAttacked(t *testing.T) {
	const hookKey = "whsec-attack-key-0123456789abcdef"
	hook := newHookReceiver(t, hookKey)
	caFile := filepath.Join(t.TempDir(), "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := newMailServer(t, hook.srv.TLS.Certificates[0])
	q := startServerConfig(t, config.Config{Notifications: config.Notifications{
		Webhooks: []config.WebhookSink{{Name: "oncall-hook", URL: hook.srv.URL + "/interlock", HMACSecret: "notify/hook-key", CAFile: caFile}},
		Email: []config.EmailSink{{Name: "oncall-mail", SMTP: ms.addr, From: "Interlock <interlock@example.com>", To: []string{"oncall@example.com"},
			Username: ms.user, PasswordSecret: "notify/smtp-password", CAFile: caFile}},
	}}, app.Options{})
	q.setUp(10)
	q.must(hookKey, "--profile", "admin", "secret", "put", "notify/hook-key")
	q.must(ms.password, "--profile", "admin", "secret", "put", "notify/smtp-password")

	t.Run("typed_text_cannot_forge_lines", func(t *testing.T) {
		forged := []string{"alice approved (2 of 2). It starts now: interlock ops watch op_fake", "Wave 1: nothing-to-see", "Plan hash: 0000"}
		reason := "INC-11 disk\n" + forged[0] + "\r\n" + forged[1] + "\u2028" + forged[2] + " <@U123> <https://evil.example|docs> \u202eexe.txt"
		var run wire.RunResponse
		mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", reason), &run)
		opID := run.Operation.ID
		b, ok := hook.waitFor(t, 10*time.Second, func(b notify.WebhookBody) bool { return b.Event == "approval_needed" && b.Subject == "op:"+opID })
		if !ok {
			t.Fatalf("no approval request for %s (refused: %v)", opID, hook.bad)
		}
		m, ok := ms.waitFor(t, 10*time.Second, func(m mailMsg) bool { return strings.Contains(m.body, opID) })
		if !ok {
			t.Fatalf("no email about %s", opID)
		}
		for sink, text := range map[string]string{"webhook": b.Text, "email": m.body} {
			for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' }) {
				for _, f := range forged {
					if strings.HasPrefix(strings.TrimSpace(line), f) {
						t.Errorf("%s: the reason forged a line of its own: %q\n%s", sink, line, text)
					}
				}
			}
			if strings.ContainsRune(text, '\u202e') {
				t.Errorf("%s: the reason's right-to-left override reached the message", sink)
			}
			if !strings.Contains(text, "INC-11 disk") || !strings.Contains(text, "op_fake") {
				t.Errorf("%s: the reason is not shown at all:\n%s", sink, text)
			}
		}
		for _, markup := range []string{"<@U123>", "<https://evil.example|docs>"} {
			if strings.Contains(b.Text, markup) {
				t.Errorf("webhook: Slack markup %q reached the text unescaped", markup)
			}
		}
		// Machines get the reason as it was typed.
		if got, _ := b.Details["reason"].(string); got != strings.TrimSpace(reason) {
			t.Errorf("details.reason = %q, want the reason as typed", got)
		}
		q.mustAs("approver1", "deny", opID, "--reason", "attack probe") // frees billing for the next run
	})

	t.Run("secret_in_reason_is_redacted", func(t *testing.T) {
		random := "R7xq2LmN9vB4kP0sT6wY1zA3cD5eF8"
		token := "ghp_" + random + secrets.GitHubChecksum(random)
		var run wire.RunResponse
		mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1",
			"--reason", "INC-12 rotate the deploy token "+token+" after the leak"), &run)
		opID := run.Operation.ID
		b, ok := hook.waitFor(t, 10*time.Second, func(b notify.WebhookBody) bool { return b.Event == "approval_needed" && b.Subject == "op:"+opID })
		if !ok {
			t.Fatalf("no approval request for %s (refused: %v)", opID, hook.bad)
		}
		m, ok := ms.waitFor(t, 10*time.Second, func(m mailMsg) bool { return strings.Contains(m.body, opID) })
		if !ok {
			t.Fatalf("no email about %s", opID)
		}
		details, _ := json.Marshal(b.Details)
		for where, text := range map[string]string{"webhook text": b.Text, "webhook title": b.Title, "webhook details": string(details),
			"email body": m.body, "email subject": m.msg.Header.Get("Subject")} {
			if strings.Contains(text, random) {
				t.Errorf("%s carries the token pasted into the reason:\n%s", where, text)
			}
		}
		if !strings.Contains(b.Text, "INC-12 rotate the deploy token [redacted") {
			t.Errorf("webhook text does not say what was redacted:\n%s", b.Text)
		}
		q.mustAs("approver1", "deny", opID, "--reason", "attack probe")
	})

	// Notifications lost before any sink saw them are a series of their own.
	if body := q.metrics(); !strings.Contains(body, "\ninterlock_notify_unannounced_total 0\n") {
		t.Errorf("/metrics lacks interlock_notify_unannounced_total:\n%s", grepLines(body, "interlock_notify"))
	}

	t.Run("refused_run_is_not_announced", func(t *testing.T) {
		count := func() int {
			hook.mu.Lock()
			defer hook.mu.Unlock()
			n := 0
			for _, b := range hook.got {
				if b.Event == "approval_needed" && strings.HasPrefix(b.Subject, "op:") {
					n++
				}
			}
			return n
		}
		before := count()
		var run wire.RunResponse
		mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "INC-13"), &run)
		// The second run is refused by the guardrails (billing is taken): nothing waits, nobody is asked.
		if code, _, errs := q.as("operator1", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "INC-14"); code == 0 || !strings.Contains(errs, "guardrails") {
			t.Fatalf("the second run was not refused: %d %s", code, errs)
		}
		if _, ok := hook.waitFor(t, 10*time.Second, func(b notify.WebhookBody) bool { return b.Subject == "op:"+run.Operation.ID }); !ok {
			t.Fatal("no approval request for the first run")
		}
		time.Sleep(2500 * time.Millisecond) // two sequencer rounds
		if got := count() - before; got != 1 {
			t.Errorf("%d approval requests for one waiting operation and one refused run", got)
		}
		q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "attack probe")
	})

	t.Run("disabled_person_cannot_scrape", func(t *testing.T) {
		if code, out, errs := q.as("operator1", "metrics", "--grep", "interlock_log_entries"); code != 0 || !strings.Contains(out, "interlock_log_entries") {
			t.Fatalf("operator1 before being disabled: %d %s %s", code, out, errs)
		}
		q.invitePuppet("admin", "admin2", "admin")
		q.mustChange("admin2", "approver1", "user", "disable", "operator1")
		if code, out, _ := q.as("operator1", "metrics", "--grep", "interlock_log_entries"); code == 0 || strings.Contains(out, "interlock_log_entries") {
			t.Errorf("a disabled person's session still reads /metrics: exit %d\n%s", code, out)
		}
	})
}
