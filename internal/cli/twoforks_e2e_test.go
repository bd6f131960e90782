package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyAcrossTwoForksAccountsForTheFirst is the admin who also has
// the database and wants entries gone without one fork entry saying how
// many: cut the tables back, fork (epoch 2, whose fork entry records the
// loss), then cut back again below that fork entry and fork once more
// (epoch 3). The fork entry of epoch 3 names only epoch 2's short
// checkpoint. An auditor whose profile saw the log before both forks runs
// a plain `log verify`: it must not accept epoch 3 on the strength of a
// fork entry that does not reach back to what the auditor saw.
func TestVerifyAcrossTwoForksAccountsForTheFirst(t *testing.T) {
	t.Run("first fork cut away", func(t *testing.T) { testVerifyAcrossTwoForks(t, false) })
	// Held: when both fork entries are in the log, a plain verify follows
	// the chain back and reports both.
	t.Run("both forks recorded", func(t *testing.T) { testVerifyAcrossTwoForks(t, true) })
}

func testVerifyAcrossTwoForks(t *testing.T, keepFirstFork bool) {
	r := startRestartable(t, "")
	q := r.q
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	inv := r.invite("auditor", "viewer")
	f := filepath.Join(q.dir, "auditor.totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret("auditor", f)
	q.login("auditor")
	r.twoMoreAdmins()
	for _, n := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		r.invite(n, "viewer")
	}
	r.waitSigned()
	q.mustAs("auditor", "log", "verify") // the auditor saw this
	seen, _ := q.app.Audit.Checkpoint(q.ctx)

	// First cut and fork: epoch 2's fork entry records the loss.
	r.stop()
	k1 := seen.Checkpoint.Size - 6
	cutBackAuditTables(t, r, k1)
	r.start()
	r.forkByTwo("first")
	r.waitSigned()

	// Second cut, below epoch 2's fork entry (at k1), and fork again.
	k2 := k1 - 3
	if keepFirstFork {
		for _, n := range []string{"u7", "u8", "u9"} {
			r.invite(n, "viewer")
		}
		r.waitSigned()
		k2 = k1 + 2 // keeps the first fork entry
	}
	r.stop()
	cutBackAuditTables(t, r, k2)
	r.start()
	if out := r.forkByTwo("second"); !strings.Contains(out, "epoch 3 begins at entry "+itoa(k2)) {
		t.Fatalf("second fork:\n%s", out)
	}
	r.waitSigned()

	code, out, errOut := q.as("auditor", "log", "verify")
	if keepFirstFork {
		if code != 0 || !strings.Contains(out, "forked at entry "+itoa(k1)+" (epoch 2") || !strings.Contains(out, "forked at entry "+itoa(k2)+" (epoch 3") {
			t.Errorf("the auditor's verify across two recorded forks = %d\n%s\n%s; want both forks reported", code, out, errOut)
		}
		return
	}
	if code != 1 || !strings.Contains(errOut, "epoch 2") {
		t.Errorf("the auditor's verify across two forks, the first one no longer in the log = %d\n%s\n%s; want exit 1 saying epoch 2's fork cannot be checked", code, out, errOut)
	}
}
