package store

import (
	"context"
	"fmt"
	"time"
)

// AgentCosignature is the newest cosignature one agent made of a log
// checkpoint (table agent_cosignatures): Checkpoint is the cosigned body,
// Signature the note signature line that verifies over it with WitnessKey.
type AgentCosignature struct {
	HostID     string
	WitnessKey string
	Checkpoint []byte
	Size       uint64
	Signature  string
	CosignedAt time.Time
	ReceivedAt time.Time
}

// AgentCosignature returns host's stored cosignature, or an error
// wrapping ErrNotFound.
func (t *Tx) AgentCosignature(ctx context.Context, hostID string) (AgentCosignature, error) {
	c := AgentCosignature{HostID: hostID}
	var size, cosigned, received int64
	err := t.QueryRow(ctx, `SELECT witness_key, checkpoint, tree_size, signature, cosigned_at, received_at
		FROM agent_cosignatures WHERE host_id = $1`, hostID).Scan(&c.WitnessKey, &c.Checkpoint, &size, &c.Signature, &cosigned, &received)
	if err != nil {
		return AgentCosignature{}, fmt.Errorf("agent cosignature of %s: %w", hostID, mapErr(err))
	}
	c.Size, c.CosignedAt, c.ReceivedAt = uint64(size), time.Unix(cosigned, 0).UTC(), time.Unix(0, received).UTC()
	return c, nil
}

// PutAgentCosignature stores c as its host's newest cosignature,
// replacing the one before.
func (t *Tx) PutAgentCosignature(ctx context.Context, c AgentCosignature) error {
	_, err := t.Exec(ctx, `INSERT INTO agent_cosignatures (host_id, witness_key, checkpoint, tree_size, signature, cosigned_at, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (host_id) DO UPDATE SET witness_key = excluded.witness_key, checkpoint = excluded.checkpoint,
			tree_size = excluded.tree_size, signature = excluded.signature, cosigned_at = excluded.cosigned_at,
			received_at = excluded.received_at`,
		c.HostID, c.WitnessKey, c.Checkpoint, int64(c.Size), c.Signature, c.CosignedAt.Unix(), c.ReceivedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("store agent cosignature of %s: %w", c.HostID, mapErr(err))
	}
	return nil
}

// AgentCosignatures returns every stored agent cosignature, by host ID.
func (db *DB) AgentCosignatures(ctx context.Context) ([]AgentCosignature, error) {
	rows, err := db.Query(ctx, `SELECT host_id, witness_key, checkpoint, tree_size, signature, cosigned_at, received_at
		FROM agent_cosignatures ORDER BY host_id`)
	if err != nil {
		return nil, fmt.Errorf("agent cosignatures: %w", mapErr(err))
	}
	defer rows.Close()
	var out []AgentCosignature
	for rows.Next() {
		var c AgentCosignature
		var size, cosigned, received int64
		if err := rows.Scan(&c.HostID, &c.WitnessKey, &c.Checkpoint, &size, &c.Signature, &cosigned, &received); err != nil {
			return nil, fmt.Errorf("agent cosignatures: %w", err)
		}
		c.Size, c.CosignedAt, c.ReceivedAt = uint64(size), time.Unix(cosigned, 0).UTC(), time.Unix(0, received).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
