package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// HostCertificate is the one client certificate a host's agent may use:
// every agent route refuses any other, so that a renewal retires the
// certificate it replaces at once (a copied key stops working when the
// agent renews) and a renewal that an attacker made with a stolen key
// locks the real agent out, which its operators see.
type HostCertificate struct {
	HostID string
	// Fingerprint is the SHA-256 of the certificate's DER, hex.
	Fingerprint string
	// Previous is the fingerprint of the certificate the last renewal
	// replaced ("" after an enrollment). It may only fetch its replacement
	// again, for an agent whose renewal answer was lost.
	Previous string
	PEM      string
	NotAfter time.Time
	IssuedAt time.Time
}

// hostCertReader and hostCertTx are what certificate pinning needs from
// the store, beyond Store and Tx; internal/store implements both.
type hostCertReader interface {
	// OpsHostCertificate returns the host's pinned certificate; ErrNotFound
	// if none was pinned.
	OpsHostCertificate(ctx context.Context, hostID string) (HostCertificate, error)
}

type hostCertTx interface {
	hostCertReader
	// PutHostCertificate pins c. With replaces empty it overwrites any
	// pin; otherwise only the pin whose fingerprint is replaces, and it
	// returns ErrNotFound when that is not the pin.
	PutHostCertificate(ctx context.Context, c HostCertificate, replaces string) error
}

// RenewTooSoonError refuses a renewal before Until: a host renews at most
// once per interval, so that a stolen key cannot mint certificates.
type RenewTooSoonError struct{ Until time.Time }

func (e *RenewTooSoonError) Error() string {
	return fmt.Sprintf("renewed too soon; the next renewal is allowed at %s", e.Until.UTC().Format(time.RFC3339))
}

// HostCertificate returns the certificate pinned for hostID and whether
// there is one (hosts enrolled before pinning have none).
func (s *Manager) HostCertificate(ctx context.Context, hostID string) (HostCertificate, bool, error) {
	r, ok := s.store.(hostCertReader)
	if !ok {
		return HostCertificate{}, false, errors.New("ops: the store cannot pin host certificates")
	}
	c, err := r.OpsHostCertificate(ctx, hostID)
	if errors.Is(err, ErrNotFound) {
		return HostCertificate{}, false, nil
	}
	if err != nil {
		return HostCertificate{}, false, fmt.Errorf("load certificate of host %s: %w", hostID, err)
	}
	return c, true, nil
}

// PinEnrolledCertificate makes the certificate just issued at enrollment
// (or at a repeated enrollment) the host's only one, with a
// host.certificate_issued entry in the same transaction.
func (s *Manager) PinEnrolledCertificate(ctx context.Context, c HostCertificate) error {
	now := s.clock()
	c.IssuedAt, c.Previous = now, ""
	err := s.inTxGrouped(ctx, func(tx Tx) error {
		ctx2, ok := tx.(hostCertTx)
		if !ok {
			return errors.New("ops: the store cannot pin host certificates")
		}
		h, err := tx.OpsHost(ctx, c.HostID)
		if err != nil {
			return err
		}
		if !h.RevokedAt.IsZero() {
			return hostRevoked(h)
		}
		if err := ctx2.PutHostCertificate(ctx, c, ""); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "host.certificate_issued", Version: 1, Actor: "agent:" + c.HostID, Subject: "host:" + c.HostID, Time: now,
			Data: map[string]any{"fingerprint": c.Fingerprint, "not_after": c.NotAfter.UTC().Format(time.RFC3339)}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return err
		}
		return fmt.Errorf("pin certificate of host %s: %w", c.HostID, err)
	}
	return nil
}

// RenewCertificate replaces the host's pinned certificate, which must be
// presented (its fingerprint), by the one issue returns, with a
// host.certificate_renewed entry in the same transaction. It refuses with
// a *RenewTooSoonError (wrapped in a RateLimited user error) when the
// pinned certificate was issued less than minInterval ago, and with an
// Unauthenticated user error when presented is not the pinned certificate
// (another renewal replaced it). issue runs inside the transaction, only
// once the checks passed.
func (s *Manager) RenewCertificate(ctx context.Context, hostID, presented string, minInterval time.Duration, issue func() (HostCertificate, error)) (HostCertificate, error) {
	now := s.clock()
	var out HostCertificate
	err := s.store.InTx(ctx, func(tx Tx) error {
		ctx2, ok := tx.(hostCertTx)
		if !ok {
			return errors.New("ops: the store cannot pin host certificates")
		}
		h, err := tx.OpsHost(ctx, hostID)
		if err != nil {
			return err
		}
		if !h.RevokedAt.IsZero() {
			return hostRevoked(h)
		}
		cur, err := ctx2.OpsHostCertificate(ctx, hostID)
		pinned := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		replaces := presented
		if pinned {
			if cur.Fingerprint != presented {
				return certReplaced(hostID)
			}
			if until := cur.IssuedAt.Add(minInterval); now.Before(until) {
				return usererr.Wrap(&RenewTooSoonError{Until: until}, usererr.RateLimited, "renew_too_soon",
					"Host %s's certificate was issued at %s; a host may renew once per %s, so the next renewal is allowed at %s.",
					hostID, cur.IssuedAt.UTC().Format(time.RFC3339), minInterval, until.UTC().Format(time.RFC3339))
			}
		} else {
			replaces = "" // enrolled before pinning: this renewal pins
		}
		if out, err = issue(); err != nil {
			return err
		}
		out.HostID, out.Previous, out.IssuedAt = hostID, presented, now
		if err := ctx2.PutHostCertificate(ctx, out, replaces); err != nil {
			if errors.Is(err, ErrNotFound) {
				return certReplaced(hostID) // a concurrent renewal won
			}
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "host.certificate_renewed", Version: 1, Actor: "agent:" + hostID, Subject: "host:" + hostID, Time: now,
			Data: map[string]any{"fingerprint": out.Fingerprint, "previous": presented, "not_after": out.NotAfter.UTC().Format(time.RFC3339)}})
	})
	if errors.Is(err, ErrNotFound) {
		return HostCertificate{}, usererr.New(usererr.NotFound, "unknown_host", "Host %s is not enrolled.", hostID)
	}
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return HostCertificate{}, err
		}
		return HostCertificate{}, fmt.Errorf("renew certificate of host %s: %w", hostID, err)
	}
	s.log.InfoContext(ctx, "host certificate renewed", slog.String("host", hostID), slog.String("fingerprint", out.Fingerprint))
	return out, nil
}

func certReplaced(hostID string) error {
	return usererr.New(usererr.Unauthenticated, "certificate_replaced",
		"This certificate of host %s was replaced by a renewal and no longer works; use the renewed one (if this agent did not renew, its key may be stolen: revoke the host).", hostID)
}
