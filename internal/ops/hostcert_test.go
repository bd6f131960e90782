package ops_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestRenewCertificate pins, limits and audits renewals, on SQLite and
// PostgreSQL: a renewal from the pinned certificate after the interval
// replaces it (one audit entry); too soon, from the replaced certificate,
// or for a revoked host it is refused and changes nothing; of two
// concurrent renewals from one certificate exactly one wins.
func TestRenewCertificate(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOn(t, tc.open(t), 0)
			tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			id, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1", "key-a")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := e.m.HostCertificate(e.ctx, id); ok || err != nil {
				t.Fatalf("a pin before any was made: %v, %v", ok, err)
			}
			if err := e.m.PinEnrolledCertificate(e.ctx, ops.HostCertificate{HostID: id, Fingerprint: "fp1", PEM: "pem1", NotAfter: e.now.Add(90 * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			issued := 0
			issue := func(fp string) func() (ops.HostCertificate, error) {
				return func() (ops.HostCertificate, error) {
					issued++
					return ops.HostCertificate{Fingerprint: fp, PEM: "pem-" + fp, NotAfter: e.now.Add(90 * 24 * time.Hour)}, nil
				}
			}
			_, err = e.m.RenewCertificate(e.ctx, id, "fp1", time.Hour, issue("fp2"))
			ue := wantUserErr(t, err, usererr.RateLimited, "renew_too_soon")
			var tooSoon *ops.RenewTooSoonError
			if !errors.As(ue, &tooSoon) || !tooSoon.Until.Equal(e.now.Add(time.Hour)) {
				t.Errorf("too soon: %v, want the time the next renewal is allowed", err)
			}
			e.now = e.now.Add(time.Hour)
			got, err := e.m.RenewCertificate(e.ctx, id, "fp1", time.Hour, issue("fp2"))
			if err != nil || got.Fingerprint != "fp2" || got.Previous != "fp1" {
				t.Fatalf("renewal after the interval: %+v, %v", got, err)
			}
			pin, ok, err := e.m.HostCertificate(e.ctx, id)
			if err != nil || !ok || pin.Fingerprint != "fp2" || pin.Previous != "fp1" || pin.PEM != "pem-fp2" || !pin.IssuedAt.Equal(e.now) {
				t.Fatalf("pin after renewal: %+v, %v, %v", pin, ok, err)
			}
			e.now = e.now.Add(2 * time.Hour)
			_, err = e.m.RenewCertificate(e.ctx, id, "fp1", time.Hour, issue("fp3"))
			wantUserErr(t, err, usererr.Unauthenticated, "certificate_replaced")

			// Two renewals from fp2 at once: one wins, the other is refused.
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.m.RenewCertificate(e.ctx, id, "fp2", time.Hour, func() (ops.HostCertificate, error) {
						return ops.HostCertificate{Fingerprint: "fp-race-" + string(rune('a'+i)), PEM: "p"}, nil
					})
				}()
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Errorf("two concurrent renewals from one certificate: %v and %v, want exactly one to win", errs[0], errs[1])
			}

			if _, err := e.m.RevokeHost(e.ctx, admin, id, "stolen key"); err != nil {
				t.Fatal(err)
			}
			e.now = e.now.Add(2 * time.Hour)
			pin, _, _ = e.m.HostCertificate(e.ctx, id)
			_, err = e.m.RenewCertificate(e.ctx, id, pin.Fingerprint, time.Hour, issue("fp4"))
			wantUserErr(t, err, usererr.Unauthenticated, "host_revoked")
			if n := e.audits("host.certificate_renewed"); n != 2 {
				t.Errorf("%d host.certificate_renewed entries, want 2", n)
			}
			if n := e.audits("host.certificate_issued"); n != 1 {
				t.Errorf("%d host.certificate_issued entries, want 1", n)
			}
			if issued != 1 {
				t.Errorf("issue ran %d times, want once (only after the checks passed)", issued)
			}
		})
	}
}
