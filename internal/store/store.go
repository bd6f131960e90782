// Package store is Interlock's one SQL implementation: SQLite (embedded,
// default) and PostgreSQL dialects behind the same queries, the embedded
// versioned schema, and the adapters that satisfy each domain package's
// small Store interface. Only internal/app (and tests) import it.
//
// Queries use $1, $2… placeholders, which both modernc.org/sqlite and pgx
// accept, so there is a single text for every query.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

var (
	// ErrNotFound is returned when a row that a caller asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write violates a uniqueness constraint.
	ErrConflict = errors.New("already exists")
)

// Config says where the database lives. The zero value is not usable:
// either DSN or DataDir must be set.
type Config struct {
	// DSN is "postgres://…" for PostgreSQL, or a SQLite file path. Empty
	// means DataDir/interlock.db.
	DSN string
	// DataDir holds the SQLite file when DSN is empty.
	DataDir string
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// DB is an open, migrated database.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	log     *slog.Logger
	group   groupCommit // InTxGrouped (groupcommit.go)
}

// Open opens the database named by cfg and applies every pending migration.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{log: log}
	var err error
	switch {
	case strings.HasPrefix(cfg.DSN, "postgres://") || strings.HasPrefix(cfg.DSN, "postgresql://"):
		db.dialect = Postgres
		db.sql, err = sql.Open("pgx", cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.sql.SetMaxOpenConns(32)
	default:
		db.dialect = SQLite
		path := cfg.DSN
		if path == "" {
			if cfg.DataDir == "" {
				return nil, errors.New("open store: neither DSN nor data dir is set")
			}
			path = filepath.Join(cfg.DataDir, "interlock.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		// WAL for concurrent readers; IMMEDIATE transactions so that two
		// writers queue on busy_timeout instead of failing on upgrade.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_pragma=secure_delete(ON)&_txlock=immediate"
		db.sql, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.sql.SetMaxOpenConns(8)
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("connect to %s store: %w", db.dialect, err)
	}
	if db.dialect == SQLite {
		// The file may have been created just now; keep it private.
		if p := sqlitePath(cfg); p != "" {
			_ = os.Chmod(p, 0o600)
		}
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

func sqlitePath(cfg Config) string {
	if cfg.DSN != "" {
		return cfg.DSN
	}
	return filepath.Join(cfg.DataDir, "interlock.db")
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// Dialect reports which engine this DB uses.
func (db *DB) Dialect() Dialect { return db.dialect }

// Exec runs a statement outside a transaction. Prefer InTx for writes that
// carry an audit entry.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, q, args...)
}

// Query runs a read query.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, q, args...)
}

// QueryRow runs a read query that returns at most one row.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, q, args...)
}

// Tx is one database transaction. Domain adapters in this package hang
// their write methods on it, so one *Tx satisfies every domain's Tx
// interface and a state change and its audit entry commit together.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
}

// Exec runs a statement inside the transaction.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, q, args...)
}

// Query runs a query inside the transaction.
func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, q, args...)
}

// QueryRow runs a single-row query inside the transaction.
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, q, args...)
}

// Dialect reports which engine this transaction runs on.
func (t *Tx) Dialect() Dialect { return t.dialect }

// InTx runs fn in one transaction and commits it if fn returns nil. It
// retries the whole function a few times when the engine reports a
// transient conflict (SQLite busy, PostgreSQL serialization failure), so fn
// MUST NOT have effects outside the transaction.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !isTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return err
}

func (db *DB) inTxOnce(ctx context.Context, fn func(*Tx) error) (err error) {
	sqlTx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", mapErr(err))
	}
	defer func() {
		if err != nil {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(&Tx{tx: sqlTx, dialect: db.dialect}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

func isTransient(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// MapErr turns driver errors into ErrNotFound and ErrConflict where they
// mean that, keeping the original error wrapped for operators.
func MapErr(err error) error { return mapErr(err) }

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}
