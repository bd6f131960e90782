package ops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// BenchmarkEnrollIntoAFleet measures one enrollment (token, name check,
// host, audit entry; SQLite) into an inventory that already holds 5,000
// hosts. Its cost must not grow with the fleet: the name check reads one
// indexed row (migration 510), where it used to read every host.
//
//	go test ./internal/ops -run '^$' -bench EnrollIntoAFleet
func BenchmarkEnrollIntoAFleet(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	engine, err := policy.NewEngine(policy.EngineConfig{Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	db := storetest.OpenSQLite(b)
	m, err := ops.New(ops.Config{Store: db.OpsStore(), Policy: engine, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.OpsStore().InTx(ctx, func(tx ops.Tx) error {
		for i := range 5000 {
			h := ops.Host{ID: fmt.Sprintf("host_%05d", i), Name: fmt.Sprintf("web-%05d", i), Services: []string{"web"}, InService: true, Healthy: true, LastSeen: now}
			if err := tx.InsertHost(ctx, h, now); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, b.N)
	for i := range tokens {
		tok, err := m.CreateJoinToken(ctx, admin, []string{"web"}, nil, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok.Reveal()
	}
	b.ResetTimer()
	for i := range b.N {
		if _, _, _, err := m.EnrollHost(ctx, tokens[i], fmt.Sprintf("new-%06d", i), ""); err != nil {
			b.Fatal(err)
		}
	}
}
