package store

import (
	"context"
	"fmt"

	"github.com/interlock-dev/interlock/internal/audit"
)

// InsertAuditRecord implements audit.Tx.
func (t *Tx) InsertAuditRecord(ctx context.Context, r audit.Record) error {
	_, err := t.Exec(ctx, `INSERT INTO audit_entries (kind, version, actor, subject, at_unix_nano, data, personal)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.Kind, r.Version, r.Actor, r.Subject, r.Time.UnixNano(), r.Data, r.Personal)
	if err != nil {
		return fmt.Errorf("insert audit record: %w", mapErr(err))
	}
	return nil
}
