package change

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KindLogFork is a fork of the audit log (a new epoch after the database
// was rolled back or rewritten). Target: the log's origin; Content: the
// reason and what the signer found ([forkContent]); Base: the signed note
// of the checkpoint the signer remembers, so the request is void once the
// signer's memory or the database moved on.
//
// One admin with database access could otherwise roll the log back and
// fork it alone; as a change request the break needs a second,
// independent admin who sees exactly what the new epoch continues from.
const KindLogFork Kind = "log.fork"

// Forker is what a log.fork request needs of the audit log; *audit.Log
// implements it.
type Forker interface {
	Origin() string
	// Refusal is why the log refuses to sign, "" when it signs.
	Refusal() string
	ForkBasis(ctx context.Context) (audit.ForkBasis, error)
	ForkIf(ctx context.Context, expect audit.ForkBasis, actor, reason string) (audit.ForkResult, error)
}

// forkContent is a log.fork request's Content, as canonical JSON.
type forkContent struct {
	Reason          string    `json:"reason"`
	RememberedSize  uint64    `json:"remembered_size"`
	RememberedRoot  string    `json:"remembered_root"`
	RememberedAt    time.Time `json:"remembered_at"`
	RememberedEpoch uint64    `json:"remembered_epoch"`
	DatabaseSize    uint64    `json:"database_size"`
	DatabaseRoot    string    `json:"database_root"`
}

func forkContentOf(reason string, b audit.ForkBasis) forkContent {
	return forkContent{Reason: reason, RememberedSize: b.Remembered.Size, RememberedRoot: hex.EncodeToString(b.Remembered.Hash),
		RememberedAt: b.Remembered.Time.UTC(), RememberedEpoch: b.RememberedEpoch,
		DatabaseSize: b.DatabaseSize, DatabaseRoot: hex.EncodeToString(b.DatabaseRoot)}
}

// ProposeLogFork makes a log.fork request bound to what the log refuses
// over now. Only an admin may ask; it is never applied at once.
func (s *Service) ProposeLogFork(ctx context.Context, by wire.Principal, reason string) (View, error) {
	if s.cfg.Forker == nil {
		return View{}, fmt.Errorf("change: log.fork needs Config.Forker")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 || !utf8.ValidString(reason) {
		return View{}, usererr.New(usererr.Invalid, "bad_reason", "A fork needs a reason of 1 to 1000 characters; it is recorded in the fork entry.")
	}
	if by.Kind != "person" || !slices.Contains(by.Roles, identity.RoleAdmin) {
		return View{}, s.refuse(ctx, by, "log", "admin_only", usererr.Forbidden, "Only a person with role admin may ask to fork the log.")
	}
	b, err := s.cfg.Forker.ForkBasis(ctx)
	if err != nil {
		return View{}, err
	}
	content, err := json.Marshal(forkContentOf(reason, b))
	if err != nil {
		return View{}, fmt.Errorf("encode fork request: %w", err)
	}
	summary := fmt.Sprintf("fork the log: continue from the database's %d entries, not the %d the signer remembers", b.DatabaseSize, b.Remembered.Size)
	return s.request(ctx, by, KindLogFork, s.cfg.Forker.Origin(), string(content), string(b.RememberedNote), summary)
}

// logForkDiff reads a log.fork request's content for the approver.
func logForkDiff(r Request) (*wire.LogForkDiff, error) {
	var c forkContent
	if err := json.Unmarshal([]byte(r.Content), &c); err != nil {
		return nil, fmt.Errorf("log.fork content: %w", err)
	}
	d := &wire.LogForkDiff{Origin: r.Target, Reason: c.Reason, RememberedSize: c.RememberedSize, RememberedRoot: c.RememberedRoot,
		RememberedAt: c.RememberedAt, RememberedEpoch: c.RememberedEpoch, DatabaseSize: c.DatabaseSize, DatabaseRoot: c.DatabaseRoot}
	d.Sentence = fmt.Sprintf("The signer remembers %d entries (root %s) signed at %s in epoch %d; the database holds %d (root %s). A new epoch %d would continue from the database's %d entries and record the break",
		c.RememberedSize, shortHex(c.RememberedRoot), c.RememberedAt.Format(time.RFC3339), c.RememberedEpoch, c.DatabaseSize, shortHex(c.DatabaseRoot),
		c.RememberedEpoch+1, c.DatabaseSize)
	if c.DatabaseSize < c.RememberedSize {
		d.Sentence += fmt.Sprintf("; entries %d to %d of the old epoch would not be in it", c.DatabaseSize, c.RememberedSize-1)
	}
	d.Sentence += "."
	return d, nil
}

func shortHex(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// logForkBasis returns the basis r was requested against if the log
// still refuses over exactly it, else a change_stale user error.
func (s *Service) logForkBasis(ctx context.Context, r Request) (audit.ForkBasis, error) {
	stale := func(why string) error {
		return usererr.New(usererr.Conflict, "change_stale", "%s changed after %s was requested (%s), so its diff is no longer the fork; it is void. If the log still refuses, run interlock log fork again.", "The log", r.ID, why)
	}
	if s.cfg.Forker == nil {
		return audit.ForkBasis{}, fmt.Errorf("change: log.fork needs Config.Forker")
	}
	b, err := s.cfg.Forker.ForkBasis(ctx)
	if ue, ok := usererr.As(err); ok {
		return audit.ForkBasis{}, stale(ue.Msg)
	}
	if err != nil {
		return audit.ForkBasis{}, err
	}
	content, err := json.Marshal(forkContentOf("", b))
	if err != nil {
		return audit.ForkBasis{}, err
	}
	var want forkContent
	if err := json.Unmarshal([]byte(r.Content), &want); err != nil {
		return audit.ForkBasis{}, fmt.Errorf("log.fork content: %w", err)
	}
	want.Reason = ""
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(b.RememberedNote, []byte(r.Base)) || !bytes.Equal(content, wantJSON) || r.Target != s.cfg.Forker.Origin() {
		return audit.ForkBasis{}, stale("the signer's memory or the database's tree is not what it was")
	}
	return b, nil
}

// checkHalted refuses to decide r while the log refuses to sign, unless r
// is the fork that resumes it: the change routes answer while the server
// is halted only so that a fork can be approved.
func (s *Service) checkHalted(r Request) error {
	if r.Kind == KindLogFork || s.cfg.Forker == nil {
		return nil
	}
	if why := s.cfg.Forker.Refusal(); why != "" {
		return usererr.New(usererr.Conflict, "log_refusing",
			"Nothing can be changed while the audit log cannot record it: %s. Only a log.fork request can be decided now.", why)
	}
	return nil
}
