package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// migrations holds the schema, one file per step, applied in lexical order
// of file name and recorded in schema_migrations. Files are written once
// for both engines; these tokens are replaced per dialect:
//
//	{{BLOB}}    BLOB    | BYTEA
//	{{AUTOID}}  INTEGER PRIMARY KEY AUTOINCREMENT | BIGSERIAL PRIMARY KEY
//
// Number ranges keep domains apart: 001–099 core (identity, inventory,
// operations), 100–199 audit log, 200–299 kms.
//
//go:embed migrations/*.sql
var migrations embed.FS

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		if err := db.applyMigration(ctx, name, db.rewrite(string(body))); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, name, body string) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			// Several servers may start at once; one migrates, the rest wait.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7242001)`); err != nil {
				return fmt.Errorf("lock migrations: %w", err)
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("check migration %s: %w", name, err)
		}
		if n > 0 {
			return nil
		}
		for _, stmt := range splitStatements(body) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, name, nowUnix())
		return err
	})
}

func (db *DB) rewrite(s string) string {
	r := strings.NewReplacer(
		"{{BLOB}}", map[Dialect]string{SQLite: "BLOB", Postgres: "BYTEA"}[db.dialect],
		"{{AUTOID}}", map[Dialect]string{SQLite: "INTEGER PRIMARY KEY AUTOINCREMENT", Postgres: "BIGSERIAL PRIMARY KEY"}[db.dialect],
	)
	return r.Replace(s)
}

// splitStatements splits a migration on semicolons at line ends. Migrations
// MUST NOT contain semicolons inside string literals or function bodies.
func splitStatements(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";\n") {
		if p := strings.TrimSpace(stripComments(part)); p != "" {
			out = append(out, strings.TrimSuffix(p, ";"))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
