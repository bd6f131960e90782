package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/store"
)

// TestLogShowRefusesRewrittenPersonalData is the attacker with write
// access to the database who rewrites the erasable personal data of an
// entry — the source address of a sign-in — and leaves the entry, its
// hash and the tree alone. The entry still verifies; its personal data
// no longer opens the commitment the signed entry holds, and
// `log show --personal` must say so instead of printing the rewritten
// value next to "verified".
func TestLogShowRefusesRewrittenPersonalData(t *testing.T) {
	r := startRestartable(t, "")
	q := r.q
	f := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret("admin", f)
	q.login("admin")
	r.waitSigned()

	// The newest entry with personal data that has a source address.
	var idx uint64
	found := false
	db, err := store.Open(context.Background(), store.Config{DataDir: r.data})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(context.Background(), `SELECT idx, personal FROM audit_entries WHERE idx IS NOT NULL AND personal IS NOT NULL ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var personal []byte
	for rows.Next() {
		var i int64
		var p []byte
		if err := rows.Scan(&i, &p); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(p), "source_ip") {
			idx, personal, found = uint64(i), p, true
		}
	}
	rows.Close()
	db.Close()
	if !found {
		t.Fatal("no entry with a source_ip to rewrite")
	}
	if code, out, errOut := q.as("admin", "log", "show", strconv.FormatUint(idx, 10), "--personal"); code != 0 || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("log show --personal before the rewrite = %d\n%s\n%s", code, out, errOut)
	}

	r.stop()
	var m map[string]string
	if err := json.Unmarshal(personal, &m); err != nil {
		t.Fatal(err)
	}
	m["source_ip"] = "203.0.113.66"
	rewritten, _ := json.Marshal(m)
	db, err = store.Open(context.Background(), store.Config{DataDir: r.data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(context.Background(), `UPDATE audit_entries SET personal = $1 WHERE idx = $2`, rewritten, int64(idx)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r.start()

	code, out, errOut := q.as("admin", "log", "show", strconv.FormatUint(idx, 10), "--personal")
	if code != 1 || !strings.Contains(errOut, `personal field "source_ip"`) || !strings.Contains(errOut, "does not match") {
		t.Errorf("log show --personal of rewritten personal data = %d\n%s\n%s; want exit 1 naming the field", code, out, errOut)
	}
	if strings.Contains(out, "203.0.113.66") && !strings.Contains(out, "UNVERIFIED") {
		t.Errorf("the rewritten value is printed as if verified:\n%s", out)
	}
	// The entry itself is still intact and shown without --personal.
	if code, _, errOut := q.as("admin", "log", "show", strconv.FormatUint(idx, 10)); code != 0 {
		t.Errorf("log show without --personal = %d, %s", code, errOut)
	}
}
