package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KindRedacted is the entry that records a redaction. Data: the redacted
// index and the names of the erased fields; Personal: the reason.
const KindRedacted = tlog.KindRedacted

// Redact erases the personal openings (plaintext and salt) of the entry at
// index, keeping its leaf and therefore every proof, and records the
// redaction as a new entry by actor in the same transaction.
func (l *Log) Redact(ctx context.Context, index uint64, actor, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 {
		return usererr.New(usererr.Invalid, "bad_reason", "A redaction needs a reason of 1 to 1000 characters; it is recorded in the log.")
	}
	if actor == "" {
		return errors.New("audit: redact needs an actor")
	}
	err := l.store.Redact(ctx, func(tx RedactTx) error {
		e, err := tx.EntryAt(ctx, index)
		if errors.Is(err, ErrNotFound) {
			return usererr.New(usererr.NotFound, "no_entry", "There is no integrated log entry %d; entries are integrated within a few seconds of being written.", index)
		}
		if err != nil {
			return err
		}
		ps, err := e.Openings()
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return usererr.New(usererr.Conflict, "nothing_to_redact", "Entry %d holds no personal data (any it had is already erased).", index)
		}
		names := make([]any, 0, len(ps))
		for _, f := range ps {
			names = append(names, f.Name)
		}
		if _, err := tx.ErasePersonal(ctx, e.ID); err != nil {
			return err
		}
		return Append(ctx, tx, Entry{
			Kind: KindRedacted, Version: 1, Actor: actor, Subject: fmt.Sprintf("log:%d", index),
			Time: l.cfg.Now(), Data: map[string]any{"index": index, "fields": names},
			Personal: map[string]string{"reason": reason},
		})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return err
		}
		return fmt.Errorf("audit: redact %d: %w", index, err)
	}
	return nil
}
