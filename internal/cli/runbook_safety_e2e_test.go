package cli_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// The secret the attacks below try to read or leak. Its &, space, / and ?
// make every URL encoding differ from it.
const dbSecret = "s3cr3t-Tr0ub4dor&3 x/y?z"

// leakScript prints $PARAM_CRED in every form a step could use to get a
// secret past an exact-match redaction, then fails.
const leakScript = `v="$PARAM_CRED"
printf 'plain %s\n' "$v"
printf 'b64 '; printf %s "$v" | base64
printf 'b64-echo '; echo "$v" | base64
printf 'b64-raw '; printf %s "$v" | base64 | tr -d '='
printf 'b64url '; printf %s "$v" | base64 | tr '+/' '-_'
printf 'hex '; printf %s "$v" | od -An -tx1 -v | tr -d ' \n'; echo
printf 'HEX '; printf %s "$v" | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; echo
printf 'rev '; printf %s "$v" | rev; echo
printf 'url '; printf %s "$v" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's#/#%2F#g' -e 's/?/%3F/g' -e 's/&/%26/g'; echo
echo "failing with $v" >&2
exit 3
`

// secretForms is the secret in every form leakScript prints it.
func secretForms(v string) map[string]string {
	r := []byte(v)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return map[string]string{
		"plain": v, "base64": base64.StdEncoding.EncodeToString([]byte(v)), "base64 raw": base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64url": base64.URLEncoding.EncodeToString([]byte(v)), "base64 of echo": base64.StdEncoding.EncodeToString([]byte(v + "\n")),
		"hex": hex.EncodeToString([]byte(v)), "HEX": strings.ToUpper(hex.EncodeToString([]byte(v))),
		"reversed": string(r), "url": strings.ReplaceAll(url.PathEscape(v), "&", "%26"),
	}
}

// noSecretIn fails the test if text holds the secret in any form.
func noSecretIn(t *testing.T, where, text string) {
	t.Helper()
	for name, form := range secretForms(dbSecret) {
		if strings.Contains(text, form) {
			t.Errorf("%s shows the secret (%s):\n%s", where, name, text)
		}
	}
}

func yamlQuote(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
	return string(b)
}

func (q *quickstart) writeRunbook(name, body string) string {
	q.t.Helper()
	f := filepath.Join(q.dir, name+".yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		q.t.Fatal(err)
	}
	return f
}

// TestRunbookSecretsE2E attacks a runbook with a secret parameter, as an
// operator and through a step, with real agents over real HTTPS:
//   - an operator without secret.get on prod/db/password names it: refused
//     at plan time with a sentence and an authz.denied entry, nothing stored;
//   - the plan, `ops show` and the approve screen list the secret (path only);
//   - a permitted operation whose step prints the secret plain, base64, hex,
//     reversed and URL-encoded stores and streams none of them;
//   - the value is in no audit entry, not in the plan hash input, and in no
//     error (the step's, the halt's, the refusal's).
func TestRunbookSecretsE2E(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := startServer(t, tc.store(t))
			q.setUp(2)
			runSecretAttacks(t, q)
		})
	}
}

func runSecretAttacks(t *testing.T, q *quickstart) {
	for _, s := range []string{"billing", "index"} {
		q.loosen("service", "set", s, "--min-healthy", "0")
	}
	q.must(dbSecret, "--profile", "admin", "secret", "put", "prod/db/password")
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", q.writeRunbook("db-check", `name: db-check
risk: medium
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 2}
  - {name: cred, type: secret}
target: {service: service, count: count}
step:
  shell: true
  argv: [`+yamlQuote(leakScript)+`]
  timeout_s: 20
health_check: {argv: ["true"]}
waves: {halt_after_failures: 0}
`))
	args := []string{"run", "db-check", "--param", "service=billing", "--param", "count=1", "--param", "cred=secret:prod/db/password", "--reason", "INC-9"}

	// 1. operator1 holds no secret.get: refused before anything is stored,
	// the dry run too.
	for _, extra := range [][]string{nil, {"--dry-run"}} {
		code, out, errs := q.as("operator1", append(args, extra...)...)
		if code == 0 {
			t.Fatalf("operator1 without secret.get ran %v:\n%s", extra, out)
		}
		want := "Parameter cred names secret prod/db/password, which policy does not allow you to read (secret.get); an operation reads its secrets on behalf of the person who asks for it, so nothing was planned."
		if !strings.Contains(errs, want) {
			t.Errorf("refusal %v says:\n%s\nwant it to say: %s", extra, errs, want)
		}
		noSecretIn(t, "the refusal", out+errs)
	}
	if list := q.mustAs("admin", "--json", "ops", "list"); strings.Contains(list, `"id"`) {
		t.Fatalf("a refused run stored an operation:\n%s", list)
	}
	denied := 0
	for _, e := range q.auditEntries("authz.denied") {
		if e.Kind == "authz.denied" && string(e.Data["action"]) == `"secret.get"` && string(e.Data["resource_id"]) == `"prod/db/password"` {
			denied++
		}
	}
	// The dry run's refusal, in the same minute, is counted into an
	// authz.denied_repeats entry written when the minute closes
	// (TestRefusalLoopDoesNotFloodTheLog pins that the counts add up).
	if denied != 1 {
		t.Errorf("authz.denied entries for secret.get on prod/db/password = %d, want 1 (the run; the dry run is a repeat)", denied)
	}

	// 2. admin2 (an admin whom approver1 does not owe their account to) may read it: the plan lists the secret it reads, by path.
	var run wire.RunResponse
	mustJSON(t, q.mustAs("admin2", append([]string{"--json"}, args...)...), &run)
	op := run.Operation
	if diff := strings.Join(op.Plan.SecretRefs, ","); diff != "secret:prod/db/password" || op.Plan.Step.SecretEnv["PARAM_CRED"] != "secret:prod/db/password" {
		t.Errorf("plan secret_refs %q, secret_env %v; want the path, as $PARAM_CRED", op.Plan.SecretRefs, op.Plan.Step.SecretEnv)
	}
	if op.Plan.Step.Argv[0] != leakScript {
		t.Errorf("the plan's script is not the runbook's, byte for byte:\n%q", op.Plan.Step.Argv[0])
	}
	text := q.mustAs("admin2", "run", "db-check", "--param", "service=billing", "--param", "count=1", "--param", "cred=secret:prod/db/password", "--reason", "INC-9", "--dry-run")
	if !strings.Contains(text, "reads secrets:   prod/db/password (as $PARAM_CRED)") {
		t.Errorf("run --dry-run does not list the secret it reads:\n%s", text)
	}
	if show := q.mustAs("approver1", "ops", "show", op.ID); !strings.Contains(show, "secrets:   prod/db/password (as $PARAM_CRED)") {
		t.Errorf("ops show does not list the secret it reads:\n%s", show)
	}
	approve := q.mustAs("approver1", "approve", op.ID, "--otp", q.otp("approver1"))
	if !strings.Contains(approve, "secrets:   prod/db/password (as $PARAM_CRED)") {
		t.Errorf("the approve screen does not list the secret it reads:\n%s", approve)
	}

	// 3. The step prints the secret in every encoding and fails: neither
	// the streamed progress, nor the stored operation, nor its errors show it.
	code, watch, werrs := q.as("approver1", "--json", "ops", "watch", op.ID)
	if code == 0 || !strings.Contains(watch, `"halted"`) {
		t.Fatalf("ops watch: exit %d, want the failing step to halt it:\n%s%s", code, watch, werrs)
	}
	lines := strings.Split(strings.TrimSpace(watch), "\n")
	var final wire.OpProgress
	mustJSON(t, lines[len(lines)-1], &final)
	h := final.Waves[0].Hosts[0]
	if h.ExitCode != 3 || !strings.Contains(h.Output, "plain [redacted]") || !strings.Contains(h.Output, "failing with [redacted]") {
		t.Errorf("host result = %+v, want exit 3 and redacted output", h)
	}
	noSecretIn(t, "ops watch", watch+werrs)
	shown := q.mustAs("admin", "--json", "ops", "show", op.ID)
	noSecretIn(t, "ops show", shown)

	// The plan hash input is the stored plan: no value in it.
	var stored wire.Operation
	mustJSON(t, shown, &stored)
	p := ops.Plan{Runbook: stored.Plan.Runbook, Service: stored.Plan.Service, RunbookVersion: stored.Plan.RunbookVersion, Params: stored.Plan.Params,
		Concurrency: stored.Plan.Concurrency, HaltAfter: stored.Plan.HaltAfter, BakeSeconds: stored.Plan.BakeSeconds, Services: stored.Plan.Services,
		RemovesCapacity: stored.Plan.RemovesCapacity, SecretRefs: stored.Plan.SecretRefs}
	for _, w := range stored.Plan.Waves {
		p.Waves = append(p.Waves, ops.Wave{Number: w.Number, Hosts: w.Hosts})
	}
	cmd := func(c *wire.Command) *ops.Command {
		if c == nil {
			return nil
		}
		return &ops.Command{Argv: c.Argv, Env: c.Env, SecretEnv: c.SecretEnv, Shell: c.Shell, TimeoutSeconds: c.TimeoutSeconds, MaxOutputBytes: c.MaxOutputBytes}
	}
	p.Step, p.HealthCheck, p.Rollback = *cmd(&stored.Plan.Step), cmd(stored.Plan.HealthCheck), cmd(stored.Plan.Rollback)
	if got := ops.HashPlan(p); got != stored.Plan.Hash {
		t.Fatalf("rebuilt plan hashes to %s, the operation's is %s: the hash input is not what was shown", got, stored.Plan.Hash)
	}
	p.Hash = ""
	input, _ := json.Marshal(p)
	noSecretIn(t, "the plan hash input", string(input))

	// 4. No audit entry holds the value in any form, though the dispatch
	// resolved it (a secret.read entry records that).
	reads := 0
	for _, e := range q.auditEntries("op.halted") {
		if e.Kind == "secret.read" && string(e.Data["path"]) == `"prod/db/password"` {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("secret.read entries for prod/db/password = %d, want 1 (the one dispatch)", reads)
	}
	noSecretIn(t, "the audit log", q.mustAs("admin", "--json", "log", "tail", "-n", "100000"))

	// 5. The README's example runbook runs as written, the secret in its
	// environment only.
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", "../../examples/runbooks/check-db-login.yaml")
	var ex wire.RunResponse
	mustJSON(t, q.mustAs("admin2", "--json", "run", "check-db-login", "--param", "service=billing", "--param", "count=1",
		"--param", "db_user=app", "--param", "password=secret:prod/db/password", "--reason", "INC-7"), &ex)
	watch = q.mustAs("admin", "--json", "ops", "watch", ex.Operation.ID)
	lines = strings.Split(strings.TrimSpace(watch), "\n")
	mustJSON(t, lines[len(lines)-1], &final)
	if want := fmt.Sprintf("would log in as app with a password of %d bytes\n", len(dbSecret)); final.Waves[0].Hosts[0].Output != want {
		t.Errorf("example step output = %q, want %q", final.Waves[0].Hosts[0].Output, want)
	}
}

// TestRunbookShellE2E: shell text with a placeholder (heredoc, backticks,
// $( )) is refused at apply with the rewrite; the rewritten runbook runs on
// a real agent, and a value of $(id -un) comes out as those characters,
// never as the agent's user name.
func TestRunbookShellE2E(t *testing.T) {
	q := startServer(t, "")
	q.setUp(2)
	for _, s := range []string{"billing", "index"} {
		q.loosen("service", "set", s, "--min-healthy", "0")
	}
	runbook := func(script string) string {
		return `name: greet
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 2}
  - {name: name, type: string}
target: {service: service, count: count}
step:
  shell: true
  argv: [` + yamlQuote(script) + `]
health_check: {argv: ["true"]}
waves: {halt_after_failures: 0}
`
	}
	for _, tt := range []struct{ name, script string }{
		{"heredoc", "cat <<EOF\nhello {{name}}\nEOF"},
		{"backticks", "echo `printf %s {{name}}`"},
		{"command substitution", "echo $(printf %s {{name}})"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := q.as("admin", "runbook", "apply", "-f", q.writeRunbook("bad-"+strings.ReplaceAll(tt.name, " ", "-"), runbook(tt.script)))
			want := `step.argv[0] puts {{name}} into shell text; write "$PARAM_NAME" there and Interlock passes name as $PARAM_NAME.`
			if code == 0 || !strings.Contains(errs, want) {
				t.Errorf("apply: exit %d, stderr:\n%s\nwant a refusal saying: %s", code, errs, want)
			}
		})
	}
	if list := q.mustAs("admin", "runbook", "list"); strings.Contains(list, "greet") {
		t.Fatalf("a refused runbook was stored:\n%s", list)
	}

	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", q.writeRunbook("greet", runbook("printf 'name=%s\\n' \"$PARAM_NAME\"\ncat <<EOF\nheredoc=$PARAM_NAME\nEOF\necho backticks=`printf %s \"$PARAM_NAME\"`")))
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "greet", "--param", "service=billing", "--param", "count=1", "--param", "name=$(id -un)", "--reason", "INC-10"), &run)
	watch := q.mustAs("operator1", "--json", "ops", "watch", run.Operation.ID)
	lines := strings.Split(strings.TrimSpace(watch), "\n")
	var final wire.OpProgress
	mustJSON(t, lines[len(lines)-1], &final)
	if final.State != "succeeded" {
		t.Fatalf("operation %s, want succeeded:\n%s", final.State, watch)
	}
	out := final.Waves[0].Hosts[0].Output
	if want := "name=$(id -un)\nheredoc=$(id -un)\nbackticks=$(id -un)\n"; out != want {
		t.Errorf("step output = %q, want the value as literal text %q", out, want)
	}
	if u, err := user.Current(); err == nil && strings.Contains(out, "="+u.Username) {
		t.Errorf("the value ran as a command on the host: output %q holds user name %s", out, u.Username)
	}
}
