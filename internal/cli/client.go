package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/pki"
)

// anonClient is a client with no session, for bootstrap, login and
// invitation acceptance. With a key, every request carries a DPoP proof.
func (e *env) anonClient(server, fingerprint string, key ed25519.PrivateKey) (*apiclient.Client, error) {
	tlsCfg, err := pki.PinnedTLSConfig(fingerprint)
	if err != nil {
		return nil, err
	}
	cfg := apiclient.Config{Server: server, TLS: tlsCfg}
	if key != nil {
		cfg.Prove = prover(key)
	}
	return apiclient.New(cfg)
}

// client is a client signed in with the current profile's session.
func (e *env) client() (*apiclient.Client, *profile, error) {
	p, err := e.loadProfile()
	if err != nil {
		return nil, nil, err
	}
	if p.Token == "" {
		return nil, nil, fmt.Errorf("profile %q has no session: run `interlock login`", e.profileName())
	}
	if !p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt) {
		return nil, nil, fmt.Errorf("the session of profile %q expired at %s: run `interlock login` again", e.profileName(), p.ExpiresAt.Local().Format(time.RFC1123))
	}
	key, err := p.deviceKey(false)
	if err != nil {
		return nil, nil, err
	}
	tlsCfg, err := pki.PinnedTLSConfig(p.CAFingerprint)
	if err != nil {
		return nil, nil, err
	}
	c, err := apiclient.New(apiclient.Config{Server: p.Server, TLS: tlsCfg, Token: p.Token, Prove: prover(key)})
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

func prover(key ed25519.PrivateKey) apiclient.Prover {
	return func(method, url, token string) (string, error) {
		return dpop.NewProof(key, method, url, token, time.Now(), rand.Reader)
	}
}
