package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB { return storetest.OpenSQLite(t) })
}

func TestPostgres(t *testing.T) {
	storetest.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) *store.DB { return storetest.OpenPostgres(t) })
}

// TestNotifyReachesListeners: a notification sent through one pool
// reaches a listener on another (two servers), with its payload.
func TestNotifyReachesListeners(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *store.DB {
		db, err := store.Open(ctx, store.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	got := make(chan string, 4)
	if err := b.Listen(ctx, func(ch, payload string) { got <- ch + ":" + payload }, "interlock_ops"); err != nil {
		t.Fatal(err)
	}
	if err := a.Notify(ctx, "interlock_other", "x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Notify(ctx, "interlock_ops", "op_1"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "interlock_ops:op_1" {
			t.Fatalf("got %q, want interlock_ops:op_1 (and nothing from a channel not listened to)", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
	}
}
