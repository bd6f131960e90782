package agenthub

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Every agent request (a heartbeat every few seconds from each of
// thousands of hosts) must prove which host it acts for: its client
// certificate must chain to the CA, the host must not be revoked, and the
// certificate must be the host's pinned one. Done from scratch that is an
// ECDSA verification and two database reads per request, most of a
// heartbeat's cost. identityCache keeps the answers in memory:
//
//   - a certificate's chain verification, by the SHA-256 of its DER, until
//     the certificate expires (and at most verifiedCertTTL, so that a
//     change of the CA's own validity is noticed);
//   - each host's revocation and pin, until Config.IdentityGeneration
//     changes. That counter is bumped in the same transaction as every
//     revocation and pinned certificate, on whichever server made it, and
//     is read at most once per IdentityTTL: a change made elsewhere takes
//     effect here within IdentityTTL, one made here at once ([Hub.ForgetHost]
//     on revocation; enrollment and renewal forget the host themselves).
//
// When the counter cannot be read, nothing cached about hosts is trusted:
// each request reads the store again (and fails closed if that fails).
type identityCache struct {
	gen func(ctx context.Context) (int64, error) // nil: hosts are not cached
	ttl time.Duration

	mu         sync.Mutex
	checked    time.Time // when gen was last read successfully
	generation int64
	forgets    uint64                  // ForgetHost calls so far: a read that overlapped one is not kept
	certs      map[string]verifiedCert // certificate fingerprint → verification
	hosts      map[string]hostIdentity // host ID → revocation and pin
}

// verifiedCertTTL bounds how long a chain verification is reused.
const verifiedCertTTL = 10 * time.Minute

// maxCachedIdentities bounds each map; past it the map starts afresh.
const maxCachedIdentities = 1 << 18

type verifiedCert struct {
	hostID              string
	notBefore, notAfter time.Time
	verifiedAt          time.Time
}

type hostIdentity struct {
	revoked bool
	pin     Pin
	pinned  bool
}

func newIdentityCache(gen func(context.Context) (int64, error), ttl time.Duration) *identityCache {
	return &identityCache{gen: gen, ttl: ttl, certs: map[string]verifiedCert{}, hosts: map[string]hostIdentity{}}
}

// verifyAgent is CA.VerifyAgent, remembered per certificate.
func (h *Hub) verifyAgent(leaf *x509.Certificate, fp string, now time.Time) (string, error) {
	c := h.ids
	c.mu.Lock()
	v, ok := c.certs[fp]
	c.mu.Unlock()
	if ok && !now.Before(v.notBefore) && !now.After(v.notAfter) && now.Sub(v.verifiedAt) < verifiedCertTTL {
		return v.hostID, nil
	}
	id, err := h.cfg.CA.VerifyAgent(leaf, now)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if len(c.certs) >= maxCachedIdentities {
		clear(c.certs)
	}
	c.certs[fp] = verifiedCert{hostID: id, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter, verifiedAt: now}
	c.mu.Unlock()
	return id, nil
}

// current reports whether the cached host entries may be used, reading
// the generation counter when the last reading is older than the TTL and
// forgetting every host when it moved.
func (c *identityCache) current(ctx context.Context) bool {
	if c.gen == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.checked.IsZero() && now.Sub(c.checked) < c.ttl {
		return true
	}
	// Read under the lock: one reader at a time, the others wait for it
	// rather than all asking the store at once.
	g, err := c.gen(ctx)
	if err != nil {
		c.checked = time.Time{}
		clear(c.hosts)
		return false
	}
	if g != c.generation {
		clear(c.hosts)
		c.generation = g
	}
	c.checked = now
	return true
}

// host returns host's revocation and pin, from memory when current.
func (h *Hub) host(ctx context.Context, hostID string) (hostIdentity, error) {
	c := h.ids
	use := c.current(ctx)
	var forgets uint64
	if use {
		c.mu.Lock()
		e, ok := c.hosts[hostID]
		forgets = c.forgets
		c.mu.Unlock()
		if ok {
			return e, nil
		}
	}
	// Read after the generation: a change that commits meanwhile moves the
	// counter, and the next reading forgets what is stored here.
	var e hostIdentity
	var err error
	if e.revoked, err = h.cfg.Revocations.HostRevoked(ctx, hostID); err != nil {
		return hostIdentity{}, err
	}
	if h.cfg.Certificates != nil && !e.revoked {
		if e.pin, e.pinned, err = h.cfg.Certificates.HostPin(ctx, hostID); err != nil {
			return hostIdentity{}, fmt.Errorf("look up the pinned certificate: %w", err)
		}
	}
	if use {
		c.mu.Lock()
		if len(c.hosts) >= maxCachedIdentities {
			clear(c.hosts)
		}
		if c.forgets == forgets {
			c.hosts[hostID] = e
		}
		c.mu.Unlock()
	}
	return e, nil
}

// ForgetHost drops what the hub remembers about a host's revocation and
// certificate pin, so that a change just committed on this server takes
// effect from the next request. internal/app calls it on revocation.
func (h *Hub) ForgetHost(hostID string) {
	h.ids.mu.Lock()
	delete(h.ids.hosts, hostID)
	h.ids.forgets++
	h.ids.mu.Unlock()
}

// Enrollment admission. Thousands of agents started at once (agent
// --count, a provisioning run) all enroll at once; each enrollment signs a
// certificate and commits twice. Served all together, each waits so long
// that the agents' 30-second requests time out and are sent again: the
// server works ever harder for nobody. So at most maxConcurrentEnrollments
// run at a time; a request that cannot start within Config.EnrollQueueWait
// gets 503 with Retry-After (it spends nothing of the address's allowance
// of public writes), and the agent retries with backoff.
const maxConcurrentEnrollments = 32

// admitEnrollment waits for an enrollment slot. When it returns false it
// has answered the request.
func (h *Hub) admitEnrollment(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	t := time.NewTimer(h.cfg.EnrollQueueWait)
	defer t.Stop()
	select {
	case h.enrolling <- struct{}{}:
		return func() { <-h.enrolling }, true
	case <-t.C:
		w.Header().Set("Retry-After", "2")
		_ = writeProblem(w, r, http.StatusServiceUnavailable, "enrollment_busy",
			"The server is enrolling many agents at once; try again in a few seconds.")
		return nil, false
	case <-r.Context().Done():
		return nil, false
	}
}
