package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config that would put a secret in the file, send in clear or be
// ambiguous is refused at start, each problem in a sentence.
func TestNotificationsValidate(t *testing.T) {
	bad := Notifications{
		Webhooks: []WebhookSink{
			{Name: "a", URL: "http://hooks.example.com/x", HMACSecret: "k"},
			{Name: "a", URL: "https://user:pw@hooks.example.com/x", HMACSecret: "k"},
			{Name: "c", URL: "https://hooks.example.com/x", URLSecret: "u", HMACSecret: "k"},
			{Name: "d", URL: "https://hooks.example.com/x", Events: []string{"approvd"}},
		},
		Email: []EmailSink{{Name: "m", SMTP: "smtp.example.com", From: "not an address", Username: "u"}},
	}
	err := Config{Notifications: bad}.Validate()
	if err == nil {
		t.Fatal("a bad notifications block was accepted")
	}
	for _, want := range []string{
		"notifications.webhooks[0]: url must be an https:// URL",
		`the name "a" is used twice`,
		"url carries credentials or a query; keep such a URL in a secret",
		"notifications.webhooks[2]: give exactly one of url and url_secret",
		"notifications.webhooks[3]: needs hmac_secret",
		`unknown event "approvd"`,
		`smtp "smtp.example.com" must be host:port`,
		`from "not an address" is not an email address`,
		"needs at least one address in to",
		"give both username and password_secret, or neither",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

func TestNotificationsLoadYAML(t *testing.T) {
	f := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(f, []byte(`
notifications:
  webhooks:
    - name: oncall
      url_secret: notify/slack-url
      hmac_secret: notify/hook-key
      events: [approval_needed, break_glass]
  email:
    - name: mail
      smtp: smtp.example.com:587
      from: interlock@example.com
      to: [oncall@example.com]
      username: interlock
      password_secret: notify/smtp-password
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := c.Notifications.Webhooks[0]; w.URLSecret != "notify/slack-url" || len(w.Events) != 2 || c.Notifications.Email[0].PasswordSecret != "notify/smtp-password" {
		t.Errorf("loaded %+v", c.Notifications)
	}
}

// The example in examples/serve.yaml loads and validates.
func TestExampleServeConfig(t *testing.T) {
	c, err := Load("../../examples/serve.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Notifications.Webhooks) != 1 || len(c.Notifications.Email) != 1 || len(c.MetricsTokenSHA256) != 0 {
		t.Errorf("examples/serve.yaml: %+v", c)
	}
}
