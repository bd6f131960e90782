package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sourceLimiter bounds how fast one source address may call the public
// routes that write (sign-in, bootstrap, accepting an invitation, agent
// enrollment). Each such call costs an Argon2id hash or a join-token check
// and an audit entry, so without a bound one client could starve real
// sign-ins of hashing time or grow the permanent log as fast as it likes.
// It is a token bucket per address (x/time/rate) in a bounded map.
//
// The address is the TCP peer: behind a proxy every client shares the
// proxy's bucket, which errs toward refusing (429) rather than admitting.
type sourceLimiter struct {
	every rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	sources map[string]*sourceBucket
}

type sourceBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newSourceLimiter(perSecond float64, burst, max int) *sourceLimiter {
	return &sourceLimiter{every: rate.Limit(perSecond), burst: burst, max: max, sources: map[string]*sourceBucket{}}
}

// ready reports whether ip's bucket holds a token, taking none: routes
// that charge only their failures (enrollment) ask it first, so that an
// address that spent its bucket on failures is refused before it can try
// again, while one that only succeeds is never charged.
func (l *sourceLimiter) ready(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[ip]
	return b == nil || b.lim.TokensAt(now) >= 1
}

// allow takes one token from ip's bucket. When the map is full, buckets
// idle long enough to have refilled are dropped first (forgetting them
// loses nothing); if none is, the call is refused.
func (l *sourceLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[ip]
	if b == nil {
		if len(l.sources) >= l.max {
			full := time.Duration(float64(l.burst)/float64(l.every)*float64(time.Second)) + time.Second
			for k, o := range l.sources {
				if now.Sub(o.seen) > full {
					delete(l.sources, k)
				}
			}
			if len(l.sources) >= l.max {
				return false
			}
		}
		b = &sourceBucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.sources[ip] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
