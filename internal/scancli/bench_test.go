package scancli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Benchmarks (never timed tests). Reproduce with:
//
//	go test ./internal/scancli -run '^$' -bench . -benchtime 3x
//
// MB/s is reported through b.SetBytes; peak RSS of the test process is
// reported as peak-rss-MiB.

func allDetectors(b *testing.B) []scan.Detector {
	b.Helper()
	kinds := map[string]bool{"secret": true, "default-credential": true, "misconfiguration": true}
	dets, err := buildDetectors(options{}, kinds, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	return dets
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func reportRSS(b *testing.B) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
	}
}

func benchDir(b *testing.B, dir string) {
	s, err := scan.New(scan.Config{Detectors: allDetectors(b)})
	if err != nil {
		b.Fatal(err)
	}
	var n, total int64
	cpu0 := cpuTime()
	for b.Loop() {
		res, err := s.ScanDir(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		n = res.Stats.Bytes
		total += n
	}
	// MB per CPU-second does not depend on other load on the machine;
	// with W idle cores the wall-clock rate approaches W times it.
	b.ReportMetric(float64(total)/1e6/(cpuTime()-cpu0), "MB/cpu-s")
	b.SetBytes(n)
	reportRSS(b)
}

// BenchmarkGoSource scans the Go standard library source with every
// detector (secrets, default credentials, misconfigurations).
func BenchmarkGoSource(b *testing.B) {
	dir := filepath.Join(runtime.GOROOT(), "src")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("no GOROOT source: %v", err)
	}
	benchDir(b, dir)
}

// BenchmarkSecretDense scans a synthetic tree of 200 files of 64 KiB in
// which every tenth line carries a (fake) credential.
func BenchmarkSecretDense(b *testing.B) {
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	alnum := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rnd := func(n int) string {
		out := make([]byte, n)
		for i := range out {
			out[i] = alnum[r.IntN(len(alnum))]
		}
		return string(out)
	}
	secretLine := []func() string{
		func() string { return "AWS_ACCESS_KEY_ID=AKIA" + rnd(16) },
		func() string { return "stripe_key = \"sk_live_" + rnd(32) + "\"" },
		func() string { return "db_password: \"" + rnd(14) + "\"" },
		func() string { return "url = \"postgres://app:" + rnd(12) + "@db:5432/x\"" },
		func() string { return "SLACK=xoxb-123456789012-1234567890123-" + rnd(24) },
		func() string { return "api_key = '" + rnd(40) + "'" },
	}
	for i := range 200 {
		var buf bytes.Buffer
		for l := 0; buf.Len() < 64<<10; l++ {
			if l%10 == 0 {
				buf.WriteString(secretLine[r.IntN(len(secretLine))]())
			} else {
				fmt.Fprintf(&buf, "func handler%d(w http.ResponseWriter, r *http.Request) { token := r.Header.Get(\"X-Token\"); _ = token }", l)
			}
			buf.WriteByte('\n')
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.go", i)), buf.Bytes(), 0o644)
	}
	benchDir(b, dir)
}

// BenchmarkStartupEmpty runs the whole command (rules parsed and compiled,
// automaton built, report written) on an empty directory.
func BenchmarkStartupEmpty(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		cmd := Command()
		cmd.SetArgs([]string{dir, "--no-progress"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStaged10Files runs `scan --staged` on a repository with ten
// staged files of about 8 KiB each (a pre-commit hook).
func BenchmarkStaged10Files(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	dir := b.TempDir()
	gitc := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	gitc("init", "-q")
	for i := range 10 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%d.go", i)), bytes.Repeat([]byte("package x // some code here with a token variable\n"), 160), 0o644)
	}
	gitc("add", ".")
	for b.Loop() {
		cmd := Command()
		cmd.SetArgs([]string{dir, "--staged", "--no-progress"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeFile scans one 12 MiB file of Go source (the goal: no file
// over 10 MB takes more than 2 s). ns/op is the time for the file.
func BenchmarkLargeFile(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src", "net", "http")
	ents, err := os.ReadDir(src)
	if err != nil {
		b.Skipf("no GOROOT source: %v", err)
	}
	var buf bytes.Buffer
	for buf.Len() < 12<<20 {
		for _, e := range ents {
			if data, err := os.ReadFile(filepath.Join(src, e.Name())); err == nil && !e.IsDir() {
				buf.Write(data)
			}
		}
	}
	s, err := scan.New(scan.Config{Detectors: allDetectors(b), MaxFileSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	f := &scan.File{Path: "big.go", Data: buf.Bytes()}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		res, err := s.ScanFile(context.Background(), f)
		if err != nil || len(res.Stats.Skipped) > 0 {
			b.Fatalf("err %v skipped %v", err, res.Stats.Skipped)
		}
	}
}
