package cli

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
)

// OpenBrowser opens url in the person's browser. Tests replace it with a
// function that follows the identity provider's redirects themselves.
var OpenBrowser = func(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// ssoFlags are login's single sign-on options.
type ssoFlags struct {
	on, noBrowser, fresh bool
	issuer               string
}

// ssoResult is what reached the loopback redirect.
type ssoResult struct {
	code string
	err  error
}

// ssoLogin signs in through the server's identity provider: the server
// starts the sign-in bound to this device's key and answers the IdP's URL;
// the browser brings the code back to a listener on 127.0.0.1 (RFC 8252);
// the server exchanges it, verifies the ID token and answers a session
// bound to the same key. The client secret never reaches this machine.
func (e *env) ssoLogin(c *apiclient.Client, jwk, device string, f ssoFlags) (wire.SSOLoginResponse, error) {
	if f.noBrowser {
		return e.ssoDeviceLogin(c, jwk, device, f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return wire.SSOLoginResponse{}, fmt.Errorf("listen on loopback for the identity provider's redirect: %w", err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://%s/callback", ln.Addr().String())
	var st wire.SSOStartResponse
	if err := c.Do(e.ctx, "POST", "/v1/sso/start", wire.SSOStartRequest{Issuer: f.issuer, RedirectURI: redirect, Fresh: f.fresh}, &st); err != nil {
		return wire.SSOLoginResponse{}, err
	}
	results := make(chan ssoResult, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res ssoResult
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1:
			// Not our sign-in (a stale tab, or someone else's page): ignore it.
			http.Error(w, "This is not the sign-in Interlock is waiting for.", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("the identity provider refused the sign-in: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			res.err = errors.New("the identity provider sent no authorization code back")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Signed in to Interlock: you can close this window and go back to the terminal."
		if res.err != nil {
			msg = res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>Interlock</title><p>%s</p>\n", html.EscapeString(msg))
		select {
		case results <- res:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	fmt.Fprintf(e.stderr, "Sign in at %s in your browser", st.Issuer)
	if err := OpenBrowser(st.AuthURL); err != nil {
		fmt.Fprintf(e.stderr, " (it could not be opened: %v); open\n\n  %s\n\n", err, st.AuthURL)
	} else {
		fmt.Fprintf(e.stderr, " (opened; if it did not, open %s)\n", st.AuthURL)
	}
	ctx, cancel := context.WithDeadline(e.ctx, st.ExpiresAt)
	defer cancel()
	var res ssoResult
	select {
	case res = <-results:
	case <-ctx.Done():
		return wire.SSOLoginResponse{}, fmt.Errorf("no sign-in came back from the identity provider before %s; run interlock login --sso again", st.ExpiresAt.Local().Format(time.Kitchen))
	}
	if res.err != nil {
		return wire.SSOLoginResponse{}, res.err
	}
	var resp wire.SSOLoginResponse
	if err := c.Do(e.ctx, "POST", "/v1/sso/finish", wire.SSOFinishRequest{State: st.State, Code: res.code, DeviceJWK: jwk, DeviceName: device}, &resp); err != nil {
		return wire.SSOLoginResponse{}, err
	}
	return resp, nil
}

// ssoDeviceLogin signs in with the device authorization grant (RFC 8628),
// for a machine without a browser: the person opens the URL on any device
// and enters the code, while the CLI polls the server, which polls the IdP.
// The session is still bound to this machine's device key.
func (e *env) ssoDeviceLogin(c *apiclient.Client, jwk, device string, f ssoFlags) (wire.SSOLoginResponse, error) {
	var st wire.SSOStartResponse
	if err := c.Do(e.ctx, "POST", "/v1/sso/start", wire.SSOStartRequest{Issuer: f.issuer, Device: true, Fresh: f.fresh}, &st); err != nil {
		return wire.SSOLoginResponse{}, err
	}
	fmt.Fprintf(e.stderr, "To sign in at %s, open %s on any device and enter the code\n\n  %s\n\n", st.Issuer, st.VerificationURI, st.UserCode)
	if st.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "(or open %s)\n", st.VerificationURIComplete)
	}
	interval := time.Duration(max(st.IntervalS, 1)) * time.Second
	for {
		var resp wire.SSOLoginResponse
		err := c.Do(e.ctx, "POST", "/v1/sso/finish", wire.SSOFinishRequest{State: st.State, DeviceJWK: jwk, DeviceName: device}, &resp)
		if apiclient.Code(err) != "sso_pending" {
			return resp, err
		}
		if time.Now().Add(interval).After(st.ExpiresAt) {
			return wire.SSOLoginResponse{}, fmt.Errorf("the sign-in was not approved before %s; run interlock login --sso --no-browser again", st.ExpiresAt.Local().Format(time.Kitchen))
		}
		select {
		case <-e.ctx.Done():
			return wire.SSOLoginResponse{}, e.ctx.Err()
		case <-time.After(interval):
		}
	}
}
