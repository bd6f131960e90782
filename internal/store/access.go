package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/training"
)

// Just-in-time elevation, training records and the detector's cursor
// (migrations 470–479; issue 12).

// ElevateStore returns the adapter that satisfies elevate.Store.
func (db *DB) ElevateStore() elevate.Store { return elevateStore{accessReads{db}, db} }

// TrainingStore returns the adapter that satisfies training.Store.
func (db *DB) TrainingStore() training.Store { return trainingStore{accessReads{db}, db} }

type elevateStore struct {
	accessReads
	db *DB
}

func (s elevateStore) InTx(ctx context.Context, fn func(elevate.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

func (elevateStore) IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

type trainingStore struct {
	accessReads
	db *DB
}

func (s trainingStore) InTx(ctx context.Context, fn func(training.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

var (
	_ elevate.Tx  = (*Tx)(nil)
	_ training.Tx = (*Tx)(nil)
)

// accessReads implements the reads on a DB or a Tx.
type accessReads struct{ q querier }

const grantCols = `id, person_id, role, reason, duration_s, state, requested_at, needed, approver_roles, policy_ids, approvals,
	starts_at, expires_at, ended_at, ended_by, end_reason`

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func scanGrant(sc interface{ Scan(...any) error }) (elevate.Grant, error) {
	var g elevate.Grant
	var dur, req, starts, expires, ended int64
	var roles, pids, approvals string
	if err := sc.Scan(&g.ID, &g.PersonID, &g.Role, &g.Reason, &dur, &g.State, &req, &g.Needed, &roles, &pids, &approvals,
		&starts, &expires, &ended, &g.EndedBy, &g.EndReason); err != nil {
		return g, err
	}
	g.Duration = time.Duration(dur) * time.Second
	g.RequestedAt, g.StartsAt, g.ExpiresAt, g.EndedAt = identityTime(req), identityTime(starts), identityTime(expires), identityTime(ended)
	g.ApproverRoles, g.PolicyIDs = splitList(roles), splitList(pids)
	if err := json.Unmarshal([]byte(approvals), &g.Approvals); err != nil {
		return g, fmt.Errorf("grant %s approvals: %w", g.ID, err)
	}
	return g, nil
}

func (r accessReads) grants(ctx context.Context, where string, args ...any) ([]elevate.Grant, error) {
	rows, err := r.q.Query(ctx, `SELECT `+grantCols+` FROM elevation_grants `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", mapErr(err))
	}
	defer rows.Close()
	var out []elevate.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("scan grant: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func (r accessReads) ElevationGrant(ctx context.Context, id string) (elevate.Grant, error) {
	g, err := scanGrant(r.q.QueryRow(ctx, `SELECT `+grantCols+` FROM elevation_grants WHERE id = $1`, id))
	if err != nil {
		return g, fmt.Errorf("read grant %s: %w", id, mapErr(err))
	}
	return g, nil
}

func (r accessReads) ElevationGrants(ctx context.Context, personID string) ([]elevate.Grant, error) {
	if personID == "" {
		return r.grants(ctx, `ORDER BY requested_at DESC, id`)
	}
	return r.grants(ctx, `WHERE person_id = $1 ORDER BY requested_at DESC, id`, personID)
}

func (r accessReads) ActiveElevationGrants(ctx context.Context, personID string, now time.Time) ([]elevate.Grant, error) {
	return r.grants(ctx, `WHERE person_id = $1 AND state = $2 AND expires_at > $3 ORDER BY requested_at, id`,
		personID, elevate.StateActive, now.UnixNano())
}

func (r accessReads) DueElevationGrants(ctx context.Context, now, pendingBefore time.Time) ([]elevate.Grant, error) {
	return r.grants(ctx, `WHERE (state = $1 AND expires_at <= $2) OR (state = $3 AND requested_at <= $4) ORDER BY requested_at, id`,
		elevate.StateActive, now.UnixNano(), elevate.StatePending, pendingBefore.UnixNano())
}

func (r accessReads) EligibleRoles(ctx context.Context, personID string) ([]elevate.Eligibility, error) {
	q := `SELECT person_id, role, granted_by, granted_at FROM elevation_eligibility`
	var args []any
	if personID != "" {
		q += ` WHERE person_id = $1`
		args = append(args, personID)
	}
	rows, err := r.q.Query(ctx, q+` ORDER BY person_id, role`, args...)
	if err != nil {
		return nil, fmt.Errorf("read eligibility: %w", mapErr(err))
	}
	defer rows.Close()
	var out []elevate.Eligibility
	for rows.Next() {
		var e elevate.Eligibility
		var at int64
		if err := rows.Scan(&e.PersonID, &e.Role, &e.GrantedBy, &at); err != nil {
			return nil, fmt.Errorf("scan eligibility: %w", err)
		}
		e.GrantedAt = identityTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r accessReads) TrainingRecords(ctx context.Context, personID string) ([]training.Record, error) {
	q := `SELECT person_id, course, completed_at, expires_at, recorded_by, recorded_at FROM training_records`
	var args []any
	if personID != "" {
		q += ` WHERE person_id = $1`
		args = append(args, personID)
	}
	rows, err := r.q.Query(ctx, q+` ORDER BY person_id, course`, args...)
	if err != nil {
		return nil, fmt.Errorf("read training: %w", mapErr(err))
	}
	defer rows.Close()
	var out []training.Record
	for rows.Next() {
		var t training.Record
		var done, exp, at int64
		if err := rows.Scan(&t.PersonID, &t.Course, &done, &exp, &t.RecordedBy, &at); err != nil {
			return nil, fmt.Errorf("scan training: %w", err)
		}
		t.CompletedAt, t.ExpiresAt, t.RecordedAt = identityTime(done), identityTime(exp), identityTime(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

func (t *Tx) ElevationGrant(ctx context.Context, id string) (elevate.Grant, error) {
	return accessReads{t}.ElevationGrant(ctx, id)
}

func (t *Tx) ElevationGrants(ctx context.Context, personID string) ([]elevate.Grant, error) {
	return accessReads{t}.ElevationGrants(ctx, personID)
}

func (t *Tx) ActiveElevationGrants(ctx context.Context, personID string, now time.Time) ([]elevate.Grant, error) {
	return accessReads{t}.ActiveElevationGrants(ctx, personID, now)
}

func (t *Tx) DueElevationGrants(ctx context.Context, now, pendingBefore time.Time) ([]elevate.Grant, error) {
	return accessReads{t}.DueElevationGrants(ctx, now, pendingBefore)
}

func (t *Tx) EligibleRoles(ctx context.Context, personID string) ([]elevate.Eligibility, error) {
	return accessReads{t}.EligibleRoles(ctx, personID)
}

func (t *Tx) TrainingRecords(ctx context.Context, personID string) ([]training.Record, error) {
	return accessReads{t}.TrainingRecords(ctx, personID)
}

func grantApprovals(g elevate.Grant) (string, error) {
	as := g.Approvals
	if as == nil {
		as = []elevate.Approval{}
	}
	b, err := json.Marshal(as)
	return string(b), err
}

func (t *Tx) InsertElevationGrant(ctx context.Context, g elevate.Grant) error {
	approvals, err := grantApprovals(g)
	if err != nil {
		return err
	}
	_, err = t.Exec(ctx, `INSERT INTO elevation_grants (`+grantCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
		g.ID, g.PersonID, g.Role, g.Reason, int64(g.Duration/time.Second), g.State, identityNanos(g.RequestedAt), g.Needed,
		strings.Join(g.ApproverRoles, ","), strings.Join(g.PolicyIDs, ","), approvals,
		identityNanos(g.StartsAt), identityNanos(g.ExpiresAt), identityNanos(g.EndedAt), g.EndedBy, g.EndReason)
	if err != nil {
		return fmt.Errorf("insert grant: %w", mapErr(err))
	}
	return nil
}

func (t *Tx) UpdateElevationGrant(ctx context.Context, g elevate.Grant) error {
	approvals, err := grantApprovals(g)
	if err != nil {
		return err
	}
	res, err := t.Exec(ctx, `UPDATE elevation_grants SET state = $2, approvals = $3, starts_at = $4, expires_at = $5, ended_at = $6,
		ended_by = $7, end_reason = $8 WHERE id = $1`,
		g.ID, g.State, approvals, identityNanos(g.StartsAt), identityNanos(g.ExpiresAt), identityNanos(g.EndedAt), g.EndedBy, g.EndReason)
	if err != nil {
		return fmt.Errorf("update grant: %w", mapErr(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update grant %s: %w", g.ID, ErrNotFound)
	}
	return nil
}

func (t *Tx) SetEligibleRoles(ctx context.Context, personID string, roles []elevate.Eligibility) error {
	if _, err := t.Exec(ctx, `DELETE FROM elevation_eligibility WHERE person_id = $1`, personID); err != nil {
		return fmt.Errorf("clear eligibility: %w", mapErr(err))
	}
	for _, e := range roles {
		if _, err := t.Exec(ctx, `INSERT INTO elevation_eligibility (person_id, role, granted_by, granted_at) VALUES ($1, $2, $3, $4)`,
			personID, e.Role, e.GrantedBy, identityNanos(e.GrantedAt)); err != nil {
			return fmt.Errorf("insert eligibility: %w", mapErr(err))
		}
	}
	return nil
}

func (t *Tx) PutTrainingRecord(ctx context.Context, r training.Record) error {
	_, err := t.Exec(ctx, `INSERT INTO training_records (person_id, course, completed_at, expires_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (person_id, course) DO UPDATE SET completed_at = excluded.completed_at, expires_at = excluded.expires_at,
			recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at`,
		r.PersonID, r.Course, identityNanos(r.CompletedAt), identityNanos(r.ExpiresAt), r.RecordedBy, identityNanos(r.RecordedAt))
	if err != nil {
		return fmt.Errorf("store training record: %w", mapErr(err))
	}
	return nil
}

// DetectCursor is the next log index the misuse detector reads (0 when it
// never ran).
func (db *DB) DetectCursor(ctx context.Context) (uint64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT next_index FROM detect_cursor WHERE id = 1`).Scan(&n)
	if err != nil {
		if errors.Is(mapErr(err), ErrNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("read detector cursor: %w", err)
	}
	return uint64(n), nil
}

// PutDetectCursor stores the detector's next index inside tx, with the
// alerts it wrote for the entries before it.
func (t *Tx) PutDetectCursor(ctx context.Context, next uint64) error {
	_, err := t.Exec(ctx, `INSERT INTO detect_cursor (id, next_index) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET next_index = excluded.next_index`, int64(next))
	if err != nil {
		return fmt.Errorf("store detector cursor: %w", mapErr(err))
	}
	return nil
}
