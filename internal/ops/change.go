package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
)

// What internal/change needs from ops to apply an approved change inside
// its own transaction, and to tell a change that tightens the rules from
// one that loosens them.

// ValidateService checks a service's name, thresholds and freeze windows.
func ValidateService(svc Service) error { return validateService(svc) }

// ApplyRunbookIn validates src and stores it in tx as the runbook's next
// version with its "runbook.applied" audit entry. applied is false (and
// the latest version returned) when src is the latest version's text.
func (s *Manager) ApplyRunbookIn(ctx context.Context, tx Tx, by wire.Principal, src []byte) (v RunbookVersion, applied bool, err error) {
	rb, err := ParseRunbook(src)
	if err != nil {
		return RunbookVersion{}, false, err
	}
	now := s.clock()
	latest, err := tx.OpsRunbook(ctx, rb.Name, 0)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return RunbookVersion{}, false, fmt.Errorf("load runbook %s: %w", rb.Name, err)
	case string(latest.Source) == string(src):
		latest.Runbook = rb
		return latest, false, nil
	}
	v = RunbookVersion{Name: rb.Name, Version: latest.Version + 1, Source: src, Runbook: rb, AppliedBy: actorOf(by), AppliedAt: now}
	if err := tx.InsertRunbookVersion(ctx, v); err != nil {
		return RunbookVersion{}, false, fmt.Errorf("store runbook %s v%d: %w", rb.Name, v.Version, err)
	}
	sum := sha256.Sum256(src)
	err = audit.Append(ctx, tx, audit.Entry{Kind: "runbook.applied", Version: 1, Actor: actorOf(by), Subject: "runbook:" + rb.Name, Time: now,
		Data: map[string]any{"version": v.Version, "sha256": hex.EncodeToString(sum[:]), "risk": string(rb.Risk), "removes_capacity": rb.RemovesCapacity}})
	if err != nil {
		return RunbookVersion{}, false, err
	}
	return v, true, nil
}

// Loosens lists, in sentences, how next weakens old's protection: a lower
// or removed floor, a higher or removed cap, a freeze window that no
// longer covers what it did. A threshold that changes between a count and
// a percentage counts as loosening (it may be lower for some fleet
// size). Windows that have already ended are not protection any more.
// Empty means next only tightens or keeps the rules.
func Loosens(old, next Service, now time.Time) []string {
	var out []string
	if weaker(old.MinHealthy, next.MinHealthy, true) {
		out = append(out, fmt.Sprintf("lowers the capacity floor of %s from %s to %s", old.Name, thresholdText(old.MinHealthy), thresholdText(next.MinHealthy)))
	}
	if weaker(old.MaxPerOperation, next.MaxPerOperation, false) {
		out = append(out, fmt.Sprintf("raises the per-operation cap of %s from %s to %s", old.Name, thresholdText(old.MaxPerOperation), thresholdText(next.MaxPerOperation)))
	}
	for _, w := range old.Freezes {
		if !w.End.After(now) {
			continue
		}
		covered := slices.ContainsFunc(next.Freezes, func(n Window) bool {
			return !n.Start.After(w.Start) && !n.End.Before(w.End)
		})
		if !covered {
			out = append(out, fmt.Sprintf("removes or shortens the freeze of %s from %s to %s (%s)", old.Name,
				w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339), w.Reason))
		}
	}
	return out
}

func thresholdText(t Threshold) string {
	if t.IsZero() {
		return "none"
	}
	return t.String()
}

// weaker reports whether next protects less than old. For a floor
// (higherIsStronger) less is weaker; for a cap, more is weaker and no cap
// is the weakest of all.
func weaker(old, next Threshold, higherIsStronger bool) bool {
	if old.IsZero() {
		return false // nothing to weaken
	}
	if next.IsZero() {
		return true
	}
	if old.IsPercent != next.IsPercent {
		return true
	}
	o, n := float64(old.Count), float64(next.Count)
	if old.IsPercent {
		o, n = old.Percent, next.Percent
	}
	if higherIsStronger {
		return n < o
	}
	return n > o
}
