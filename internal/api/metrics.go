package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// metricsHandler serves /metrics to a scraper holding a configured bearer
// token, or to a signed-in person whose policy allows metrics.read (the
// default gives it to every role from viewer up). Anyone else gets 401:
// the figures (waiting approvals, agents, failures) describe the fleet.
//
// Tokens are compared as SHA-256 hashes in constant time, against every
// configured hash, so neither the config nor the timing tells a token.
func (s *Server) metricsHandler(h http.Handler, tokenHashes [][32]byte) http.Handler {
	session := s.wrap(Route{Pattern: "GET /metrics", Action: policy.ActionMetricsRead,
		Handle: func(c *Call) error { h.ServeHTTP(c.W, c.R); return nil }})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			session.ServeHTTP(w, r) // a DPoP session, or a 401 that says what is missing
			return
		}
		token = strings.TrimSpace(token)
		sum := sha256.Sum256([]byte(token))
		ok := 0
		for _, want := range tokenHashes {
			ok |= subtle.ConstantTimeCompare(sum[:], want[:])
		}
		// An empty token is never one, even if the config holds the hash
		// of nothing (a hash computed from an unset variable).
		if ok != 1 || token == "" {
			s.writeError(w, r, newRequestID(), usererr.New(usererr.Unauthenticated, "bad_scrape_token",
				"this bearer token is not a configured /metrics scrape token (metrics_token_sha256 in the serve config holds their SHA-256)"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
