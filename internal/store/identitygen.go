package store

import "context"

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
