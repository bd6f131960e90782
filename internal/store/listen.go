package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Listener delivers a value on C (without blocking; values coalesce)
// whenever a notification arrives on its PostgreSQL channel. It holds one
// connection of the pool until ctx given to Listen ends.
type Listener struct {
	C <-chan struct{}
}

// Listen subscribes to a PostgreSQL notification channel (LISTEN), for
// waking waiters on other servers at once instead of at their next poll.
// The listener stops when ctx ends; if its connection breaks it
// reconnects, so callers MUST still poll now and then (a notification sent
// while it reconnects is lost).
func (db *DB) Listen(ctx context.Context, channel string) (*Listener, error) {
	if db.dialect != Postgres {
		return nil, errors.New("LISTEN needs PostgreSQL")
	}
	ch := make(chan struct{}, 1)
	conn, pc, err := db.listenConn(ctx, channel)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			for {
				if _, err := pc.WaitForNotification(ctx); err != nil {
					break
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the broken connection
			conn.Close()
			for {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(time.Second)
				if conn, pc, err = db.listenConn(ctx, channel); err == nil {
					break
				}
				db.log.WarnContext(ctx, "listen again for notifications", slog.String("channel", channel), slog.String("error", err.Error()))
			}
		}
	}()
	return &Listener{C: ch}, nil
}

func (db *DB) listenConn(ctx context.Context, channel string) (*sql.Conn, *pgx.Conn, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", channel, err)
	}
	var pc *pgx.Conn
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx connection")
		}
		pc = c.Conn()
		return nil
	}); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("listen on %s: %w", channel, err)
	}
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("listen on %s: %w", channel, err)
	}
	return conn, pc, nil
}

// Notify sends a notification on a PostgreSQL channel; it does nothing
// with SQLite (one server: nobody else to wake).
func (db *DB) Notify(ctx context.Context, channel string) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := db.sql.ExecContext(ctx, `SELECT pg_notify($1, '')`, channel)
	return err
}
