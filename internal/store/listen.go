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

// Listen subscribes to PostgreSQL notification channels (LISTEN), for
// waking waiters on other servers at once instead of at their next poll:
// fn gets each notification's channel and payload, on one goroutine, and
// MUST NOT block. It holds one connection of the pool until ctx ends; if
// the connection breaks it reconnects, so callers MUST still poll now and
// then (a notification sent while it reconnects is lost).
func (db *DB) Listen(ctx context.Context, fn func(channel, payload string), channels ...string) error {
	if db.dialect != Postgres {
		return errors.New("LISTEN needs PostgreSQL")
	}
	conn, pc, err := db.listenConn(ctx, channels)
	if err != nil {
		return err
	}
	go func() {
		for {
			for {
				n, err := pc.WaitForNotification(ctx)
				if err != nil {
					break
				}
				fn(n.Channel, n.Payload)
			}
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the broken connection
			conn.Close()
			for {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(time.Second)
				if conn, pc, err = db.listenConn(ctx, channels); err == nil {
					break
				}
				db.log.WarnContext(ctx, "listen again for notifications", slog.Any("channels", channels), slog.String("error", err.Error()))
			}
		}
	}()
	return nil
}

func (db *DB) listenConn(ctx context.Context, channels []string) (*sql.Conn, *pgx.Conn, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
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
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	for _, ch := range channels {
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("listen on %s: %w", ch, err)
		}
	}
	return conn, pc, nil
}

// Notify sends a notification on a PostgreSQL channel; it does nothing
// with SQLite (one server: nobody else to wake).
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := db.sql.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	return err
}
