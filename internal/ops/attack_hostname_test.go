package ops_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestAttackTrailingDotHostnameIsRefused: DNS names "web1." and "web1" the
// same host (the trailing dot is the root), so a second machine enrolled
// as "WEB1." would look like web1 in every plan and log line, past the
// case-insensitive taken-name check. A name with a trailing dot is
// refused, and the token stays unspent.
func TestAttackTrailingDotHostnameIsRefused(t *testing.T) {
	e := newEnv(t, 0)
	token := func() string {
		tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Reveal()
	}
	if _, _, _, err := e.m.EnrollHost(e.ctx, token(), "web1", "key-a"); err != nil {
		t.Fatal(err)
	}
	second := token()
	for _, name := range []string{"web1.", "WEB1.", "web1.example.com."} {
		_, _, _, err := e.m.EnrollHost(e.ctx, second, name, "key-b")
		if err == nil {
			t.Fatalf("a second machine enrolled as %q beside web1", name)
		}
		wantUserErr(t, err, usererr.Invalid, "bad_hostname")
	}
	if _, _, _, err := e.m.EnrollHost(e.ctx, second, "web2", "key-b"); err != nil {
		t.Fatalf("the token after the refusals: %v", err)
	}
}

// TestAttackConcurrentCaseVariantsEnrollOnce: many machines enroll at
// once under case variants of one name (web1, WEB1, Web1, …), through the
// indexed taken-name check on SQLite and PostgreSQL, with their
// transactions grouped into shared commits: exactly one gets the name.
func TestAttackConcurrentCaseVariantsEnrollOnce(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 0)
			variants := []string{"web1", "WEB1", "Web1", "wEb1", "weB1", "WEb1", "wEB1", "web1", "WeB1", "wEb1"}
			tokens := make([]string, len(variants))
			for i := range tokens {
				tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				tokens[i] = tok.Reveal()
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			enrolled, refused := 0, 0
			for i, v := range variants {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, _, err := e.m.EnrollHost(e.ctx, tokens[i], v, fmt.Sprintf("key-%d", i))
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						enrolled++
						return
					}
					if ue, ok := usererr.As(err); ok && ue.Code == "hostname_taken" {
						refused++
						return
					}
					t.Errorf("enroll %s: %v", v, err)
				}()
			}
			wg.Wait()
			if enrolled != 1 || refused != len(variants)-1 {
				t.Errorf("%d machines enrolled under case variants of web1 and %d were refused; want 1 and %d", enrolled, refused, len(variants)-1)
			}
		})
	}
}
