package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
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

// TestVerifyRefusesForgeries: what an attacker who saw one genuine message
// (but not the key) can send a receiver that calls Verify: a re-dated,
// future-dated or re-encoded signature, an empty or garbled one, or a
// message signed with the empty key that a careless receiver configured.
func TestVerifyRefusesForgeries(t *testing.T) {
	key := []byte("whsec-0123456789")
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	body := []byte(`{"text":"approve op_1"}`)
	sig := Sign(key, ts, body)
	hexPart := strings.TrimPrefix(sig, "sha256=")
	for name, c := range map[string]struct {
		key     []byte
		ts, sig string
		body    []byte
	}{
		"an hour in the future":             {key, "1800003600", Sign(key, "1800003600", body), body},
		"the timestamp with a plus sign":    {key, "+1800000000", sig, body},
		"the timestamp with a leading zero": {key, "01800000000", sig, body},
		"the largest timestamp":             {key, "9223372036854775807", Sign(key, "9223372036854775807", body), body},
		"the smallest timestamp":            {key, "-9223372036854775808", Sign(key, "-9223372036854775808", body), body},
		"an empty signature":                {key, ts, "", body},
		"only the prefix":                   {key, ts, "sha256=", body},
		"no prefix":                         {key, ts, hexPart, body},
		"upper-case hex":                    {key, ts, "sha256=" + strings.ToUpper(hexPart), body},
		"upper-case prefix":                 {key, ts, "SHA256=" + hexPart, body},
		"non-hex":                           {key, ts, "sha256=" + strings.Repeat("zz", 32), body},
		"two signatures":                    {key, ts, sig + "," + sig, body},
		"over another body":                 {key, ts, Sign(key, ts, []byte(`{"text":"approve op_2"}`)), body},
		"the body with a trailing newline":  {key, ts, sig, append(append([]byte{}, body...), '\n')},
		"signed with the empty key":         {nil, ts, Sign(nil, ts, body), body},
		"signed with an empty key (bytes)":  {[]byte{}, ts, Sign([]byte{}, ts, body), body},
	} {
		if err := Verify(c.key, c.ts, c.sig, c.body, now, 5*time.Minute); err == nil {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
}

// TestWebhookRefusesEmptySigningKey: a webhook's hmac_secret that holds
// nothing (a `secret put` of an empty file) would sign every message with
// a key anyone knows; the message is not sent, the failure is counted.
func TestWebhookRefusesEmptySigningKey(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	defer srv.Close()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{"k": ""})
	w, err := newWebhook(config.WebhookSink{Name: "r", URL: srv.URL, HMACSecret: "k"}, n.secrets, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w.client.Transport = srv.Client().Transport
	wk := &worker{name: "r", kind: "webhook", sink: w, queue: make(chan Event, 1)}
	n.add(wk)
	n.deliver(context.Background(), wk, Event{Name: EventApprovalNeeded, Text: "approve op_1"})
	if got.Load() != 0 {
		t.Error("a message signed with the empty key was sent")
	}
	if f := testutil.ToFloat64(n.failures.WithLabelValues("r", "webhook")); f != 1 {
		t.Errorf("failures %v, want 1", f)
	}
	if f := testutil.ToFloat64(n.attemptFailures.WithLabelValues("r", "webhook")); f != 1 {
		t.Errorf("attempts %v, want 1 (an empty key is not retried)", f)
	}
}

// TestWebhookURLSecretStaysOutOfLogs: a url_secret is a credential (a
// Slack URL's path, or a receiver's user and password in the URL); no
// failure puts any part of it in the log, whatever form net/http quotes
// the URL in (it masks a password as "***", which a plain replace of the
// URL misses).
func TestWebhookURLSecretStaysOutOfLogs(t *testing.T) {
	for _, target := range []string{
		"https://bot:pw-0123456789@127.0.0.1:1/services/T0/secretpath-42",
		"https://127.0.0.1:1/services/T0/sécretpath-42",
	} {
		var logged bytes.Buffer
		n, err := New(Config{Secrets: mapSecrets{"k": "key", "u": target}, Log: slog.New(slog.NewTextHandler(&logged, nil)),
			Backoff: time.Millisecond, MaxBackoff: time.Millisecond, Attempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		w, err := newWebhook(config.WebhookSink{Name: "r", URLSecret: "u", HMACSecret: "k", Timeout: 2 * time.Second}, n.secrets, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		wk := &worker{name: "r", kind: "webhook", sink: w, queue: make(chan Event, 1)}
		n.add(wk)
		n.deliver(context.Background(), wk, Event{Name: EventApprovalNeeded, Text: "approve op_1"})
		if !strings.Contains(logged.String(), "notification not delivered") {
			t.Fatalf("nothing logged:\n%s", logged.String())
		}
		for _, part := range []string{"secretpath", "sécret", "s%C3%A9cret", "bot", "pw-0123456789"} {
			if strings.Contains(logged.String(), part) {
				t.Errorf("the log carries %q of the url_secret:\n%s", part, logged.String())
			}
		}
	}
}

// TestDeliveryIDIsSigned: a receiver deduplicates on the delivery ID; one
// in an unsigned header alone lets whoever saw a message replay it within
// the timestamp's tolerance under a fresh ID. The body (which the
// signature covers) carries the same ID.
func TestDeliveryIDIsSigned(t *testing.T) {
	type got struct {
		header string
		body   WebhookBody
	}
	arrived := make(chan got, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b WebhookBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		arrived <- got{r.Header.Get(DeliveryHeader), b}
	}))
	defer srv.Close()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{"k": "key"})
	w, err := newWebhook(config.WebhookSink{Name: "r", URL: srv.URL, HMACSecret: "k"}, n.secrets, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w.client.Transport = srv.Client().Transport
	wk := &worker{name: "r", kind: "webhook", sink: w, queue: make(chan Event, 1)}
	n.add(wk)
	n.deliver(context.Background(), wk, Event{Name: EventApprovalNeeded, Subject: "op:op_1", LogIndex: 42, Text: "approve op_1"})
	g := <-arrived
	if g.header == "" || g.body.Delivery != g.header {
		t.Errorf("delivery header %q, body's delivery %q: want the same, in the signed body", g.header, g.body.Delivery)
	}
}

// TestSlackEscapeDefusesAtMentions: Slack reads mentions only in <…>
// (escaped), but Slack-compatible receivers (Mattermost) read a bare
// "@channel", "@all" or "@alice" in an incoming webhook's text; a reason
// typed with one must not ping a channel or a person.
func TestSlackEscapeDefusesAtMentions(t *testing.T) {
	got := slackEscape("INC-1 @channel @here @all @everyone @alice ops@example.com")
	for i := 0; i+1 < len(got); i++ {
		if got[i] == '@' && (got[i+1] >= 'a' && got[i+1] <= 'z' || got[i+1] >= 'A' && got[i+1] <= 'Z' || got[i+1] >= '0' && got[i+1] <= '9') {
			t.Fatalf("an @mention survives: %q", got)
		}
	}
	if !strings.Contains(got, "INC-1 @") || !strings.Contains(got, "channel") {
		t.Errorf("the text itself was lost: %q", got)
	}
}

// TestEmailBlackHoleTimesOut: an SMTP server that accepts the connection
// and never greets holds one attempt for the sink's timeout, no longer.
func TestEmailBlackHoleTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	n := newTestNotifier(t, config.Notifications{}, mapSecrets{})
	e, err := newEmail(config.EmailSink{Name: "m", SMTP: ln.Addr().String(), From: "i@example.com", To: []string{"o@example.com"}, Timeout: 300 * time.Millisecond}, n.secrets, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	wk := &worker{name: "m", kind: "email", sink: e, queue: make(chan Event, 1)}
	n.add(wk)
	start := time.Now()
	n.deliver(context.Background(), wk, Event{Name: EventApprovalNeeded, Title: "t", Text: "x"})
	// 4 attempts of 300 ms and backoff of at most 40 ms between them.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("delivery to a silent SMTP server took %s", d)
	}
	if f := testutil.ToFloat64(n.failures.WithLabelValues("m", "email")); f != 1 {
		t.Errorf("failures %v, want 1", f)
	}
}
