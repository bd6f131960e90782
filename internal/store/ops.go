package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
)

// OpsStore returns internal/ops' store: hosts, join tokens, services,
// runbooks and operations (migration 020).
func (db *DB) OpsStore() ops.Store { return opsStore{db} }

type opsStore struct{ db *DB }

func (s opsStore) InTx(ctx context.Context, fn func(ops.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

// InTxGrouped lets small ops transactions share commits (groupcommit.go).
func (s opsStore) InTxGrouped(ctx context.Context, fn func(ops.Tx) error) error {
	return s.db.InTxGrouped(ctx, func(tx *Tx) error { return fn(tx) })
}

// opsQuerier is what the ops reads need; *DB and *Tx both have it.
type opsQuerier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

// opsErr maps a driver error and puts ops' sentinel in the chain too.
func opsErr(what string, err error) error {
	err = mapErr(err)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s: %w: %w", what, ops.ErrNotFound, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%s: %w: %w", what, ops.ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func opsNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func opsTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func opsBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

func opsJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T: %v", v, err)) // only plain data is encoded here
	}
	return string(b)
}

// ---- reads (on the DB adapter and inside a transaction) ----

func (s opsStore) OpsHosts(ctx context.Context) ([]ops.Host, error) {
	return opsHosts(ctx, s.db, "", nil)
}
func (t *Tx) OpsHosts(ctx context.Context) ([]ops.Host, error) { return opsHosts(ctx, t, "", nil) }

func (s opsStore) OpsHost(ctx context.Context, id string) (ops.Host, error) {
	return opsHost(ctx, s.db, id)
}
func (t *Tx) OpsHost(ctx context.Context, id string) (ops.Host, error) { return opsHost(ctx, t, id) }

func (s opsStore) OpsServices(ctx context.Context) ([]ops.Service, error) {
	return opsServices(ctx, s.db)
}
func (t *Tx) OpsServices(ctx context.Context) ([]ops.Service, error) { return opsServices(ctx, t) }

func (s opsStore) OpsRunbook(ctx context.Context, name string, version int) (ops.RunbookVersion, error) {
	return opsRunbook(ctx, s.db, name, version)
}
func (t *Tx) OpsRunbook(ctx context.Context, name string, version int) (ops.RunbookVersion, error) {
	return opsRunbook(ctx, t, name, version)
}

func (s opsStore) OpsRunbooks(ctx context.Context) ([]ops.RunbookVersion, error) {
	return opsRunbooks(ctx, s.db)
}
func (t *Tx) OpsRunbooks(ctx context.Context) ([]ops.RunbookVersion, error) {
	return opsRunbooks(ctx, t)
}

func (s opsStore) OpsOperation(ctx context.Context, id string) (ops.Operation, error) {
	return opsOperation(ctx, s.db, id)
}
func (t *Tx) OpsOperation(ctx context.Context, id string) (ops.Operation, error) {
	return opsOperation(ctx, t, id)
}

func (s opsStore) OpsOperations(ctx context.Context, f ops.OperationFilter) ([]ops.Operation, error) {
	return opsOperations(ctx, s.db, f)
}
func (t *Tx) OpsOperations(ctx context.Context, f ops.OperationFilter) ([]ops.Operation, error) {
	return opsOperations(ctx, t, f)
}

const opsHostColumns = `id, name, services, labels, in_service, healthy, last_seen, revoked_at`

func scanOpsHost(sc interface{ Scan(...any) error }) (ops.Host, error) {
	var h ops.Host
	var services, labels string
	var inService, healthy int
	var lastSeen, revoked int64
	if err := sc.Scan(&h.ID, &h.Name, &services, &labels, &inService, &healthy, &lastSeen, &revoked); err != nil {
		return h, err
	}
	if err := json.Unmarshal([]byte(services), &h.Services); err != nil {
		return h, fmt.Errorf("decode services of host %s: %w", h.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &h.Labels); err != nil {
		return h, fmt.Errorf("decode labels of host %s: %w", h.ID, err)
	}
	h.InService, h.Healthy, h.LastSeen = inService != 0, healthy != 0, opsTime(lastSeen)
	if revoked != 0 {
		h.RevokedAt = opsTime(revoked)
	}
	return h, nil
}

func opsHosts(ctx context.Context, q opsQuerier, where string, args []any) ([]ops.Host, error) {
	rows, err := q.Query(ctx, `SELECT `+opsHostColumns+` FROM ops_hosts`+where+` ORDER BY name, id`, args...)
	if err != nil {
		return nil, opsErr("query hosts", err)
	}
	defer rows.Close()
	var out []ops.Host
	for rows.Next() {
		h, err := scanOpsHost(rows)
		if err != nil {
			return nil, opsErr("scan host", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, opsErr("read hosts", err)
	}
	return out, nil
}

func opsHost(ctx context.Context, q opsQuerier, id string) (ops.Host, error) {
	h, err := scanOpsHost(q.QueryRow(ctx, `SELECT `+opsHostColumns+` FROM ops_hosts WHERE id = $1`, id))
	if err != nil {
		return ops.Host{}, opsErr("load host "+id, err)
	}
	return h, nil
}

func opsServices(ctx context.Context, q opsQuerier) ([]ops.Service, error) {
	rows, err := q.Query(ctx, `SELECT name, min_healthy, max_per_operation, freezes FROM ops_services ORDER BY name`)
	if err != nil {
		return nil, opsErr("query services", err)
	}
	defer rows.Close()
	var out []ops.Service
	for rows.Next() {
		var s ops.Service
		var minH, maxOp, freezes string
		if err := rows.Scan(&s.Name, &minH, &maxOp, &freezes); err != nil {
			return nil, opsErr("scan service", err)
		}
		if s.MinHealthy, err = ops.ParseThreshold(minH); err != nil {
			return nil, fmt.Errorf("service %s min_healthy %q: %w", s.Name, minH, err)
		}
		if s.MaxPerOperation, err = ops.ParseThreshold(maxOp); err != nil {
			return nil, fmt.Errorf("service %s max_per_operation %q: %w", s.Name, maxOp, err)
		}
		if err := json.Unmarshal([]byte(freezes), &s.Freezes); err != nil {
			return nil, fmt.Errorf("decode freezes of service %s: %w", s.Name, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, opsErr("read services", err)
	}
	return out, nil
}

func opsRunbook(ctx context.Context, q opsQuerier, name string, version int) (ops.RunbookVersion, error) {
	query := `SELECT name, version, source, applied_by, applied_at FROM ops_runbooks WHERE name = $1 AND version = $2`
	args := []any{name, version}
	if version == 0 {
		query = `SELECT name, version, source, applied_by, applied_at FROM ops_runbooks WHERE name = $1 ORDER BY version DESC LIMIT 1`
		args = args[:1]
	}
	var v ops.RunbookVersion
	var at int64
	if err := q.QueryRow(ctx, query, args...).Scan(&v.Name, &v.Version, &v.Source, &v.AppliedBy, &at); err != nil {
		return ops.RunbookVersion{}, opsErr(fmt.Sprintf("load runbook %s v%d", name, version), err)
	}
	v.AppliedAt = opsTime(at)
	return v, nil
}

func opsRunbooks(ctx context.Context, q opsQuerier) ([]ops.RunbookVersion, error) {
	rows, err := q.Query(ctx, `SELECT r.name, r.version, r.source, r.applied_by, r.applied_at FROM ops_runbooks r
		WHERE r.version = (SELECT MAX(version) FROM ops_runbooks m WHERE m.name = r.name) ORDER BY r.name`)
	if err != nil {
		return nil, opsErr("query runbooks", err)
	}
	defer rows.Close()
	var out []ops.RunbookVersion
	for rows.Next() {
		var v ops.RunbookVersion
		var at int64
		if err := rows.Scan(&v.Name, &v.Version, &v.Source, &v.AppliedBy, &at); err != nil {
			return nil, opsErr("scan runbook", err)
		}
		v.AppliedAt = opsTime(at)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, opsErr("read runbooks", err)
	}
	return out, nil
}

const opsOpColumns = `id, state, requester_id, reason, break_glass, plan, approvals, needed, needed_roles, current_wave, detail, created_at, updated_at`

func scanOpsOperation(sc interface{ Scan(...any) error }) (ops.Operation, error) {
	var op ops.Operation
	var state, plan, approvals, roles string
	var breakGlass int
	var created, updated int64
	if err := sc.Scan(&op.ID, &state, &op.RequesterID, &op.Reason, &breakGlass, &plan, &approvals, &op.Needed, &roles,
		&op.CurrentWave, &op.Detail, &created, &updated); err != nil {
		return op, err
	}
	op.State, op.BreakGlass = ops.OpState(state), breakGlass != 0
	op.CreatedAt, op.UpdatedAt = opsTime(created), opsTime(updated)
	if err := json.Unmarshal([]byte(plan), &op.Plan); err != nil {
		return op, fmt.Errorf("decode plan of op %s: %w", op.ID, err)
	}
	if err := json.Unmarshal([]byte(approvals), &op.Approvals); err != nil {
		return op, fmt.Errorf("decode approvals of op %s: %w", op.ID, err)
	}
	if err := json.Unmarshal([]byte(roles), &op.NeededRoles); err != nil {
		return op, fmt.Errorf("decode roles of op %s: %w", op.ID, err)
	}
	return op, nil
}

func opsOperation(ctx context.Context, q opsQuerier, id string) (ops.Operation, error) {
	op, err := scanOpsOperation(q.QueryRow(ctx, `SELECT `+opsOpColumns+` FROM ops_operations WHERE id = $1`, id))
	if err != nil {
		return ops.Operation{}, opsErr("load op "+id, err)
	}
	return op, nil
}

func opsOperations(ctx context.Context, q opsQuerier, f ops.OperationFilter) ([]ops.Operation, error) {
	var where []string
	var args []any
	if f.Runbook != "" {
		args = append(args, f.Runbook)
		where = append(where, fmt.Sprintf("runbook = $%d", len(args)))
	}
	if len(f.States) > 0 {
		ph := make([]string, len(f.States))
		for i, s := range f.States {
			args = append(args, string(s))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		where = append(where, "state IN ("+strings.Join(ph, ", ")+")")
	}
	query := `SELECT ` + opsOpColumns + ` FROM ops_operations`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, opsErr("query ops", err)
	}
	defer rows.Close()
	var out []ops.Operation
	for rows.Next() {
		op, err := scanOpsOperation(rows)
		if err != nil {
			return nil, opsErr("scan op", err)
		}
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		return nil, opsErr("read ops", err)
	}
	return out, nil
}

// ---- writes (ops.Tx) ----

// LockOps implements ops.Tx. SQLite transactions here are IMMEDIATE and
// already serialised; PostgreSQL takes a transaction-scoped advisory lock.
func (t *Tx) LockOps(ctx context.Context) error {
	if t.dialect != Postgres {
		return nil
	}
	if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock(7242020)`); err != nil {
		return opsErr("lock ops", err)
	}
	return nil
}

// InsertJoinToken implements ops.Tx.
func (t *Tx) InsertJoinToken(ctx context.Context, j ops.JoinToken) error {
	_, err := t.Exec(ctx, `INSERT INTO ops_join_tokens (id, hash, services, labels, created_by, created_at, expires_at, used_at, host_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		j.ID, j.Hash, opsJSON(j.Services), opsJSON(nonNilLabels(j.Labels)), j.CreatedBy, opsNanos(j.CreatedAt), opsNanos(j.ExpiresAt), opsNanos(j.UsedAt), j.HostID)
	if err != nil {
		return opsErr("insert join token "+j.ID, err)
	}
	return nil
}

func nonNilLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ClaimJoinToken implements ops.Tx.
func (t *Tx) ClaimJoinToken(ctx context.Context, hash []byte, hostID, keySHA256 string, now time.Time) (ops.JoinToken, error) {
	var j ops.JoinToken
	var services, labels string
	var created, expires int64
	err := t.QueryRow(ctx, `UPDATE ops_join_tokens SET used_at = $1, host_id = $2, key_sha256 = $4
		WHERE hash = $3 AND used_at = 0 AND expires_at > $1
		RETURNING id, services, labels, created_by, created_at, expires_at`,
		now.UnixNano(), hostID, hash, keySHA256).Scan(&j.ID, &services, &labels, &j.CreatedBy, &created, &expires)
	if err != nil {
		return ops.JoinToken{}, opsErr("claim join token", err)
	}
	j.Hash, j.HostID, j.UsedAt, j.KeySHA256 = hash, hostID, now, keySHA256
	j.CreatedAt, j.ExpiresAt = opsTime(created), opsTime(expires)
	return j, decodeJoinTokenSets(&j, services, labels)
}

// SpentJoinToken implements ops.Tx.
func (t *Tx) SpentJoinToken(ctx context.Context, hash []byte, keySHA256 string, now time.Time) (ops.JoinToken, error) {
	var j ops.JoinToken
	var services, labels string
	var created, expires, used int64
	err := t.QueryRow(ctx, `SELECT id, services, labels, created_by, created_at, expires_at, used_at, host_id FROM ops_join_tokens
		WHERE hash = $1 AND used_at > 0 AND key_sha256 = $2 AND key_sha256 <> '' AND expires_at > $3`,
		hash, keySHA256, now.UnixNano()).Scan(&j.ID, &services, &labels, &j.CreatedBy, &created, &expires, &used, &j.HostID)
	if err != nil {
		return ops.JoinToken{}, opsErr("find spent join token", err)
	}
	j.Hash, j.KeySHA256 = hash, keySHA256
	j.CreatedAt, j.ExpiresAt, j.UsedAt = opsTime(created), opsTime(expires), opsTime(used)
	return j, decodeJoinTokenSets(&j, services, labels)
}

func decodeJoinTokenSets(j *ops.JoinToken, services, labels string) error {
	if err := json.Unmarshal([]byte(services), &j.Services); err != nil {
		return fmt.Errorf("decode services of join token %s: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(labels), &j.Labels); err != nil {
		return fmt.Errorf("decode labels of join token %s: %w", j.ID, err)
	}
	return nil
}

// InsertHost implements ops.Tx.
func (t *Tx) InsertHost(ctx context.Context, h ops.Host, enrolledAt time.Time) error {
	services := h.Services
	if services == nil {
		services = []string{}
	}
	_, err := t.Exec(ctx, `INSERT INTO ops_hosts (id, name, services, labels, in_service, healthy, last_seen, enrolled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		h.ID, h.Name, opsJSON(services), opsJSON(nonNilLabels(h.Labels)), opsBool(h.InService), opsBool(h.Healthy), opsNanos(h.LastSeen), opsNanos(enrolledAt))
	if err != nil {
		return opsErr("insert host "+h.ID, err)
	}
	return nil
}

func expectOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w: %w", what, ops.ErrNotFound, ErrNotFound)
	}
	return nil
}

// SetHostHeartbeat implements ops.Tx.
func (t *Tx) SetHostHeartbeat(ctx context.Context, id string, healthy bool, at time.Time) error {
	res, err := t.Exec(ctx, `UPDATE ops_hosts SET healthy = $1, last_seen = $2 WHERE id = $3`, opsBool(healthy), at.UnixNano(), id)
	if err != nil {
		return opsErr("heartbeat of host "+id, err)
	}
	return expectOne(res, "heartbeat of host "+id)
}

// SetHostInService implements ops.Tx.
func (t *Tx) SetHostInService(ctx context.Context, id string, inService bool) error {
	res, err := t.Exec(ctx, `UPDATE ops_hosts SET in_service = $1 WHERE id = $2`, opsBool(inService), id)
	if err != nil {
		return opsErr("set in-service of host "+id, err)
	}
	return expectOne(res, "set in-service of host "+id)
}

// RevokeHost implements ops.Tx.
func (t *Tx) RevokeHost(ctx context.Context, id string, at time.Time) error {
	res, err := t.Exec(ctx, `UPDATE ops_hosts SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, at.UnixNano(), id)
	if err != nil {
		return opsErr("revoke host "+id, err)
	}
	if err := expectOne(res, "revoke host "+id); err != nil {
		return err
	}
	return t.bumpIdentityGeneration(ctx, "revoke host "+id)
}

// PutService implements ops.Tx.
func (t *Tx) PutService(ctx context.Context, s ops.Service, at time.Time) error {
	freezes := s.Freezes
	if freezes == nil {
		freezes = []ops.Window{}
	}
	_, err := t.Exec(ctx, `INSERT INTO ops_services (name, min_healthy, max_per_operation, freezes, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET min_healthy = excluded.min_healthy, max_per_operation = excluded.max_per_operation,
			freezes = excluded.freezes, updated_at = excluded.updated_at`,
		s.Name, s.MinHealthy.String(), s.MaxPerOperation.String(), opsJSON(freezes), at.UnixNano())
	if err != nil {
		return opsErr("put service "+s.Name, err)
	}
	return nil
}

// EnsureServices implements ops.Tx.
func (t *Tx) EnsureServices(ctx context.Context, names []string, at time.Time) error {
	for _, n := range names {
		if _, err := t.Exec(ctx, `INSERT INTO ops_services (name, min_healthy, max_per_operation, freezes, updated_at)
			VALUES ($1, '', '', '[]', $2) ON CONFLICT (name) DO NOTHING`, n, at.UnixNano()); err != nil {
			return opsErr("ensure service "+n, err)
		}
	}
	return nil
}

// InsertRunbookVersion implements ops.Tx.
func (t *Tx) InsertRunbookVersion(ctx context.Context, v ops.RunbookVersion) error {
	_, err := t.Exec(ctx, `INSERT INTO ops_runbooks (name, version, source, applied_by, applied_at) VALUES ($1, $2, $3, $4, $5)`,
		v.Name, v.Version, v.Source, v.AppliedBy, opsNanos(v.AppliedAt))
	if err != nil {
		return opsErr(fmt.Sprintf("insert runbook %s v%d", v.Name, v.Version), err)
	}
	return nil
}

// InsertOperation implements ops.Tx.
func (t *Tx) InsertOperation(ctx context.Context, op ops.Operation) error {
	_, err := t.Exec(ctx, `INSERT INTO ops_operations (id, runbook, state, requester_id, reason, break_glass, plan, plan_hash,
		approvals, needed, needed_roles, current_wave, detail, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		op.ID, op.Plan.Runbook, string(op.State), op.RequesterID, op.Reason, opsBool(op.BreakGlass), opsJSON(op.Plan), op.Plan.Hash,
		opsJSON(nonNilApprovals(op.Approvals)), op.Needed, opsJSON(nonNilStrings(op.NeededRoles)), op.CurrentWave, op.Detail,
		opsNanos(op.CreatedAt), opsNanos(op.UpdatedAt))
	if err != nil {
		return opsErr("insert op "+op.ID, err)
	}
	return nil
}

// UpdateOperation implements ops.Tx. The plan, requester and reason of an
// operation never change.
func (t *Tx) UpdateOperation(ctx context.Context, op ops.Operation) error {
	res, err := t.Exec(ctx, `UPDATE ops_operations SET state = $1, approvals = $2, needed = $3, needed_roles = $4,
		current_wave = $5, detail = $6, updated_at = $7 WHERE id = $8`,
		string(op.State), opsJSON(nonNilApprovals(op.Approvals)), op.Needed, opsJSON(nonNilStrings(op.NeededRoles)),
		op.CurrentWave, op.Detail, opsNanos(op.UpdatedAt), op.ID)
	if err != nil {
		return opsErr("update op "+op.ID, err)
	}
	return expectOne(res, "update op "+op.ID)
}

func nonNilApprovals(a []ops.Approval) []ops.Approval {
	if a == nil {
		return []ops.Approval{}
	}
	return a
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
