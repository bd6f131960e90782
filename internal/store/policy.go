package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/policy"
)

// PolicyStore returns the adapter that implements policy.Store.
func (db *DB) PolicyStore() policy.Store { return policyStore{db} }

type policyStore struct{ db *DB }

func (s policyStore) InTx(ctx context.Context, fn func(policy.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

func (s policyStore) LatestPolicy(ctx context.Context) (policy.StoredPolicy, bool, error) {
	var p policy.StoredPolicy
	var at int64
	err := s.db.QueryRow(ctx, `SELECT version, text, hash, author, created_at_unix_nano
		FROM policy_versions ORDER BY version DESC LIMIT 1`).Scan(&p.Version, &p.Text, &p.Hash, &p.Author, &at)
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrNotFound) {
			return policy.StoredPolicy{}, false, nil
		}
		return policy.StoredPolicy{}, false, fmt.Errorf("select latest policy: %w", err)
	}
	p.CreatedAt = time.Unix(0, at).UTC()
	return p, true, nil
}

// LatestPolicyVersion implements policy.Tx.
func (t *Tx) LatestPolicyVersion(ctx context.Context) (int, string, error) {
	var v int
	var hash string
	err := t.QueryRow(ctx, `SELECT version, hash FROM policy_versions ORDER BY version DESC LIMIT 1`).Scan(&v, &hash)
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrNotFound) {
			return 0, "", nil
		}
		return 0, "", fmt.Errorf("select latest policy version: %w", err)
	}
	return v, hash, nil
}

// InsertPolicyVersion implements policy.Tx. A version that exists already
// fails with an error wrapping both ErrConflict and policy.ErrVersionTaken.
func (t *Tx) InsertPolicyVersion(ctx context.Context, p policy.StoredPolicy) error {
	_, err := t.Exec(ctx, `INSERT INTO policy_versions (version, text, hash, author, created_at_unix_nano)
		VALUES ($1, $2, $3, $4, $5)`, p.Version, p.Text, p.Hash, p.Author, p.CreatedAt.UnixNano())
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("insert policy version %d: %w: %w", p.Version, policy.ErrVersionTaken, err)
		}
		return fmt.Errorf("insert policy version %d: %w", p.Version, err)
	}
	return nil
}
