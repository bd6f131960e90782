package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/config"
)

// email sends over SMTP with net/smtp: it is enough for one message to a
// submission server, and the one rule that matters — never send (or
// authenticate) before STARTTLS — is a few lines here, checked by a test.
type email struct {
	cfg     config.EmailSink
	secrets *secretCache
	now     func() time.Time
	host    string
	timeout time.Duration
}

func newEmail(cfg config.EmailSink, secrets *secretCache, now func() time.Time) (*email, error) {
	host, _, err := net.SplitHostPort(cfg.SMTP)
	if err != nil {
		return nil, fmt.Errorf("smtp %q: %w", cfg.SMTP, err)
	}
	if _, err := tlsConfig(cfg.CAFile); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &email{cfg: cfg, secrets: secrets, now: now, host: host, timeout: timeout}, nil
}

func (e *email) send(ctx context.Context, ev Event) error {
	var password []byte
	if e.cfg.Username != "" {
		var err error
		if password, err = e.secrets.get(ctx, e.cfg.PasswordSecret, "sign in to SMTP for email sink "+e.cfg.Name); err != nil {
			return err
		}
	}
	msg, err := e.message(ev)
	if err != nil {
		return permanentError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.cfg.SMTP)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", e.cfg.SMTP, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return fmt.Errorf("smtp greeting from %s: %w", e.cfg.SMTP, err)
	}
	defer c.Close()
	if err := c.Hello(helloName()); err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return permanentError{fmt.Errorf("%s does not offer STARTTLS; Interlock never sends mail (or a password) in clear", e.cfg.SMTP)}
	}
	tlsCfg, err := tlsConfig(e.cfg.CAFile)
	if err != nil {
		return permanentError{err}
	}
	tlsCfg.ServerName = e.host
	if err := c.StartTLS(tlsCfg); err != nil {
		return fmt.Errorf("smtp STARTTLS with %s: %w", e.cfg.SMTP, err)
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, string(password), e.host)); err != nil {
			return fmt.Errorf("smtp sign-in as %s: %w", e.cfg.Username, err)
		}
	}
	from, _ := mail.ParseAddress(e.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	for _, to := range e.cfg.To {
		a, _ := mail.ParseAddress(to)
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp message not accepted: %w", err)
	}
	_ = c.Quit()
	return nil
}

// message renders ev as an RFC 5322 message: plain UTF-8 text, quoted-
// printable, with a subject that cannot carry a header line break.
func (e *email) message(ev Event) ([]byte, error) {
	var b bytes.Buffer
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	from, _ := mail.ParseAddress(e.cfg.From)
	var tos []string
	for _, to := range e.cfg.To {
		a, _ := mail.ParseAddress(to)
		tos = append(tos, a.String())
	}
	domain := "interlock.invalid"
	if _, d, ok := strings.Cut(from.Address, "@"); ok {
		domain = d
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", strings.Join(tos, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine("[Interlock] "+ev.Title)))
	hdr("Date", e.now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("X-Interlock-Event", ev.Name)
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(ev.Text, "\n", "\r\n") + "\r\n")); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// oneLine keeps only the first line of s, without control characters: a
// header value must not start another header.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func helloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
