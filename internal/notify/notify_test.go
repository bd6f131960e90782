package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/interlock-dev/interlock/internal/config"
)

type mapSecrets map[string]string

func (m mapSecrets) Secret(_ context.Context, path, _ string) ([]byte, error) {
	v, ok := m[path]
	if !ok {
		return nil, ErrNoSecret
	}
	return []byte(v), nil
}

// An attacker who captured one message can neither replay it later, nor
// re-date it, nor change its body, nor sign with another key.
func TestVerifyRefusesReplayAndTampering(t *testing.T) {
	key := []byte("k1")
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	body := []byte(`{"text":"approve op_1"}`)
	sig := Sign(key, ts, body)
	if err := Verify(key, ts, sig, body, now, 5*time.Minute); err != nil {
		t.Fatalf("a genuine message: %v", err)
	}
	for name, c := range map[string]struct {
		key       []byte
		ts, sig   string
		body      []byte
		now       time.Time
		wantInErr string
	}{
		"replayed an hour later": {key, ts, sig, body, now.Add(time.Hour), "replay"},
		"re-dated":               {key, "1800003600", sig, body, now.Add(time.Hour), "does not match"},
		"body changed":           {key, ts, sig, []byte(`{"text":"approve op_2"}`), now, "does not match"},
		"other key":              {[]byte("k2"), ts, sig, body, now, "does not match"},
		"no timestamp":           {key, "", sig, body, now, "Unix seconds"},
	} {
		err := Verify(c.key, c.ts, c.sig, c.body, c.now, 5*time.Minute)
		if err == nil || !strings.Contains(err.Error(), c.wantInErr) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.wantInErr)
		}
	}
}

func newTestNotifier(t *testing.T, sinks config.Notifications, secrets Secrets) *Notifier {
	t.Helper()
	n, err := New(Config{Sinks: sinks, Secrets: secrets, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Attempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// A receiver that fails twice with 503 gets the message on the third
// attempt; each failed attempt is counted, the message is not.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{"k": "key"})
	w, err := newWebhook(config.WebhookSink{Name: "h", URL: srv.URL, HMACSecret: "k"}, n.secrets, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w.client = srv.Client()
	wk := &worker{name: "h", kind: "webhook", sink: w, queue: make(chan Event, 1)}
	n.add(wk)
	n.deliver(context.Background(), wk, Event{Name: EventApproved, Subject: "op:1", Text: "x"})
	if got := calls.Load(); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	if f := testutil.ToFloat64(n.attemptFailures.WithLabelValues("h", "webhook")); f != 2 {
		t.Errorf("attempt failures %v, want 2", f)
	}
	if f := testutil.ToFloat64(n.sent.WithLabelValues("h", "webhook")); f != 1 {
		t.Errorf("sent %v, want 1", f)
	}
	if f := testutil.ToFloat64(n.failures.WithLabelValues("h", "webhook")); f != 0 {
		t.Errorf("failures %v, want 0", f)
	}
}

// A 4xx answer (the receiver refuses the signature, say) is not retried;
// a missing secret is not retried either; both count as failures.
func TestPermanentFailuresAreNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{"k": "key"})
	for _, secret := range []string{"k", "missing"} {
		w, _ := newWebhook(config.WebhookSink{Name: secret, URL: srv.URL, HMACSecret: secret}, n.secrets, time.Now)
		w.client = srv.Client()
		wk := &worker{name: secret, kind: "webhook", sink: w, queue: make(chan Event, 1)}
		n.add(wk)
		n.deliver(context.Background(), wk, Event{Name: EventFailed})
		if f := testutil.ToFloat64(n.failures.WithLabelValues(secret, "webhook")); f != 1 {
			t.Errorf("%s: failures %v, want 1", secret, f)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("%d requests, want 1 (no retry of a 401, none without the key)", got)
	}
}

// A sink whose queue is full drops the message at once and counts it:
// Notify never waits.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	defer close(block)
	wk := &worker{name: "slow", kind: "webhook", sink: sinkFunc(func(ctx context.Context, _ Event) error { <-block; return nil }), queue: make(chan Event, 2)}
	n.add(wk)
	start := time.Now()
	for range 5 {
		n.Notify(Event{Name: EventHalted})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Notify took %s", d)
	}
	if f := testutil.ToFloat64(n.dropped.WithLabelValues("slow", "webhook")); f != 3 {
		t.Errorf("dropped %v, want 3", f)
	}
}

type sinkFunc func(context.Context, Event) error

func (f sinkFunc) send(ctx context.Context, ev Event) error { return f(ctx, ev) }

// A mail server that does not offer STARTTLS gets nothing: no password,
// no message, and no retry.
func TestEmailRefusesServerWithoutSTARTTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("220 plain ESMTP\r\n"))
		buf := make([]byte, 4096)
		var all strings.Builder
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			k, err := c.Read(buf)
			all.Write(buf[:k])
			if strings.Contains(all.String(), "EHLO") && !strings.Contains(all.String(), "sent") {
				_, _ = c.Write([]byte("250-plain\r\n250 AUTH PLAIN\r\n"))
				all.WriteString("sent")
			}
			if err != nil {
				got <- all.String()
				return
			}
		}
	}()
	e, err := newEmail(config.EmailSink{Name: "m", SMTP: ln.Addr().String(), From: "a@example.com", To: []string{"b@example.com"},
		Username: "u", PasswordSecret: "p"}, newSecretCache(mapSecrets{"p": "hunter2-password"}, time.Now), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	err = e.send(context.Background(), Event{Name: EventApprovalNeeded, Title: "t", Text: "body"})
	var perm permanentError
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || !errorsAs(err, &perm) {
		t.Fatalf("send to a server without STARTTLS: %v", err)
	}
	ln.Close()
	if seen := <-got; strings.Contains(seen, "AUTH") || strings.Contains(seen, "MAIL") || strings.Contains(seen, "hunter2") {
		t.Errorf("the client said more than EHLO to a server without TLS: %q", seen)
	}
}

func TestSlackEscapeAndHeaderSafety(t *testing.T) {
	if got := slackEscape("<!channel> & <https://evil|ok>"); got != "&lt;!channel&gt; &amp; &lt;https://evil|ok&gt;" {
		t.Errorf("slackEscape: %q", got)
	}
	if got := oneLine("ok\r\nBcc: x@evil.example"); strings.ContainsAny(got, "\r\n") || strings.Contains(got, "Bcc") {
		t.Errorf("oneLine let a header through: %q", got)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// A receiver that answers with a redirect does not get the signed body
// sent on to where it points: the message fails for good instead.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{"k": "key"})
	w, _ := newWebhook(config.WebhookSink{Name: "r", URL: srv.URL, HMACSecret: "k"}, n.secrets, time.Now)
	w.client.Transport = srv.Client().Transport
	wk := &worker{name: "r", kind: "webhook", sink: w, queue: make(chan Event, 1)}
	n.add(wk)
	n.deliver(context.Background(), wk, Event{Name: EventApprovalNeeded, Text: "approve op_1"})
	if elsewhere.Load() != 0 {
		t.Fatal("the signed message followed a redirect to another server")
	}
	if f := testutil.ToFloat64(n.failures.WithLabelValues("r", "webhook")); f != 1 {
		t.Errorf("failures %v, want 1", f)
	}
}
