package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/config"
)

// The webhook's headers. The signature covers the timestamp and the body
// (see [Sign]), so a receiver that checks both refuses a replayed or
// re-dated message.
const (
	SignatureHeader = "X-Interlock-Signature" // "sha256=" + hex HMAC-SHA256
	TimestampHeader = "X-Interlock-Timestamp" // Unix seconds when this attempt was signed
	DeliveryHeader  = "X-Interlock-Delivery"  // the same for every attempt of one message; a copy of the signed body's "delivery"
	EventHeader     = "X-Interlock-Event"
)

// Sign returns the signature header's value for body sent at timestamp:
// "sha256=" + hex(HMAC-SHA256(key, timestamp + "." + body)).
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does: it checks signature against key,
// timestamp and body in constant time, and refuses a timestamp more than
// tolerance away from now (a replay of an old message). An empty key is
// refused: anyone can sign with it, so a receiver whose key did not load
// would otherwise accept every forgery.
func Verify(key []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(key) == 0 {
		return errors.New("the signing key is empty: every signature would verify")
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("the timestamp header is not Unix seconds")
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("the message was signed %s from now, more than the %s allowed: a replay?", d.Round(time.Second), tolerance)
	}
	want := Sign(key, timestamp, body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return errors.New("the signature does not match the body and timestamp")
	}
	return nil
}

// WebhookBody is the JSON a webhook receives. Text is Slack's field, so an
// incoming-webhook URL works as it is.
type WebhookBody struct {
	Text     string         `json:"text"`
	Event    string         `json:"event"`
	Subject  string         `json:"subject"`
	Title    string         `json:"title"`
	Time     time.Time      `json:"time"`
	LogIndex uint64         `json:"log_index"`
	Details  map[string]any `json:"details,omitempty"`
	// Delivery is DeliveryHeader's value, inside the signed body: a
	// receiver deduplicates on this one (a header is not signed, so a
	// replay could carry a fresh one).
	Delivery string `json:"delivery"`
}

type webhook struct {
	cfg     config.WebhookSink
	secrets *secretCache
	now     func() time.Time
	client  *http.Client
	timeout time.Duration
}

func newWebhook(cfg config.WebhookSink, secrets *secretCache, now func() time.Time) (*webhook, error) {
	tlsCfg, err := tlsConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment, MaxIdleConns: 2,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: timeout, ForceAttemptHTTP2: true}
	client := &http.Client{Transport: tr, Timeout: timeout,
		// A redirect would send the signed body somewhere nobody configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &webhook{cfg: cfg, secrets: secrets, now: now, client: client, timeout: timeout}, nil
}

// tlsConfig trusts the system roots plus caFile, if given.
func tlsConfig(caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	c.RootCAs = pool
	return c, nil
}

func (w *webhook) send(ctx context.Context, ev Event) error {
	why := "sign notifications for webhook " + w.cfg.Name
	key, err := w.secrets.get(ctx, w.cfg.HMACSecret, why)
	if err != nil {
		return err
	}
	if len(key) == 0 {
		// Anyone can sign with the empty key: a receiver could not tell
		// these messages from forgeries.
		return permanentError{fmt.Errorf("the secret %s (hmac_secret) is empty; put a random key in it", w.cfg.HMACSecret)}
	}
	target := w.cfg.URL
	if w.cfg.URLSecret != "" {
		u, err := w.secrets.get(ctx, w.cfg.URLSecret, "address of webhook "+w.cfg.Name)
		if err != nil {
			return err
		}
		target = strings.TrimSpace(string(u))
		if p, err := url.Parse(target); err != nil || p.Scheme != "https" || p.Host == "" {
			return permanentError{fmt.Errorf("the secret %s does not hold an https:// URL", w.cfg.URLSecret)}
		}
	}
	delivery := deliveryID(ev)
	body, err := json.Marshal(WebhookBody{Text: slackEscape(ev.Text), Event: ev.Name, Subject: ev.Subject, Title: ev.Title,
		Time: ev.Time.UTC(), LogIndex: ev.LogIndex, Details: ev.Details, Delivery: delivery})
	if err != nil {
		return permanentError{fmt.Errorf("encode message: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("build request: %w", err)}
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "interlock-notify/1")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(key, ts, body))
	req.Header.Set(DeliveryHeader, delivery)
	req.Header.Set(EventHeader, ev.Name)
	resp, err := w.client.Do(req)
	if err != nil {
		return redactURL(err, target)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("the receiver answered %s", resp.Status)
	default:
		return permanentError{fmt.Errorf("the receiver answered %s", resp.Status)}
	}
}

// deliveryID names one message across its attempts: the log entry it
// announces and the event (one entry may announce only one event).
func deliveryID(ev Event) string {
	if ev.LogIndex == 0 && ev.Subject == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	return fmt.Sprintf("%d-%s", ev.LogIndex, ev.Name)
}

// redactURL keeps a URL that is a credential (url_secret) out of error
// messages and so out of logs: net/http errors quote the URL, in a form of
// their own (re-encoded, a password masked as "***") that a replace of the
// URL's text would miss, so the *url.Error's URL is dropped as a whole.
func redactURL(err error, target string) error {
	msg := err.Error()
	var uerr *url.Error
	if errors.As(err, &uerr) {
		msg = uerr.Op + " [webhook url]: " + uerr.Err.Error()
	}
	if target != "" {
		msg = strings.ReplaceAll(msg, target, "[webhook url]")
		if u, perr := url.Parse(target); perr == nil {
			msg = strings.ReplaceAll(msg, u.Redacted(), "[webhook url]")
		}
	}
	return errors.New(msg)
}

// slackEscape escapes the three characters Slack reads as markup, so that
// text a person typed (a reason such as "<!channel>" or "<https://x|y>")
// can neither ping a channel nor hide a link in the message. It also puts
// an invisible word joiner (U+2060) after every "@": Slack-compatible
// receivers such as Mattermost read a bare "@channel" or "@alice" as a
// mention, and the joiner breaks the name off without changing what a
// reader sees. (Interlock's own words never mention anyone.)
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u2060").Replace(s)
}
