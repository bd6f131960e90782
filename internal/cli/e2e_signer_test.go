package cli_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// restartable is a control plane that a test stops and starts again on
// the same data dir, store and port, as an operator (or an attacker with
// the database) would around editing or restoring its database.
type restartable struct {
	q      *quickstart
	data   string
	store  string
	listen string
	cancel context.CancelFunc
	done   chan error
}

func startRestartable(t *testing.T, store string) *restartable {
	t.Helper()
	dir := t.TempDir()
	r := &restartable{q: &quickstart{t: t, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}, totp: &totpClock{}},
		data: filepath.Join(dir, "data"), store: store, listen: "127.0.0.1:0"}
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	t := r.q.t
	t.Helper()
	if r.q.ctx == nil {
		// The test's context outlives every restart: agents and CLI calls
		// started with it keep going while the server stops and starts.
		testCtx, cancelTest := context.WithCancel(context.Background())
		t.Cleanup(cancelTest)
		r.q.ctx = testCtx
	}
	ctx, cancel := context.WithCancel(r.q.ctx)
	a, err := app.New(ctx, config.Config{Listen: r.listen, DataDir: r.data, Store: r.store, CheckpointInterval: time.Second, MetricsTokenSHA256: scrapeTokenHashes}, app.Options{TOTPNow: r.q.totp.now})
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	readyc := make(chan app.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(rd app.Ready) { readyc <- rd }) }()
	select {
	case rd := <-readyc:
		r.q.ready = rd
	case err := <-done:
		cancel()
		a.Close()
		t.Fatalf("Serve: %v", err)
	}
	r.q.app, r.cancel, r.done = a, cancel, done
	r.listen = strings.TrimPrefix(r.q.ready.URL, "https://") // the same port again: profiles name it
}

func (r *restartable) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.q.app.Close()
	r.cancel = nil
}

// get fetches an unauthenticated route (/readyz, /metrics) over HTTPS.
func (r *restartable) get(path string) (int, string) {
	r.q.t.Helper()
	// The server's certificate comes from its own CA; these two routes
	// carry nothing secret, so the test does not pin it here.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, r.q.ready.URL+path, nil)
	if err != nil {
		r.q.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scrapeToken)
	resp, err := c.Do(req)
	if err != nil {
		r.q.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitSigned waits until the log's checkpoint covers every entry.
func (r *restartable) waitSigned() {
	r.q.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		cp, err := r.q.app.Audit.Checkpoint(r.q.ctx)
		size, err2 := r.q.app.Audit.IntegratedSize(r.q.ctx)
		if err == nil && err2 == nil && cp.Checkpoint.Size == size && size > 0 {
			if n, _ := r.pending(); n == 0 {
				r.q.mustAs("admin", "log", "verify") // the client remembers it too
				return
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	r.q.t.Fatal("the log did not sign its entries within 15 s")
}

func (r *restartable) pending() (int64, error) {
	db, err := store.Open(context.Background(), store.Config{DSN: r.store, DataDir: r.data})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.AuditStore().PendingCount(context.Background())
}

func (r *restartable) invite(name, role string) wire.Invitation {
	r.q.t.Helper()
	var inv wire.Invitation
	mustJSON(r.q.t, r.q.mustAs("admin", "--json", "user", "invite", name, "--role", role), &inv)
	return inv
}

// expectRefusing checks everything an operator sees while the signer
// refuses: /readyz and /metrics say so, writes are refused with the
// sentence, the log can still be read, and verify fails with the sentence.
func (r *restartable) expectRefusing(want string) {
	q := r.q
	t := q.t
	t.Helper()
	if code, body := r.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Errorf("/readyz while refusing = %d %s; want 503 with %q", code, body, want)
	}
	if _, body := r.get("/metrics"); !strings.Contains(body, "interlock_log_signer_refusing 1") {
		t.Errorf("/metrics lacks interlock_log_signer_refusing 1")
	}
	code, _, errOut := q.as("admin", "user", "invite", "mallory", "--role", "admin")
	if code == 0 || !strings.Contains(errOut, "Nothing can be changed while the audit log cannot record it") || !strings.Contains(errOut, want) {
		t.Errorf("a write while refusing = %d, %s; want it refused with the sentence", code, errOut)
	}
	if code, out, errOut := q.as("admin", "log", "tail", "-n", "3"); code != 0 || !strings.Contains(errOut, want) || !strings.Contains(out, "unsigned") {
		t.Errorf("log tail while refusing = %d\n%s\n%s; want the entries, marked, and the sentence", code, out, errOut)
	}
	if code, _, errOut := q.as("admin", "log", "verify"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("log verify while refusing = %d, %s; want exit 1 with the sentence", code, errOut)
	}
}

// TestSignerRefusesRolledBackDatabase is issue 10's attack, end to end on
// the real server and CLI: first the database is restored from an earlier
// backup (SQLite: the file copied back; PostgreSQL: a copy made with
// CREATE DATABASE … TEMPLATE and put back the same way); later the audit
// tables are cut back and made consistent by hand. Each time the
// restarted server refuses to sign and to change anything until an admin
// forks the log, and `log verify --full` then accepts exactly the recorded
// forks and reports them.
func TestSignerRefusesRolledBackDatabase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRestartable(t, tc.store(t))
			q := r.q
			secretFile := filepath.Join(q.dir, "admin.totp")
			q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
			q.readSecret("admin", secretFile)
			q.login("admin")
			// An auditor who will verify from a profile that never saw the log.
			inv := r.invite("auditor", "viewer")
			f := filepath.Join(q.dir, "auditor.totp")
			q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
			q.readSecret("auditor", f)
			q.login("auditor")
			r.twoMoreAdmins()
			// A change request that is not a fork, pending across the backup.
			var grant wire.ChangePending
			mustJSON(t, q.mustAs("admin", "--json", "user", "invite", "carol", "--role", "approver"), &grant)
			for _, n := range []string{"u1", "u2", "u3"} {
				r.invite(n, "viewer")
			}
			r.waitSigned()

			// The backup.
			r.stop()
			backup, restore := snapshot(t, r)
			backup()
			r.start()
			for _, n := range []string{"u4", "u5", "u6", "u7", "u8"} {
				r.invite(n, "viewer")
			}
			r.waitSigned()
			signed, _ := q.app.Audit.Checkpoint(q.ctx)
			r.stop()

			// 1. The disk fails; the operator restores the backup.
			restore()
			r.start()
			st, err := q.app.Audit.IntegratedSize(q.ctx)
			if err != nil {
				t.Fatal(err)
			}
			r.expectRefusing("the database holds " + itoa(st) + " entries but this server signed a checkpoint of " + itoa(signed.Checkpoint.Size) + " at ")
			// One admin alone cannot fork: admin2 asks, and admin2's own
			// approval is refused.
			cr := r.requestFork("admin2", "restored the 03:00 backup after the disk failure", st, signed.Checkpoint.Size)
			if code, out, errOut := q.as("admin2", "change", "approve", cr, "--yes", "--otp", q.otp("admin2")); code == 0 || !strings.Contains(errOut, "you cannot approve it") {
				t.Fatalf("admin2 approving their own fork = %d\n%s\n%s; want it refused", code, out, errOut)
			}
			r.expectRefusing("the database holds " + itoa(st) + " entries but this server signed a checkpoint of " + itoa(signed.Checkpoint.Size) + " at ")
			// The change routes answer while the log refuses only for a fork:
			// another change cannot be decided.
			for _, verb := range []string{"approve", "deny"} {
				args := []string{"change", verb, grant.ChangeRequest.ID}
				if verb == "approve" {
					args = append(args, "--yes", "--otp", q.otp("admin3"))
				}
				if code, _, errOut := q.as("admin3", args...); code == 0 || !strings.Contains(errOut, "Only a log.fork request can be decided now") {
					t.Errorf("change %s of a role grant while the log refuses = %d %s; want it refused", verb, code, errOut)
				}
			}
			// admin3, independent of admin2, approves: the fork happens.
			code, out, errOut := q.as("admin3", "change", "approve", cr, "--yes", "--otp", q.otp("admin3"))
			if code != 0 || !strings.Contains(out, "The signer remembers "+itoa(signed.Checkpoint.Size)+" entries") ||
				!strings.Contains(out, "The log was forked: epoch 2 begins at entry "+itoa(st)) {
				t.Fatalf("admin3 approving the fork = %d\n%s\n%s", code, out, errOut)
			}
			if code, body := r.get("/readyz"); code != http.StatusOK {
				t.Errorf("/readyz after the fork = %d %s", code, body)
			}
			r.invite("u9", "viewer") // writes work again
			r.waitSigned()           // (admin's verify accepts the fork on the way)
			code, out, errOut = q.as("auditor", "log", "verify", "--full")
			if code != 0 || !strings.Contains(out, "Epoch 2 begins at entry "+itoa(st)+", a recorded fork (by person:") {
				t.Fatalf("a fresh verify --full after the fork = %d\n%s\n%s", code, out, errOut)
			}

			// 2. An attacker with the database cuts the audit tables back to
			// two entries after the fork and makes them consistent.
			signed, _ = q.app.Audit.Checkpoint(q.ctx)
			r.stop()
			keep := st + 2
			cutBackAuditTables(t, r, keep)
			r.start()
			r.expectRefusing("the database holds " + itoa(keep) + " entries but this server signed a checkpoint of " + itoa(signed.Checkpoint.Size) + " at ")
			// Requests made before the situation changed are void on
			// approval: crA because the database was cut back further after
			// it was made, crB because the log was forked in between.
			crA := r.requestFork("admin3", "audit tables were cut back; see INC-88", keep, signed.Checkpoint.Size)
			r.stop()
			keep--
			cutBackAuditTables(t, r, keep)
			r.start()
			crB := r.requestFork("admin2", "same break, asked twice", keep, signed.Checkpoint.Size)
			crC := r.requestFork("admin3", "audit tables were cut back twice; see INC-88", keep, signed.Checkpoint.Size)
			r.approveVoid(crA, "admin2")
			code, out, errOut = q.as("admin2", "change", "approve", crC, "--yes", "--otp", q.otp("admin2"))
			if code != 0 || !strings.Contains(out, "epoch 3 begins at entry "+itoa(keep)) {
				t.Fatalf("second fork's approval = %d\n%s\n%s", code, out, errOut)
			}
			r.approveVoid(crB, "admin3")
			r.waitSigned()
			code, out, errOut = q.as("auditor", "--json", "log", "verify", "--full")
			var res struct {
				OK    bool     `json:"ok"`
				Epoch uint64   `json:"epoch"`
				Forks []string `json:"forks"`
			}
			mustJSON(t, out, &res)
			if code != 0 || !res.OK || res.Epoch != 3 || len(res.Forks) != 2 || !strings.Contains(res.Forks[1], "Epoch 3 begins at entry "+itoa(keep)) {
				t.Fatalf("verify --full after two forks = %d %+v\n%s", code, res, errOut)
			}
		})
	}
}

// twoMoreAdmins adds admin2 and admin3, both invited by the bootstrap
// admin while it is the only one: each may approve the other's requests
// (neither invited the other).
func (r *restartable) twoMoreAdmins() {
	q := r.q
	admins := map[string]wire.Invitation{"admin2": r.invite("admin2", "admin"), "admin3": r.invite("admin3", "admin")}
	for name, inv := range admins {
		f := filepath.Join(q.dir, name+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(name, f)
		q.login(name)
	}
}

// forkByTwo forks the refusing log the only way there is: admin2 asks
// and admin3 approves. It returns what the approval printed.
func (r *restartable) forkByTwo(reason string) string {
	q := r.q
	t := q.t
	t.Helper()
	code, out, errOut := q.as("admin2", "--json", "log", "fork", "--reason", reason, "--otp", q.otp("admin2"))
	var cr wire.ChangePending
	if code != 0 {
		t.Fatalf("log fork = %d\n%s\n%s", code, out, errOut)
	}
	mustJSON(t, out, &cr)
	code, out, errOut = q.as("admin3", "change", "approve", cr.ChangeRequest.ID, "--yes", "--otp", q.otp("admin3"))
	if code != 0 {
		t.Fatalf("approving the fork = %d\n%s\n%s", code, out, errOut)
	}
	return out
}

// requestFork asks, as an admin with fresh MFA, to fork the log and
// returns the change request's id; it checks what the approver will see
// and that asking forked nothing.
func (r *restartable) requestFork(who, reason string, dbSize, remembered uint64) string {
	q := r.q
	t := q.t
	t.Helper()
	code, out, errOut := q.as(who, "log", "fork", "--reason", reason, "--otp", q.otp(who))
	want := "The signer remembers " + itoa(remembered) + " entries"
	if code != 0 || !strings.Contains(out, "Not forked yet: this is change request cr_") || !strings.Contains(out, want) ||
		!strings.Contains(out, "the database holds "+itoa(dbSize)+" (root ") || !strings.Contains(out, "needs approval by another admin: interlock change approve cr_") {
		t.Fatalf("%s: log fork = %d\n%s\n%s", who, code, out, errOut)
	}
	id := out[strings.Index(out, "cr_"):]
	id = id[:strings.IndexAny(id, ". \n")]
	if code, _ := r.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after asking for a fork = %d; want the log still refusing", code)
	}
	return id
}

// approveVoid approves a fork request whose basis moved on and checks
// that it is refused and left void.
func (r *restartable) approveVoid(id, who string) {
	q := r.q
	t := q.t
	t.Helper()
	code, out, errOut := q.as(who, "change", "approve", id, "--yes", "--otp", q.otp(who))
	if code == 0 || !strings.Contains(errOut, "it is void") {
		t.Fatalf("approving %s, made before the situation changed = %d\n%s\n%s; want it void", id, code, out, errOut)
	}
	var cr wire.ChangeRequest
	mustJSON(t, q.mustAs("admin", "--json", "change", "show", id), &cr)
	if cr.State != "void" {
		t.Errorf("the stale fork request %s is %s, want void", id, cr.State)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// snapshot returns how to back up and restore the server's database for
// real: SQLite by copying its files, PostgreSQL with CREATE DATABASE …
// TEMPLATE (a copy of the whole database at the server).
func snapshot(t *testing.T, r *restartable) (backup, restore func()) {
	t.Helper()
	if r.store == "" {
		bak := t.TempDir()
		copyDB := func(from, to string) {
			old, _ := filepath.Glob(filepath.Join(to, "interlock.db*"))
			for _, f := range old {
				os.Remove(f)
			}
			files, _ := filepath.Glob(filepath.Join(from, "interlock.db*"))
			if len(files) == 0 {
				t.Fatalf("no database files in %s", from)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		return func() { copyDB(r.data, bak) }, func() { copyDB(bak, r.data) }
	}
	u, err := url.Parse(r.store)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	snap := name + "_backup"
	admin, err := sql.Open("pgx", storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + snap + " WITH (FORCE)")
		admin.Close()
	})
	exec := func(q string) {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() { exec("CREATE DATABASE " + snap + " TEMPLATE " + name) },
		func() {
			exec("DROP DATABASE " + name + " WITH (FORCE)")
			exec("CREATE DATABASE " + name + " TEMPLATE " + snap)
		}
}

// cutBackAuditTables is the attacker with write access to the stopped
// server's database: it deletes every entry from keep on (and any pending
// one), deletes the checkpoints that signed them, and re-makes the tiles,
// actor chains and tree state so that the shorter log is consistent.
func cutBackAuditTables(t *testing.T, r *restartable, keep uint64) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DSN: r.store, DataDir: r.data})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DELETE FROM audit_entries WHERE idx IS NULL OR idx >= $1`, `DELETE FROM audit_checkpoints WHERE size > $1`} {
		if _, err := db.Exec(ctx, q, int64(keep)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`DELETE FROM audit_cosignatures`, `DELETE FROM audit_tiles`, `DELETE FROM audit_actors`} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := db.AuditStore()
	es, err := s.Entries(ctx, 0, keep)
	if err != nil || uint64(len(es)) != keep {
		t.Fatalf("read %d entries: %d, %v", keep, len(es), err)
	}
	rng, _ := tlog.NewRange(0, nil)
	var set tlog.TileSet
	actors := map[string]audit.ActorState{}
	for _, e := range es {
		leaf, err := e.Leaf()
		if err != nil {
			t.Fatal(err)
		}
		h := tlog.LeafHash(leaf)
		if err := rng.Append(h, set.Visit); err != nil {
			t.Fatal(err)
		}
		actors[e.Actor] = audit.ActorState{Seq: e.ActorSeq, LastHash: h}
	}
	tiles, data, err := set.Tiles(keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sequence(ctx, func(tx audit.SeqTx) error {
		if err := tx.PutTiles(ctx, tiles, data); err != nil {
			return err
		}
		if err := tx.PutActorStates(ctx, actors); err != nil {
			return err
		}
		return tx.PutTreeState(ctx, audit.TreeState{Size: rng.Size(), Root: rng.Root(), Frontier: tlog.EncodeFrontier(rng.Frontier())})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLoginToANewServerReplacesThePinnedLogKey: a profile that logs in to
// another server (another log key) pins the new key, drops the checkpoint
// saved for the old log and says so; verify then works instead of failing
// with "note has no verifiable signatures".
func TestLoginToANewServerReplacesThePinnedLogKey(t *testing.T) {
	a := startRestartable(t, "")
	cfgDir := os.Getenv("INTERLOCK_CONFIG_DIR")
	b := startRestartable(t, "")
	t.Setenv("INTERLOCK_CONFIG_DIR", cfgDir) // one person, one config dir
	for _, r := range []*restartable{a, b} {
		q := r.q
		f := filepath.Join(q.dir, "admin.totp")
		q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret("admin", f)
	}
	a.q.login("admin")
	a.q.mustAs("admin", "log", "verify") // saves a's checkpoint
	keyA, keyB := a.q.ready.LogKey, b.q.ready.LogKey
	code, _, errOut := b.q.run(password+"\n", append([]string{"--profile", "admin", "login", "--user", "admin", "--password-stdin", "--otp", b.q.otp("admin")}, b.q.serverFlags()...)...)
	if code != 0 || !strings.Contains(errOut, "now pins the log key of "+b.q.ready.URL+": "+keyB) || !strings.Contains(errOut, "it replaces "+keyA) {
		t.Fatalf("login to another server = %d\n%s", code, errOut)
	}
	if code, out, errOut := b.q.as("admin", "log", "verify"); code != 0 || !strings.Contains(out, "saved as the first checkpoint this client trusts") {
		t.Errorf("verify after logging in to the new server = %d\n%s\n%s", code, out, errOut)
	}
}
