package agent_test

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// encodingsScript prints $PARAM_CRED in every form an attacker would try
// to get it past an exact-match redaction.
const encodingsScript = `v="$PARAM_CRED"
printf 'plain %s\n' "$v"
printf 'b64 '; printf %s "$v" | base64
printf 'b64-echo '; echo "$v" | base64
printf 'b64-raw '; printf %s "$v" | base64 | tr -d '='
printf 'b64url '; printf %s "$v" | base64 | tr '+/' '-_'
printf 'b64-prefixed '; printf 'user:%s' "$v" | base64
printf 'hex '; printf %s "$v" | od -An -tx1 -v | tr -d ' \n'; echo
printf 'HEX '; printf %s "$v" | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; echo
printf 'rev '; printf %s "$v" | rev; echo
printf 'url '; printf %s "$v" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's#/#%2F#g' -e 's/?/%3F/g' -e 's/&/%26/g'; echo
printf 'url-query '; printf %s "$v" | sed -e 's/%/%25/g' -e 's/ /+/g' -e 's#/#%2F#g' -e 's/?/%3F/g' -e 's/&/%26/g'; echo
exit 3
`

// encodedForms is every form encodingsScript prints, computed here.
func encodedForms(v string) map[string]string {
	r := []byte(v)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return map[string]string{
		"plain": v, "base64": base64.StdEncoding.EncodeToString([]byte(v)), "base64 raw": base64.RawStdEncoding.EncodeToString([]byte(v)),
		"base64url": base64.URLEncoding.EncodeToString([]byte(v)), "base64 of v+newline": base64.StdEncoding.EncodeToString([]byte(v + "\n")),
		"hex": hex.EncodeToString([]byte(v)), "HEX": strings.ToUpper(hex.EncodeToString([]byte(v))),
		"reversed": string(r), "url": strings.ReplaceAll(url.PathEscape(v), "&", "%26"), "url query": url.QueryEscape(v),
	}
}

// TestStepSecretEncodingsRedacted: a real agent runs a step that reads
// its secret from the environment and prints it plain, base64 (std, url,
// raw, after echo, behind a prefix), hex, reversed and URL-encoded; the
// reported result holds none of them, and the exit code still comes back.
func TestStepSecretEncodingsRedacted(t *testing.T) {
	const secret = "s3cr3t-Tr0ub4dor&3 x/y?z"
	ts := startServer(t, 1)
	ts.startAgents(t, t.TempDir(), 1, "ilk_join_test")
	waitFor(t, "host_1 to connect", func() bool { return ts.hub.Connected("host_1") })

	got, err := ts.hub.Dispatch(t.Context(), "host_1", wire.Step{StepID: "stp_enc", TimeoutSeconds: 10, Shell: true,
		Argv: []string{encodingsScript}, Env: map[string]string{"PARAM_CRED": secret}, Redact: []string{secret}})
	if err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	if got.ExitCode != 3 || !strings.Contains(got.Output, "plain [redacted]") {
		t.Fatalf("result = %+v, want exit 3 and the output redacted", got)
	}
	for name, form := range encodedForms(secret) {
		if strings.Contains(got.Output, form) {
			t.Errorf("the output shows the secret %s (%s):\n%s", name, form, got.Output)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(got.Output), "\n") {
		if !strings.Contains(line, "[redacted]") {
			t.Errorf("line %q was not redacted", line)
		}
	}
}
