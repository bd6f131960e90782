package app

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/interlock-dev/interlock/internal/console"
	"github.com/interlock-dev/interlock/internal/passkey"
)

// handler is everything the HTTPS port serves: the web console under
// /ui/ (which calls the API in-process, as the signed-in person), `GET /`
// sending a browser there, and the API for everything else.
func (a *App) handler() (http.Handler, error) {
	ui, err := console.New(console.Config{API: a.API, Sessions: a.Identity, Passkeys: a.Passkeys,
		AllowSignIn: a.API.AllowPublicWrite, Now: a.now, Log: a.log})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.Handle("/", a.API.Handler())
	return mux, nil
}

// newPasskeys makes the passkey service. Its relying party is the first
// DNS name among server_names, or localhost: WebAuthn refuses IP
// addresses, so a console reached at https://127.0.0.1 offers passwords
// and one-time codes only.
func (a *App) newPasskeys() (*passkey.Service, error) {
	rp := "localhost"
	for _, n := range a.cfg.ServerNames {
		if net.ParseIP(n) == nil {
			rp = n
			break
		}
	}
	ids := a.db.IdentityStore()
	return passkey.New(passkey.Config{Store: a.db.PasskeyStore(), RPID: rp, Now: a.now,
		Origins: func() []string { return a.consoleOrigins },
		Names: func(ctx context.Context, personID string) (string, error) {
			p, err := ids.PersonByID(ctx, personID)
			return p.Username, err
		}})
}

// consoleOrigins are the origins a browser may reach the console at: each
// DNS name of the server certificate with the listening port.
func consoleOrigins(serverNames []string, addr net.Addr) []string {
	_, port, _ := net.SplitHostPort(addr.String())
	var out []string
	for _, n := range append([]string{"localhost"}, serverNames...) {
		if net.ParseIP(n) != nil {
			continue
		}
		out = append(out, "https://"+net.JoinHostPort(n, port))
		if port == "443" {
			out = append(out, "https://"+n)
		}
	}
	return out
}
