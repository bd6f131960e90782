package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"time"
)

// Notifications configures where `interlock serve` announces what people
// must act on (internal/notify). No secret is written here: the webhook's
// signing key, a webhook URL that is itself a credential, and the SMTP
// password are paths in Interlock's secrets store (`interlock secret put`),
// read by the server when it sends.
type Notifications struct {
	// QueueSize bounds each sink's queue of undelivered messages; 0 means
	// 1000. A message that finds its queue full is dropped and counted.
	QueueSize int           `yaml:"queue_size"`
	Webhooks  []WebhookSink `yaml:"webhooks"`
	Email     []EmailSink   `yaml:"email"`
}

// NotifyEvents are the events a sink may subscribe to.
var NotifyEvents = []string{"approval_needed", "approved", "halted", "failed", "break_glass", "misuse"}

// WebhookSink posts each message as JSON with a Slack-compatible "text"
// field, signed with HMAC-SHA256.
type WebhookSink struct {
	Name string `yaml:"name"`
	// URL is the https:// endpoint. URLSecret, instead, names a secret
	// holding it (Slack's incoming-webhook URLs are credentials).
	URL       string `yaml:"url"`
	URLSecret string `yaml:"url_secret"`
	// HMACSecret names the secret whose value keys the signature header.
	HMACSecret string `yaml:"hmac_secret"`
	// CAFile is a PEM file trusted beside the system roots.
	CAFile string `yaml:"ca_file"`
	// Events limits what this sink receives; empty means all.
	Events []string `yaml:"events"`
	// Timeout bounds one attempt; 0 means 5 s.
	Timeout time.Duration `yaml:"timeout"`
}

// EmailSink sends each message over SMTP, always after STARTTLS.
type EmailSink struct {
	Name string `yaml:"name"`
	// SMTP is host:port of the submission server (usually port 587).
	SMTP string   `yaml:"smtp"`
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// Username and PasswordSecret authenticate (PLAIN, inside TLS);
	// both empty sends without authentication.
	Username       string `yaml:"username"`
	PasswordSecret string `yaml:"password_secret"`
	// CAFile is a PEM file trusted beside the system roots.
	CAFile  string        `yaml:"ca_file"`
	Events  []string      `yaml:"events"`
	Timeout time.Duration `yaml:"timeout"`
}

// validate reports every problem in n at once.
func (n Notifications) validate() error {
	var errs []error
	if n.QueueSize < 0 || n.QueueSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("notifications.queue_size %d: must be between 0 and 1000000", n.QueueSize))
	}
	names := map[string]bool{}
	name := func(kind string, i int, s string) string {
		where := fmt.Sprintf("notifications.%s[%d]", kind, i)
		if s == "" {
			errs = append(errs, fmt.Errorf("%s: needs a name (it labels the sink in logs and metrics)", where))
		} else if names[s] {
			errs = append(errs, fmt.Errorf("%s: the name %q is used twice", where, s))
		}
		names[s] = true
		return where
	}
	events := func(where string, es []string, timeout time.Duration) {
		for _, e := range es {
			if !slices.Contains(NotifyEvents, e) {
				errs = append(errs, fmt.Errorf("%s: unknown event %q (known: %v)", where, e, NotifyEvents))
			}
		}
		if timeout < 0 || timeout > 5*time.Minute {
			errs = append(errs, fmt.Errorf("%s: timeout %s must be between 0 and 5m", where, timeout))
		}
	}
	for i, w := range n.Webhooks {
		where := name("webhooks", i, w.Name)
		switch {
		case (w.URL == "") == (w.URLSecret == ""):
			errs = append(errs, fmt.Errorf("%s: give exactly one of url and url_secret", where))
		case w.URL != "":
			if u, err := url.Parse(w.URL); err != nil || u.Scheme != "https" || u.Host == "" {
				errs = append(errs, fmt.Errorf("%s: url must be an https:// URL", where))
			} else if u.User != nil || u.RawQuery != "" {
				errs = append(errs, fmt.Errorf("%s: url carries credentials or a query; keep such a URL in a secret and name it with url_secret", where))
			}
		}
		if w.HMACSecret == "" {
			errs = append(errs, errors.New(where+": needs hmac_secret, the path of the secret that signs each message (interlock secret put PATH)"))
		}
		events(where, w.Events, w.Timeout)
	}
	for i, m := range n.Email {
		where := name("email", i, m.Name)
		if _, _, err := net.SplitHostPort(m.SMTP); err != nil {
			errs = append(errs, fmt.Errorf("%s: smtp %q must be host:port", where, m.SMTP))
		}
		if _, err := mail.ParseAddress(m.From); err != nil {
			errs = append(errs, fmt.Errorf("%s: from %q is not an email address", where, m.From))
		}
		if len(m.To) == 0 {
			errs = append(errs, errors.New(where+": needs at least one address in to"))
		}
		for _, to := range m.To {
			if _, err := mail.ParseAddress(to); err != nil {
				errs = append(errs, fmt.Errorf("%s: to %q is not an email address", where, to))
			}
		}
		if (m.Username == "") != (m.PasswordSecret == "") {
			errs = append(errs, errors.New(where+": give both username and password_secret, or neither"))
		}
		events(where, m.Events, m.Timeout)
	}
	return errors.Join(errs...)
}
