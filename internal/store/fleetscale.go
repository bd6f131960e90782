package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
)

// bumpIdentityGeneration tells every server's cache of host revocations
// and certificate pins that one changed (migration 490). It runs in the
// transaction that makes the change.
func (t *Tx) bumpIdentityGeneration(ctx context.Context, what string) error {
	if _, err := t.Exec(ctx, `UPDATE ops_identity_generation SET generation = generation + 1 WHERE id = 1`); err != nil {
		return opsErr(what+": bump the identity generation", err)
	}
	return nil
}

// OpsIdentityGeneration returns the counter of host identity changes
// (revocations, pinned certificates); it only ever grows.
func (s opsStore) OpsIdentityGeneration(ctx context.Context) (int64, error) {
	var g int64
	if err := s.db.QueryRow(ctx, `SELECT generation FROM ops_identity_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, opsErr("read the identity generation", err)
	}
	return g, nil
}

// TouchHostsSeen implements ops' batched heartbeat write: one statement
// sets last_seen and healthy for many hosts, skipping revoked hosts and
// any whose stored heartbeat is already as recent (written by another
// server, or by a heartbeat that changed something).
func (s opsStore) TouchHostsSeen(ctx context.Context, ids []string, healthy bool, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`UPDATE ops_hosts SET last_seen = $1, healthy = $2 WHERE revoked_at = 0 AND last_seen < $1 AND id IN (`)
	args := make([]any, 0, len(ids)+2)
	args = append(args, at.UnixNano(), opsBool(healthy))
	for i, id := range ids {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("$" + strconv.Itoa(len(args)+1))
		args = append(args, id)
	}
	q.WriteByte(')')
	return s.db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return opsErr("write the last heartbeats of "+strconv.Itoa(len(ids))+" hosts", err)
		}
		return nil
	})
}

// OpsOperationState returns an operation's state alone: the executor
// checks it before every dispatch, and an operation on ten thousand hosts
// carries a plan far larger than the state.
func (s opsStore) OpsOperationState(ctx context.Context, id string) (ops.OpState, error) {
	var st string
	if err := s.db.QueryRow(ctx, `SELECT state FROM ops_operations WHERE id = $1`, id).Scan(&st); err != nil {
		return "", opsErr("load the state of op "+id, err)
	}
	return ops.OpState(st), nil
}
