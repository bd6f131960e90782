package cli_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/notify"
)

// hookReceiver is a local HTTPS webhook receiver that checks every
// message's signature the way a real one should, and keeps what verified.
type hookReceiver struct {
	srv *httptest.Server
	key []byte
	mu  sync.Mutex
	got []notify.WebhookBody
	bad []string // why refused messages were refused
	arr chan struct{}
}

func newHookReceiver(t *testing.T, key string) *hookReceiver {
	r := &hookReceiver{key: []byte(key), arr: make(chan struct{}, 100)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		err := notify.Verify(r.key, req.Header.Get(notify.TimestampHeader), req.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute)
		var b notify.WebhookBody
		if err == nil {
			err = json.Unmarshal(body, &b)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.bad = append(r.bad, err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.got = append(r.got, b)
		r.arr <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// waitFor returns the first verified message for which match is true.
func (r *hookReceiver) waitFor(t *testing.T, within time.Duration, match func(notify.WebhookBody) bool) (notify.WebhookBody, bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		for _, b := range r.got {
			if match(b) {
				r.mu.Unlock()
				return b, true
			}
		}
		r.mu.Unlock()
		select {
		case <-r.arr:
		case <-deadline:
			return notify.WebhookBody{}, false
		}
	}
}

// mailServer is an in-process SMTP server (github.com/emersion/go-smtp)
// that offers STARTTLS, accepts PLAIN sign-in only inside TLS, and keeps
// each message with whether it came over TLS.
type mailServer struct {
	addr     string
	user     string
	password string
	mu       sync.Mutex
	msgs     []mailMsg
	arr      chan struct{}
}

type mailMsg struct {
	tls, authed bool
	from        string
	to          []string
	msg         *mail.Message
	body        string
}

type mailSession struct {
	s      *mailServer
	c      *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (m *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (m *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != m.s.user || pass != m.s.password {
			return errors.New("bad credentials")
		}
		m.authed = true
		return nil
	}), nil
}
func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error { m.from = from; return nil }
func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error   { m.to = append(m.to, to); return nil }
func (m *mailSession) Reset()                                      { m.from, m.to = "", nil }
func (m *mailSession) Logout() error                               { return nil }
func (m *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		return err
	}
	_, isTLS := m.c.TLSConnectionState()
	m.s.mu.Lock()
	m.s.msgs = append(m.s.msgs, mailMsg{tls: isTLS, authed: m.authed, from: m.from, to: m.to, msg: msg, body: string(body)})
	m.s.mu.Unlock()
	m.s.arr <- struct{}{}
	return nil
}

func newMailServer(t *testing.T, cert tls.Certificate) *mailServer {
	ms := &mailServer{user: "interlock", password: "smtp-pass-Ω-42", arr: make(chan struct{}, 100)}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &mailSession{s: ms, c: c}, nil }))
	s.Domain = "127.0.0.1"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.AllowInsecureAuth = false
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = ln.Addr().String()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

func (ms *mailServer) waitFor(t *testing.T, within time.Duration, match func(mailMsg) bool) (mailMsg, bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		ms.mu.Lock()
		for _, m := range ms.msgs {
			if match(m) {
				ms.mu.Unlock()
				return m, true
			}
		}
		ms.mu.Unlock()
		select {
		case <-ms.arr:
		case <-deadline:
			return mailMsg{}, false
		}
	}
}

// blackHole accepts TCP connections and never answers: a sink that is
// down in the worst way (every attempt waits for its whole timeout).
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestNotifications: with a signed webhook, an SMTP sink and a sink that
// never answers configured in serve's config, `run` and `approve` through
// the real CLI and server reach the webhook (signature verified) and the
// mailbox (over STARTTLS, signed in) within 2 s, naming the people, the
// runbook and the reason, never a secret's value; the dead sink delays
// neither command, and its failures show in /metrics.
func TestNotifications(t *testing.T) {
	const hookKey = "whsec-test-key-0123456789abcdef"
	hook := newHookReceiver(t, hookKey)
	caFile := filepath.Join(t.TempDir(), "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := newMailServer(t, hook.srv.TLS.Certificates[0]) // httptest's certificate names 127.0.0.1
	dead := blackHole(t)
	q := startServerConfig(t, config.Config{Notifications: config.Notifications{
		Webhooks: []config.WebhookSink{
			{Name: "oncall-hook", URL: hook.srv.URL + "/interlock", HMACSecret: "notify/hook-key", CAFile: caFile},
			{Name: "dead-hook", URL: "https://" + dead + "/x", HMACSecret: "notify/hook-key", Timeout: 4 * time.Second},
		},
		Email: []config.EmailSink{{Name: "oncall-mail", SMTP: ms.addr, From: "Interlock <interlock@example.com>", To: []string{"oncall@example.com"},
			Username: ms.user, PasswordSecret: "notify/smtp-password", CAFile: caFile}},
	}}, app.Options{})
	q.setUp(10)
	q.must(hookKey, "--profile", "admin", "secret", "put", "notify/hook-key")
	q.must(ms.password, "--profile", "admin", "secret", "put", "notify/smtp-password")

	// An approval request: operator1 asks, with a reason that tries Slack markup.
	start := time.Now()
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1",
		"--reason", "INC-7 <!channel> disk full"), &run)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("run took %s with a sink that never answers (4 s per attempt): notifications held it up", d)
	}
	opID := run.Operation.ID
	isOp := func(event string) func(notify.WebhookBody) bool {
		return func(b notify.WebhookBody) bool { return b.Event == event && b.Subject == "op:"+opID }
	}
	b, ok := hook.waitFor(t, 2*time.Second-time.Since(start), isOp("approval_needed"))
	if !ok {
		b, ok = hook.waitFor(t, 10*time.Second, isOp("approval_needed"))
		t.Fatalf("the webhook did not get the approval request within 2 s of run (after %s: %v; refused: %v)", time.Since(start), ok, hook.bad)
	}
	t.Logf("webhook text after %s:\n%s", time.Since(start), b.Text)
	for _, want := range []string{"Approval needed", "operator1", "remove-capacity", "INC-7 &lt;!channel&gt; disk full",
		"interlock approve " + opID, "role approver", "count=1", "service=billing", "Wave 1: host-", "Plan hash: " + run.Operation.Plan.Hash} {
		if !strings.Contains(b.Text, want) {
			t.Errorf("webhook text lacks %q", want)
		}
	}
	if strings.Contains(b.Text, "<!channel>") {
		t.Error("a reason's Slack markup reached the webhook unescaped: it would ping the channel")
	}
	m, ok := ms.waitFor(t, max(2*time.Second-time.Since(start), 0), func(m mailMsg) bool {
		return strings.Contains(m.body, opID) && m.msg.Header.Get("X-Interlock-Event") == "approval_needed"
	})
	if !ok {
		t.Fatalf("no email about %s within 2 s of run", opID)
	}
	if !m.tls || !m.authed {
		t.Errorf("email sent with tls=%v signed-in=%v; want both", m.tls, m.authed)
	}
	subj := m.msg.Header.Get("Subject")
	if !strings.Contains(subj, "operator1 asks to run remove-capacity") || !strings.Contains(m.body, "INC-7 <!channel> disk full") {
		t.Errorf("email subject %q / body:\n%s", subj, m.body)
	}
	for _, secret := range []string{hookKey, ms.password} {
		if strings.Contains(m.body, secret) || strings.Contains(b.Text, secret) {
			t.Errorf("a notification carries the value of a secret")
		}
	}

	// The approval: approver1 approves; the approver is named and approve
	// is not held up by the dead sink either.
	start = time.Now()
	q.mustAs("approver1", "approve", opID, "--otp", q.otp("approver1"))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("approve took %s with a sink that never answers", d)
	}
	b, ok = hook.waitFor(t, 5*time.Second, isOp("approved"))
	if !ok || !strings.Contains(b.Text, "approver1 approved (1 of 1)") || !strings.Contains(b.Title, "approver1 approved operator1's remove-capacity") {
		t.Errorf("approval notice: %v %q\n%s", ok, b.Title, b.Text)
	}

	// A runbook change request, a person's halt (with the reason), a
	// failure that halts by itself, and break-glass.
	dir := t.TempDir()
	rb := applyHoldRunbook(t, q, dir)
	if b, ok := hook.waitFor(t, 5*time.Second, func(b notify.WebhookBody) bool {
		return b.Event == "approval_needed" && b.Subject == "change:"+rb.ID
	}); !ok || !strings.Contains(b.Text, "operator1") || !strings.Contains(b.Text, "interlock change approve "+rb.ID) {
		t.Errorf("change request notice: %v\n%s", ok, b.Text)
	}
	if b, ok := hook.waitFor(t, 5*time.Second, func(b notify.WebhookBody) bool {
		return b.Event == "approved" && b.Subject == "change:"+rb.ID
	}); !ok || !strings.Contains(b.Title, "approver1 approved operator1's change") {
		t.Errorf("change approval notice: %v %q", ok, b.Title)
	}
	halted := runApproved(t, q, "hold", "INC-8")
	waitUntil(t, "the step to start", 20*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "started")); return err == nil })
	q.mustAs("operator1", "ops", "halt", halted, "--reason", "wrong ticket, INC-8")
	if b, ok := hook.waitFor(t, 5*time.Second, func(b notify.WebhookBody) bool { return b.Event == "halted" && b.Subject == "op:"+halted }); !ok ||
		!strings.Contains(b.Text, "operator1 halted the operation. Their reason: wrong ticket, INC-8") {
		t.Errorf("halt notice: %v\n%s", ok, b.Text)
	}
	// Aborted, it gives its host back (the floors count held hosts).
	q.mustAs("operator1", "ops", "abort", halted, "--reason", "replaced by the next one")
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	failed := runApproved(t, q, "hold", "INC-9")
	if b, ok := hook.waitFor(t, 20*time.Second, func(b notify.WebhookBody) bool { return b.Event == "failed" && b.Subject == "op:"+failed }); !ok ||
		!strings.Contains(b.Text, "needs a person") || !strings.Contains(b.Text, "runbook hold") || !strings.Contains(b.Text, "failed or were unreachable (host-") {
		t.Errorf("failure notice: %v\n%s", ok, b.Text)
	}
	q.mustAs("operator1", "ops", "abort", failed, "--reason", "looked at it")
	var bg wire.RunResponse
	mustJSON(t, q.mustAs("admin", "--json", "run", "hold", "--param", "service=billing", "--param", "count=1", "--reason", "INC-10 outage", "--break-glass"), &bg)
	if b, ok := hook.waitFor(t, 5*time.Second, func(b notify.WebhookBody) bool { return b.Event == "break_glass" && b.Subject == "op:"+bg.Operation.ID }); !ok ||
		!strings.Contains(b.Title, "BREAK GLASS: admin runs hold") || !strings.Contains(b.Text, "INC-10 outage") {
		t.Errorf("break-glass notice: %v %q\n%s", ok, b.Title, b.Text)
	}
	if v := metricValue(q.metrics(), "interlock_step_failures_total"); v < 1 {
		t.Errorf("interlock_step_failures_total = %v after a failed step", v)
	}
	if len(hook.bad) > 0 {
		t.Errorf("the receiver refused messages: %v", hook.bad)
	}
	hook.mu.Lock()
	for _, b := range hook.got {
		t.Logf("%s %s: %s\n%s", b.Event, b.Subject, b.Title, b.Text)
	}
	hook.mu.Unlock()

	// The dead sink's failures are on /metrics.
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := q.metrics()
		if strings.Contains(body, `interlock_notify_sent_total{sink="oncall-hook",type="webhook"}`) &&
			metricValue(body, `interlock_notify_attempt_failures_total{sink="dead-hook",type="webhook"}`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count the dead sink's failures:\n%s", grepLines(body, "interlock_notify"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// applyHoldRunbook applies runbook "hold" (proposed by operator1, approved
// by approver1): its step waits for dir/go, then fails if dir/fail exists.
// Not capacity-changing, so that several may run on one service.
func applyHoldRunbook(t *testing.T, q *quickstart, dir string) wire.ChangeRequest {
	t.Helper()
	script := fmt.Sprintf("touch %[1]s/started; while [ ! -e %[1]s/go ]; do sleep 0.1; done; [ ! -e %[1]s/fail ]", dir)
	rb, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(rb), `argv: ["echo", "removing", "{{service}}", "from service"]`, fmt.Sprintf("argv: [\"/bin/sh\", \"-c\", %q]", script), 1)
	text = strings.Replace(text, "name: remove-capacity", "name: hold", 1)
	text = strings.Replace(text, "removes_capacity: true", "removes_capacity: false", 1)
	if !strings.Contains(text, "name: hold") || strings.Contains(text, `"removing"`) {
		t.Fatal("the example runbook changed; update this test's step")
	}
	f := filepath.Join(q.dir, "hold.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return q.mustChange("operator1", "approver1", "runbook", "apply", "-f", f)
}

// runApproved runs runbook on one billing host as operator1 and has
// approver1 approve it; it returns the operation's ID.
func runApproved(t *testing.T, q *quickstart, runbook, reason string) string {
	t.Helper()
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", runbook, "--param", "service=billing", "--param", "count=1", "--reason", reason), &run)
	q.mustAs("approver1", "approve", run.Operation.ID, "--otp", q.otp("approver1"))
	return run.Operation.ID
}

// metricValue returns the value of the series named exactly by series, or -1.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// scrapeToken is the /metrics scrape token the test servers accept; their
// config holds only its SHA-256.
const scrapeToken = "ilk_scrape_test-0123456789abcdef"

var scrapeTokenHashes = func() []string {
	s := sha256.Sum256([]byte(scrapeToken))
	return []string{hex.EncodeToString(s[:])}
}()

// scrapeRequest is GET /metrics with the scrape token.
func scrapeRequest(t *testing.T, server string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, server+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scrapeToken)
	return req
}
