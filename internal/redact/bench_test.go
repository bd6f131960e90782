package redact_test

import (
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/redact"
)

// BenchmarkRedact64KiB is the redaction of a full default-size step output
// (64 KiB of log lines) against two secrets and all their encodings, as
// the agent and the executor each do once per step.
//
//	go test ./internal/redact -run '^$' -bench . -benchmem
func BenchmarkRedact64KiB(b *testing.B) {
	secrets := []string{"s3cr3t-Tr0ub4dor&3 x/y?z", "AKIAB3SKCZTKMBF6JDPY-wJalrXUtnFEMI"}
	line := "2026-12-03T12:00:00Z INFO connected to db01 as app in 12ms (pool 4/16)\n"
	out := strings.Repeat(line, (64<<10)/len(line)) + "leak " + secrets[0] + "\n"
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		r := redact.New(secrets)
		if got := r.Replace(out); !strings.HasSuffix(got, "leak [redacted]\n") {
			b.Fatalf("not redacted: %q", got[len(got)-40:])
		}
	}
}
