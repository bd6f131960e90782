package app

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

type testSealer struct{}

func (testSealer) aead() cipher.AEAD {
	b, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCM(b)
	return a
}
func (s testSealer) Seal(p, aad []byte) ([]byte, error) {
	return s.aead().Seal(nil, make([]byte, 12), p, aad), nil
}
func (s testSealer) Open(c, aad []byte) ([]byte, error) {
	return s.aead().Open(nil, make([]byte, 12), c, aad)
}

// TestLogAlarmsAreRecordedOnceAndBounded: an agent that reports the same
// alarm again (it had not heard back) adds no second entry and no second
// count; a host cannot flood the log with alarms; a made-up kind is a 400.
func TestLogAlarmsAreRecordedOnceAndBounded(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: testSealer{}})
			if err != nil {
				t.Fatal(err)
			}
			f := newFleetWitness(db, l, time.Now)
			a := wire.LogAlarm{Kind: wire.LogAlarmRollback, Detail: "log rollback", Seen: "interlock/log\n10\nAAAA\n\n— x y\n", Got: "g", DetectedAt: time.Now()}
			for i := 0; i < 3; i++ {
				if err := f.RecordLogAlarm(ctx, "host_1", a); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := db.AuditStore().PendingCount(ctx); n != 1 {
				t.Errorf("the same alarm three times left %d entries, want 1", n)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(f.rollbacks)
			mfs, err := reg.Gather()
			if err != nil || len(mfs) != 1 {
				t.Fatalf("gather: %v", err)
			}
			if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 1 {
				t.Errorf("interlock_agent_log_rollbacks_total = %v, want 1", got)
			}
			var refused error
			for i := 0; i < maxAlarmsPerHour+1 && refused == nil; i++ {
				b := a
				b.Got = fmt.Sprintf("another %d", i)
				refused = f.RecordLogAlarm(ctx, "host_2", b)
			}
			if ue, ok := usererr.As(refused); !ok || ue.Kind != usererr.RateLimited {
				t.Errorf("alarm %d from one host within the hour: %v, want a rate-limit refusal", maxAlarmsPerHour+1, refused)
			}
			bad := a
			bad.Kind = "all good"
			if ue, ok := usererr.As(f.RecordLogAlarm(ctx, "host_3", bad)); !ok || ue.Kind != usererr.Invalid {
				t.Errorf("an unknown alarm kind: want a 400")
			}
			if errors.Is(refused, audit.ErrDuplicate) {
				t.Error("a duplicate surfaced as an error")
			}
		})
	}
}
