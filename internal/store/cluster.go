package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/cluster"
)

// Leases, the server registry and the step queue of internal/cluster
// (migration 480). Times are unix ms on the database's clock with
// PostgreSQL, so that servers whose clocks disagree still agree on who
// holds a lease; SQLite has one server and uses its clock.

// ClusterStore returns the store of internal/cluster.
func (db *DB) ClusterStore() ClusterStore { return ClusterStore{db} }

// ClusterStore implements cluster.LeaseStore, cluster.RegistryStore and
// cluster.QueueStore.
type ClusterStore struct{ db *DB }

var (
	_ cluster.LeaseStore    = ClusterStore{}
	_ cluster.RegistryStore = ClusterStore{}
	_ cluster.QueueStore    = ClusterStore{}
)

// nowMS is the SQL for "now in unix ms" on the database's clock.
func (s ClusterStore) nowMS() string {
	if s.db.dialect == Postgres {
		return `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)`
	}
	return `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`
}

func (s ClusterStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	now := s.nowMS()
	var token int64
	// One statement: insert, renew (same holder, still valid: same token),
	// or take over an expired lease (token + 1). A live lease of another
	// holder matches no row.
	err := s.db.QueryRow(ctx, `INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, `+now+` + $3)
		ON CONFLICT (name) DO UPDATE SET
			token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at >= `+now+` THEN leases.token ELSE leases.token + 1 END,
			holder = excluded.holder,
			expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < `+now+`
		RETURNING token`, name, holder, ttl.Milliseconds()).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("acquire lease %s: %w", name, mapErr(err))
	}
	return token, true, nil
}

func (s ClusterStore) ReleaseLease(ctx context.Context, name, holder string, token int64) error {
	// Expire it rather than delete it, so the next holder's token still grows.
	_, err := s.db.Exec(ctx, `UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3`, name, holder, token)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, mapErr(err))
	}
	return nil
}

// CheckLease is the fence: inside tx, it fails with cluster.ErrFenced
// unless lease name's token is still token. On PostgreSQL it takes a
// share lock on the lease row, so a takeover (an UPDATE of that row) waits
// until tx ends and every later transaction of the old holder fails here.
func (t *Tx) CheckLease(ctx context.Context, name string, token int64) error {
	q := `SELECT token FROM leases WHERE name = $1`
	if t.dialect == Postgres {
		q += ` FOR SHARE`
	}
	var cur int64
	err := t.QueryRow(ctx, q, name).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) || err == nil && cur != token {
		return fmt.Errorf("lease %s (token %d, now %d): %w", name, token, cur, cluster.ErrFenced)
	}
	if err != nil {
		return fmt.Errorf("check lease %s: %w", name, err)
	}
	return nil
}

func (s ClusterStore) PutServer(ctx context.Context, sv cluster.Server) error {
	now := s.nowMS()
	_, err := s.db.Exec(ctx, `INSERT INTO cluster_servers (id, url, started_at, seen_at) VALUES ($1, $2, $3, `+now+`)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at`, sv.ID, sv.URL, sv.Started.UnixMilli())
	if err != nil {
		return fmt.Errorf("register server %s: %w", sv.ID, mapErr(err))
	}
	return nil
}

func (s ClusterStore) Servers(ctx context.Context, maxAge time.Duration) ([]cluster.Server, error) {
	rows, err := s.db.Query(ctx, `SELECT id, url, started_at, seen_at FROM cluster_servers
		WHERE seen_at >= `+s.nowMS()+` - $1 ORDER BY started_at, id`, maxAge.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", mapErr(err))
	}
	defer rows.Close()
	var out []cluster.Server
	for rows.Next() {
		var sv cluster.Server
		var started, seen int64
		if err := rows.Scan(&sv.ID, &sv.URL, &started, &seen); err != nil {
			return nil, fmt.Errorf("scan server: %w", err)
		}
		sv.Started, sv.LastSeen = time.UnixMilli(started), time.UnixMilli(seen)
		out = append(out, sv)
	}
	return out, rows.Err()
}

func (s ClusterStore) DeleteServer(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM cluster_servers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("unregister server %s: %w", id, mapErr(err))
	}
	return nil
}

// ClaimRun makes server the runner of an operation's executor unless a
// live server (seen within maxAge) runs it already.
func (s ClusterStore) ClaimRun(ctx context.Context, opID, server string, maxAge time.Duration) (bool, error) {
	now := s.nowMS()
	res, err := s.db.Exec(ctx, `INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, 0)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1
		WHERE leases.holder = excluded.holder OR leases.holder = ''
		   OR leases.holder NOT IN (SELECT id FROM cluster_servers WHERE seen_at >= `+now+` - $3)`,
		"run:"+opID, server, maxAge.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("claim the run of op %s: %w", opID, mapErr(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseRun gives up server's claim on an operation's executor.
func (s ClusterStore) ReleaseRun(ctx context.Context, opID, server string) error {
	_, err := s.db.Exec(ctx, `UPDATE leases SET holder = '' WHERE name = $1 AND holder = $2`, "run:"+opID, server)
	if err != nil {
		return fmt.Errorf("release the run of op %s: %w", opID, mapErr(err))
	}
	return nil
}

// RunHolder returns the server that runs an operation's executor ("" for none).
func (s ClusterStore) RunHolder(ctx context.Context, opID string) (string, error) {
	var h string
	err := s.db.QueryRow(ctx, `SELECT holder FROM leases WHERE name = $1`, "run:"+opID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the runner of op %s: %w", opID, mapErr(err))
	}
	return h, nil
}

func (s ClusterStore) EnqueueStep(ctx context.Context, q cluster.QueuedStep) error {
	now := s.nowMS()
	_, err := s.db.Exec(ctx, `INSERT INTO step_queue (step_id, host_id, origin, sealed, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'queued', `+now+`, `+now+`)`, q.StepID, q.HostID, q.Origin, q.Sealed)
	if err != nil {
		return fmt.Errorf("queue step %s: %w", q.StepID, mapErr(err))
	}
	return nil
}

func (s ClusterStore) QueuedHosts(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT host_id FROM step_queue WHERE state = 'queued'`)
	if err != nil {
		return nil, fmt.Errorf("list queued hosts: %w", mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (s ClusterStore) ClaimSteps(ctx context.Context, server string, hosts []string) ([]cluster.QueuedStep, error) {
	var out []cluster.QueuedStep
	err := s.db.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		lock := ""
		if tx.dialect == Postgres {
			lock = ` FOR UPDATE SKIP LOCKED`
		}
		for _, h := range hosts {
			rows, err := tx.Query(ctx, `SELECT step_id, host_id, origin, sealed FROM step_queue
				WHERE state = 'queued' AND host_id = $1`+lock, h)
			if err != nil {
				return err
			}
			for rows.Next() {
				var q cluster.QueuedStep
				if err := rows.Scan(&q.StepID, &q.HostID, &q.Origin, &q.Sealed); err != nil {
					rows.Close()
					return err
				}
				out = append(out, q)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for _, q := range out {
			if _, err := tx.Exec(ctx, `UPDATE step_queue SET state = 'taken', taken_by = $2, updated_at = `+s.nowMS()+`
				WHERE step_id = $1`, q.StepID, server); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim queued steps: %w", mapErr(err))
	}
	return out, nil
}

func (s ClusterStore) RequeueStep(ctx context.Context, stepID, server string) error {
	_, err := s.db.Exec(ctx, `UPDATE step_queue SET state = 'queued', taken_by = '', updated_at = `+s.nowMS()+`
		WHERE step_id = $1 AND state = 'taken' AND taken_by = $2`, stepID, server)
	if err != nil {
		return fmt.Errorf("requeue step %s: %w", stepID, mapErr(err))
	}
	return nil
}

func (s ClusterStore) FinishStep(ctx context.Context, stepID, hostID, outcome, result string) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE step_queue SET state = 'done', outcome = $3, result = $4, sealed = NULL, updated_at = `+s.nowMS()+`
		WHERE step_id = $1 AND host_id = $2 AND state <> 'done'`, stepID, hostID, outcome, result)
	if err != nil {
		return false, fmt.Errorf("finish step %s: %w", stepID, mapErr(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s ClusterStore) CancelQueued(ctx context.Context, stepID string) (bool, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM step_queue WHERE step_id = $1 AND state = 'queued'`, stepID)
	if err != nil {
		return false, fmt.Errorf("cancel step %s: %w", stepID, mapErr(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s ClusterStore) StepStatus(ctx context.Context, stepID string) (cluster.QueuedStep, error) {
	var q cluster.QueuedStep
	err := s.db.QueryRow(ctx, `SELECT step_id, host_id, origin, state, taken_by, outcome, result FROM step_queue WHERE step_id = $1`, stepID).
		Scan(&q.StepID, &q.HostID, &q.Origin, &q.State, &q.TakenBy, &q.Outcome, &q.Result)
	if err != nil {
		return q, fmt.Errorf("read step %s: %w", stepID, mapErr(err))
	}
	return q, nil
}

func (s ClusterStore) DeleteStep(ctx context.Context, stepID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM step_queue WHERE step_id = $1`, stepID); err != nil {
		return fmt.Errorf("delete step %s: %w", stepID, mapErr(err))
	}
	return nil
}

// OrphanedSteps returns queue rows whose origin server is not live (seen
// within maxAge): nobody waits for them.
func (s ClusterStore) OrphanedSteps(ctx context.Context, maxAge time.Duration) ([]cluster.QueuedStep, error) {
	rows, err := s.db.Query(ctx, `SELECT step_id, host_id, origin, state, taken_by, outcome, result FROM step_queue
		WHERE origin NOT IN (SELECT id FROM cluster_servers WHERE seen_at >= `+s.nowMS()+` - $1)`, maxAge.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("list orphaned steps: %w", mapErr(err))
	}
	defer rows.Close()
	var out []cluster.QueuedStep
	for rows.Next() {
		var q cluster.QueuedStep
		if err := rows.Scan(&q.StepID, &q.HostID, &q.Origin, &q.State, &q.TakenBy, &q.Outcome, &q.Result); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// SharedCA returns the CA stored for every server (cluster_ca); ok is
// false when none is stored yet.
func (s ClusterStore) SharedCA(ctx context.Context) (certPEM string, sealedKey []byte, ok bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT cert_pem, sealed_key FROM cluster_ca WHERE id = 1`).Scan(&certPEM, &sealedKey)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("read the shared CA: %w", mapErr(err))
	}
	return certPEM, sealedKey, true, nil
}

// PutSharedCA stores the CA for every server unless one is stored already
// (the first server to start wins; the caller reads back which).
func (s ClusterStore) PutSharedCA(ctx context.Context, certPEM string, sealedKey []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO cluster_ca (id, cert_pem, sealed_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, certPEM, sealedKey)
	if err != nil {
		return fmt.Errorf("store the shared CA: %w", mapErr(err))
	}
	return nil
}
