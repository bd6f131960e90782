// Package storetest is the conformance suite that every store dialect
// passes. Each domain adds its behaviours with Register from its own file
// (storetest/<domain>.go); Run executes them all against one opener.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sort"
	"testing"

	"github.com/interlock-dev/interlock/internal/store"
)

// Opener returns a fresh, empty, migrated database for one test.
type Opener func(t *testing.T) *store.DB

var suites = map[string]func(t *testing.T, open Opener){}

// Register adds a named group of behaviours to the suite. Call it from a
// package-level var initialiser in this package's per-domain files.
func Register(name string, fn func(t *testing.T, open Opener)) bool {
	suites[name] = fn
	return true
}

// Run runs every registered group against open.
func Run(t *testing.T, open Opener) {
	names := make([]string, 0, len(suites))
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) { suites[n](t, open) })
	}
}

// OpenSQLite opens a fresh SQLite database in t's temporary directory.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL returns INTERLOCK_TEST_POSTGRES_URL, skipping t when unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("INTERLOCK_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("set INTERLOCK_TEST_POSTGRES_URL to run the PostgreSQL cases (.ci/run does)")
	}
	return u
}

// OpenPostgres creates a throwaway database on the server named by
// INTERLOCK_TEST_POSTGRES_URL, opens it, and drops it when t ends. It skips
// t when the variable is unset.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DSN: PostgresDSN(t)})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN creates a throwaway, empty database and returns its URL; the
// database is dropped when t ends. It skips t when
// INTERLOCK_TEST_POSTGRES_URL is unset.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "interlock_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres admin: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse INTERLOCK_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", base); err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	return u.String()
}
