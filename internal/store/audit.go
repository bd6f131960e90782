package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/interlock-dev/interlock/internal/cluster"
	"github.com/interlock-dev/interlock/internal/usererr"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/tlog"
)

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const auditInsertCols = `kind, version, actor, subject, at_unix_nano, idem_key, data, commitments, personal, salts`

func auditArgs(r audit.Record) ([]any, error) {
	p, salts, err := audit.EncodeOpenings(r.Personal)
	if err != nil {
		return nil, err
	}
	return []any{r.Kind, r.Version, r.Actor, r.Subject, r.Time.UnixNano(), nullString(r.IdempotencyKey), r.Data, r.Commitments, p, salts}, nil
}

// InsertAuditRecord implements audit.Tx. A repeated idempotency key
// inserts nothing and returns an error wrapping audit.ErrDuplicate; the
// transaction stays usable (ON CONFLICT DO NOTHING).
func (t *Tx) InsertAuditRecord(ctx context.Context, r audit.Record) error {
	args, err := auditArgs(r)
	if err != nil {
		return err
	}
	res, err := t.Exec(ctx, `INSERT INTO audit_entries (`+auditInsertCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING`, args...)
	if err != nil {
		return fmt.Errorf("insert audit record: %w", mapErr(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("idempotency key %q: %w", r.IdempotencyKey, audit.ErrDuplicate)
	}
	return nil
}

// InsertAuditRecords implements audit.BatchInserter with multi-row
// INSERTs of auditChunk rows, prepared once per call (parsing dominates
// the cost of an INSERT in SQLite). Records MUST NOT carry idempotency
// keys (the Appender inserts those one by one).
func (t *Tx) InsertAuditRecords(ctx context.Context, rs []audit.Record) error {
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for len(rs) > 0 {
		n := min(len(rs), auditChunk)
		args := make([]any, 0, auditCols*n)
		for _, r := range rs[:n] {
			if r.IdempotencyKey != "" {
				return errors.New("insert audit records: batched records cannot carry idempotency keys")
			}
			a, err := auditArgs(r)
			if err != nil {
				return err
			}
			args = append(args, a...)
		}
		var err error
		if n == auditChunk {
			if full == nil {
				if full, err = t.tx.PrepareContext(ctx, t.multiInsert(n)); err != nil {
					return fmt.Errorf("prepare audit insert: %w", err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = t.Exec(ctx, t.multiInsert(n), args...)
		}
		if err != nil {
			return fmt.Errorf("insert %d audit records: %w", n, mapErr(err))
		}
		rs = rs[n:]
	}
	return nil
}

const (
	auditChunk = 256
	auditCols  = 10
)

func (t *Tx) multiInsert(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_entries (` + auditInsertCols + `) VALUES `)
	for i := 0; i < rows; i++ {
		if i > 0 {
			q.WriteByte(',')
		}
		if t.dialect == SQLite {
			// Positional "?" parameters: SQLite resolves "$N" by name, which
			// is quadratic in the number of parameters.
			q.WriteString("(?" + strings.Repeat(",?", auditCols-1) + ")")
		} else {
			q.WriteByte('(')
			for c := 1; c <= auditCols; c++ {
				if c > 1 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "$%d", auditCols*i+c)
			}
			q.WriteByte(')')
		}
	}
	return q.String()
}

func checkSavepointName(name string) error {
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("savepoint name %q: only a-z, 0-9 and _", name)
		}
	}
	return nil
}

// AuditSavepoint implements audit.Savepointer.
func (t *Tx) AuditSavepoint(ctx context.Context, name string) error {
	if err := checkSavepointName(name); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "SAVEPOINT "+name)
	return err
}

// AuditReleaseSavepoint implements audit.Savepointer.
func (t *Tx) AuditReleaseSavepoint(ctx context.Context, name string) error {
	if err := checkSavepointName(name); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "RELEASE SAVEPOINT "+name)
	return err
}

// AuditRollbackToSavepoint implements audit.Savepointer.
func (t *Tx) AuditRollbackToSavepoint(ctx context.Context, name string) error {
	if err := checkSavepointName(name); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
	return err
}

// AuditStore returns the audit.Store over this database.
func (db *DB) AuditStore() audit.Store { return auditStore{db: db} }

// FencedAuditStore is AuditStore for several servers: every sequencer
// transaction (integration, checkpoint, fork) first checks, in the same
// transaction, that this server still holds the lease fence names with
// its token (Tx.CheckLease), so that a server that lost the sequencer
// lease — paused, partitioned — can never sign or integrate after another
// took over. fence returns ok false when this server holds no lease.
func (db *DB) FencedAuditStore(fence func() (name string, token int64, ok bool)) audit.Store {
	return auditStore{db: db, fence: fence}
}

type auditStore struct {
	db    *DB
	fence func() (string, int64, bool)
}

// querier is what both *DB reads and *Tx offer.
type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", audit.ErrNotFound, ErrNotFound)
	}
	return err
}

func (s auditStore) Sequence(ctx context.Context, fn func(audit.SeqTx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error {
		if err := tx.auditPrepare(ctx); err != nil {
			return err
		}
		if tx.dialect == Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7242100)`); err != nil {
				return fmt.Errorf("take the sequencer lock: %w", err)
			}
		}
		if s.fence != nil {
			name, token, ok := s.fence()
			err := error(cluster.ErrFenced)
			if ok {
				err = tx.CheckLease(ctx, name, token)
			}
			if errors.Is(err, cluster.ErrFenced) {
				// Only a fork reaches here from a request: say where it can work.
				return usererr.Wrap(err, usererr.Conflict, "not_log_sequencer",
					"This server does not hold the audit log's sequencer lease, so it cannot write the log's tree (a log fork is recorded by the server that signs); send the request to another of the servers sharing this database.")
			}
			if err != nil {
				return err
			}
		}
		return fn(seqTx{tx})
	})
}

// auditPrepare makes SQLite overwrite freed bytes on this connection, so
// that rewriting an entry row (integration, redaction) leaves no stale
// copy of its personal data in the file.
func (t *Tx) auditPrepare(ctx context.Context) error {
	if t.dialect != SQLite {
		return nil
	}
	if _, err := t.Exec(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("enable secure_delete: %w", err)
	}
	return nil
}

func (s auditStore) Redact(ctx context.Context, fn func(audit.RedactTx) error) error {
	err := s.db.InTx(ctx, func(tx *Tx) error {
		if err := tx.auditPrepare(ctx); err != nil {
			return err
		}
		return fn(redactTx{tx})
	})
	if err != nil {
		return err
	}
	if s.db.dialect == SQLite {
		// Old page images live in the WAL until it is checkpointed.
		var busy, logged, done int
		if err := s.db.QueryRow(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
			return fmt.Errorf("checkpoint the WAL after redaction: %w", err)
		}
		if busy != 0 {
			return errors.New("checkpoint the WAL after redaction: the database is busy; the erased data may remain in the WAL until the next checkpoint")
		}
	}
	return nil
}

func treeState(ctx context.Context, q querier) (audit.TreeState, error) {
	var st audit.TreeState
	err := q.QueryRow(ctx, `SELECT size, root, frontier FROM audit_tree WHERE id = 1`).Scan(&st.Size, &st.Root, &st.Frontier)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.TreeState{}, nil
	}
	if err != nil {
		return audit.TreeState{}, fmt.Errorf("read tree state: %w", err)
	}
	return st, nil
}

func (s auditStore) TreeState(ctx context.Context) (audit.TreeState, error) {
	return treeState(ctx, s.db)
}

const entryCols = `id, idx, kind, version, actor, subject, at_unix_nano, idem_key, data, commitments, personal, salts, actor_seq, actor_prev`

func scanEntries(rows *sql.Rows) ([]audit.StoredEntry, error) {
	defer rows.Close()
	var out []audit.StoredEntry
	for rows.Next() {
		var (
			e               audit.StoredEntry
			idx, seq        sql.NullInt64
			idem            sql.NullString
			ns              int64
			personal, salts []byte
		)
		if err := rows.Scan(&e.ID, &idx, &e.Kind, &e.Version, &e.Actor, &e.Subject, &ns, &idem, &e.Data, &e.Commitments, &personal, &salts, &seq, &e.ActorPrev); err != nil {
			return nil, fmt.Errorf("scan audit entry: %w", err)
		}
		e.Integrated, e.Index, e.ActorSeq = idx.Valid, uint64(idx.Int64), uint64(seq.Int64)
		e.IdempotencyKey = idem.String
		e.Time = time.Unix(0, ns).UTC()
		if len(e.ActorPrev) == 0 {
			e.ActorPrev = nil
		}
		e.PersonalJSON, e.SaltsJSON = personal, salts
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s auditStore) Entries(ctx context.Context, start, end uint64) ([]audit.StoredEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT `+entryCols+` FROM audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, int64(start), int64(end))
	if err != nil {
		return nil, fmt.Errorf("read audit entries: %w", err)
	}
	return scanEntries(rows)
}

func readTiles(ctx context.Context, q querier, tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for start := 0; start < len(tiles); start += 50 {
		chunk := tiles[start:min(len(tiles), start+50)]
		var where []string
		var args []any
		for _, t := range chunk {
			where = append(where, fmt.Sprintf("(level = $%d AND idx = $%d)", len(args)+1, len(args)+2))
			args = append(args, int64(t.Level), int64(t.Index))
		}
		rows, err := q.Query(ctx, `SELECT level, idx, hashes FROM audit_tiles WHERE `+strings.Join(where, " OR "), args...)
		if err != nil {
			return nil, fmt.Errorf("read tiles: %w", err)
		}
		got := map[[2]int64][]byte{}
		for rows.Next() {
			var l, i int64
			var h []byte
			if err := rows.Scan(&l, &i, &h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read tiles: %w", err)
			}
			got[[2]int64{l, i}] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read tiles: %w", err)
		}
		for k, t := range chunk {
			h := got[[2]int64{int64(t.Level), int64(t.Index)}]
			if len(h) < t.Width*tlog.HashSize {
				return nil, fmt.Errorf("tile %s: %d of %d bytes stored", t.Path(), len(h), t.Width*tlog.HashSize)
			}
			out[start+k] = h[:t.Width*tlog.HashSize]
		}
	}
	return out, nil
}

func (s auditStore) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	return readTiles(ctx, s.db, tiles)
}

const checkpointCols = `id, size, root, at_unix_nano, note`

func scanCheckpoint(sc interface{ Scan(...any) error }) (audit.StoredCheckpoint, error) {
	var c audit.StoredCheckpoint
	var ns int64
	if err := sc.Scan(&c.ID, &c.Size, &c.Root, &ns, &c.Note); err != nil {
		return audit.StoredCheckpoint{}, notFound(err)
	}
	c.Time = time.Unix(0, ns).UTC()
	return c, nil
}

func latestCheckpoint(ctx context.Context, q querier) (audit.StoredCheckpoint, error) {
	c, err := scanCheckpoint(q.QueryRow(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints ORDER BY id DESC LIMIT 1`))
	if err != nil {
		return c, fmt.Errorf("latest checkpoint: %w", err)
	}
	return c, nil
}

func (s auditStore) LatestCheckpoint(ctx context.Context) (audit.StoredCheckpoint, error) {
	return latestCheckpoint(ctx, s.db)
}

func (s auditStore) CheckpointsSince(ctx context.Context, afterID int64, limit int) ([]audit.StoredCheckpoint, error) {
	rows, err := s.db.Query(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []audit.StoredCheckpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s auditStore) Cosignatures(ctx context.Context, checkpointID int64) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT line FROM audit_cosignatures WHERE checkpoint_id = $1 ORDER BY witness`, checkpointID)
	if err != nil {
		return nil, fmt.Errorf("read cosignatures: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func (s auditStore) AddCosignature(ctx context.Context, checkpointID int64, witness, line string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO audit_cosignatures (checkpoint_id, witness, line) VALUES ($1, $2, $3)
		ON CONFLICT (checkpoint_id, witness) DO UPDATE SET line = excluded.line`, checkpointID, witness, line)
	if err != nil {
		return fmt.Errorf("store cosignature: %w", mapErr(err))
	}
	return nil
}

func (s auditStore) LogKey(ctx context.Context) ([]byte, string, error) {
	var sealed []byte
	var vkey string
	if err := s.db.QueryRow(ctx, `SELECT sealed, vkey FROM audit_log_key WHERE id = 1`).Scan(&sealed, &vkey); err != nil {
		return nil, "", fmt.Errorf("read log key: %w", notFound(err))
	}
	return sealed, vkey, nil
}

func (s auditStore) PutLogKey(ctx context.Context, sealed []byte, vkey string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO audit_log_key (id, sealed, vkey) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, sealed, vkey)
	if err != nil {
		return fmt.Errorf("store log key: %w", mapErr(err))
	}
	return nil
}

func (s auditStore) PendingCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries WHERE idx IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending entries: %w", err)
	}
	return n, nil
}

// seqTx is the sequencer's view of a transaction.
type seqTx struct{ t *Tx }

func (s seqTx) TreeState(ctx context.Context) (audit.TreeState, error) { return treeState(ctx, s.t) }

func (s seqTx) PendingEntries(ctx context.Context, limit int) ([]audit.StoredEntry, error) {
	rows, err := s.t.Query(ctx, `SELECT `+entryCols+` FROM audit_entries WHERE idx IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending entries: %w", err)
	}
	return scanEntries(rows)
}

func (s seqTx) ActorStates(ctx context.Context, actors []string) (map[string]audit.ActorState, error) {
	out := map[string]audit.ActorState{}
	for start := 0; start < len(actors); start += 500 {
		chunk := actors[start:min(len(actors), start+500)]
		ph := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, a := range chunk {
			ph[i], args[i] = fmt.Sprintf("$%d", i+1), a
		}
		rows, err := s.t.Query(ctx, `SELECT actor, seq, last_hash FROM audit_actors WHERE actor IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read actor chains: %w", err)
		}
		for rows.Next() {
			var a string
			var st audit.ActorState
			if err := rows.Scan(&a, &st.Seq, &st.LastHash); err != nil {
				rows.Close()
				return nil, err
			}
			out[a] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s seqTx) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	return readTiles(ctx, s.t, tiles)
}

func (s seqTx) IntegrateEntries(ctx context.Context, es []audit.Sequenced) error {
	stmt, err := s.t.tx.PrepareContext(ctx, `UPDATE audit_entries SET idx = $1, actor_seq = $2, actor_prev = $3 WHERE id = $4 AND idx IS NULL`)
	if err != nil {
		return fmt.Errorf("integrate entries: %w", err)
	}
	defer stmt.Close()
	for _, e := range es {
		res, err := stmt.ExecContext(ctx, int64(e.Index), int64(e.ActorSeq), e.ActorPrev, e.ID)
		if err != nil {
			return fmt.Errorf("integrate entry row %d: %w", e.ID, mapErr(err))
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("integrate entry row %d: it is gone or already integrated", e.ID)
		}
	}
	return nil
}

func (s seqTx) PutActorStates(ctx context.Context, states map[string]audit.ActorState) error {
	for a, st := range states {
		if _, err := s.t.Exec(ctx, `INSERT INTO audit_actors (actor, seq, last_hash) VALUES ($1, $2, $3)
			ON CONFLICT (actor) DO UPDATE SET seq = excluded.seq, last_hash = excluded.last_hash`, a, int64(st.Seq), st.LastHash); err != nil {
			return fmt.Errorf("store actor chain %s: %w", a, err)
		}
	}
	return nil
}

func (s seqTx) PutTiles(ctx context.Context, tiles []tlog.Tile, data [][]byte) error {
	for i, t := range tiles {
		if _, err := s.t.Exec(ctx, `INSERT INTO audit_tiles (level, idx, hashes) VALUES ($1, $2, $3)
			ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, int64(t.Level), int64(t.Index), data[i]); err != nil {
			return fmt.Errorf("store tile %s: %w", t.Path(), err)
		}
	}
	return nil
}

func (s seqTx) PutTreeState(ctx context.Context, st audit.TreeState) error {
	if _, err := s.t.Exec(ctx, `INSERT INTO audit_tree (id, size, root, frontier) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root, frontier = excluded.frontier`,
		int64(st.Size), st.Root, st.Frontier); err != nil {
		return fmt.Errorf("store tree state: %w", err)
	}
	return nil
}

func (s seqTx) LatestCheckpoint(ctx context.Context) (audit.StoredCheckpoint, error) {
	return latestCheckpoint(ctx, s.t)
}

func (s seqTx) InsertCheckpoint(ctx context.Context, c audit.StoredCheckpoint) (int64, error) {
	var id int64
	err := s.t.QueryRow(ctx, `INSERT INTO audit_checkpoints (size, root, at_unix_nano, note) VALUES ($1, $2, $3, $4) RETURNING id`,
		int64(c.Size), c.Root, c.Time.UnixNano(), c.Note).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store checkpoint: %w", err)
	}
	return id, nil
}

// redactTx is the redaction's view of a transaction.
type redactTx struct{ *Tx }

func (r redactTx) EntryAt(ctx context.Context, index uint64) (audit.StoredEntry, error) {
	rows, err := r.Query(ctx, `SELECT `+entryCols+` FROM audit_entries WHERE idx = $1`, int64(index))
	if err != nil {
		return audit.StoredEntry{}, fmt.Errorf("read entry %d: %w", index, err)
	}
	es, err := scanEntries(rows)
	if err != nil {
		return audit.StoredEntry{}, err
	}
	if len(es) == 0 {
		return audit.StoredEntry{}, fmt.Errorf("entry %d: %w", index, notFound(sql.ErrNoRows))
	}
	return es[0], nil
}

func (r redactTx) ErasePersonal(ctx context.Context, entryID int64) (int, error) {
	var personal, salts []byte
	if err := r.QueryRow(ctx, `SELECT personal, salts FROM audit_entries WHERE id = $1`, entryID).Scan(&personal, &salts); err != nil {
		return 0, fmt.Errorf("read entry row %d: %w", entryID, notFound(err))
	}
	fs, err := audit.DecodeOpenings(personal, salts)
	if err != nil {
		return 0, err
	}
	if _, err := r.Exec(ctx, `UPDATE audit_entries SET personal = NULL, salts = NULL WHERE id = $1`, entryID); err != nil {
		return 0, fmt.Errorf("erase personal data of entry row %d: %w", entryID, err)
	}
	return len(fs), nil
}
