// Package scancli is the `interlock scan` command: it wires the detectors
// of internal/scan into a cobra command with its flags, output formats and
// exit codes. internal/cli registers [CommandWith] in the root command,
// with a reporter that sends findings to the server (--report); [Command]
// is the standalone command without one.
package scancli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/cards"
	"github.com/interlock-dev/interlock/internal/scan/defcreds"
	"github.com/interlock-dev/interlock/internal/scan/deps"
	"github.com/interlock-dev/interlock/internal/scan/misconfig"
	"github.com/interlock-dev/interlock/internal/scan/report"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
	"github.com/interlock-dev/interlock/internal/scan/suppress"
)

// Exit codes of `interlock scan`. They never mix meanings.
const (
	ExitClean      = 0 // nothing at or above --fail-on, and the scan was complete
	ExitFindings   = 1 // findings at or above --fail-on
	ExitIncomplete = 2 // the scan failed, or skipped files it should have read
)

// ExitError is returned by the command's RunE when the process must exit
// with a non-zero code. Callers MUST map it to the process exit code:
//
//	var ee *scancli.ExitError
//	if errors.As(err, &ee) { return ee.Code }
//
// The report has already been written when Code is ExitFindings; Err is
// nil then and Error returns a one-line summary. For ExitIncomplete, Err
// says what went wrong (it may be nil when the report explains the skips).
type ExitError struct {
	Code int
	Err  error
	msg  string
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.msg
}

func (e *ExitError) Unwrap() error { return e.Err }

type options struct {
	git, staged, noIgnore, explain, noArchives, noInline, noProgress bool
	format, failOn, baseline, ignoreFile, osvDB, output, kinds       string
	rules                                                            []string
	report                                                           bool
	maxFileMB                                                        int64
	workers                                                          int
	fileBudget                                                       time.Duration
}

// Options extends the command with what this package may not import.
type Options struct {
	// Report, if set, is what --report calls once the report is written,
	// with the findings as reported (after suppression). Findings are
	// redacted (see [scan.Finding]); Report MUST NOT add anything that is
	// not. Report writes its own confirmation to stderr. A Report error
	// makes the command exit with [ExitIncomplete].
	Report func(ctx context.Context, r Result, stderr io.Writer) error
}

// Result is a finished scan, as --report hands it to [Options.Report].
type Result struct {
	Target   string
	Findings []scan.Finding
	Summary  report.Summary
}

// Command returns the `scan` command with all its flags and no reporter:
// --report then fails before scanning.
func Command() *cobra.Command { return CommandWith(Options{}) }

// CommandWith returns the `scan` command with opts.
func CommandWith(opts Options) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "scan [PATH | -]",
		Short: "Find leaked secrets, default credentials, misconfigurations and vulnerable dependencies",
		Long: `Scan a directory (default "."), standard input ("-"), an archive, a git
repository's full history (--git) or the files staged for commit (--staged).

Exit codes: 0 clean; 1 findings at or above --fail-on; 2 the scan failed or
was incomplete (files skipped for size, errors, time budget or archive
limits; the report lists them).`,
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			if o.report && opts.Report == nil {
				return fail("--report needs a logged-in profile: it sends findings to an Interlock server (run `interlock login`, then `interlock scan --report`)")
			}
			return run(cmd.Context(), o, opts, target, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.git, "git", false, "scan every blob in the git history of PATH (each once, with commit, author and date)")
	f.BoolVar(&o.staged, "staged", false, "scan exactly the content staged for commit in the repository at PATH (for pre-commit hooks)")
	f.BoolVar(&o.noIgnore, "no-ignore", false, "also scan files excluded by .gitignore")
	f.StringVar(&o.format, "format", "table", "output format: table, json or sarif")
	f.StringVar(&o.failOn, "fail-on", "medium", "exit 1 when a finding has at least this severity: info, low, medium, high, critical")
	f.StringArrayVar(&o.rules, "rules", nil, "extra secret rules file (YAML, same format as the bundled rules; a rule with an existing id replaces it); repeatable")
	f.BoolVar(&o.explain, "explain", false, "print to stderr why each secret candidate was dropped")
	f.StringVar(&o.baseline, "baseline", "", "JSON report of an earlier scan; only findings not in it are reported")
	f.StringVar(&o.ignoreFile, "ignore-file", "", `file of "<fingerprint> [rule] # reason" lines to suppress (default PATH/.interlockignore)`)
	f.StringVar(&o.osvDB, "osv-db", "", "offline OSV database (directory of JSON or an OSV all.zip) to check dependencies against")
	f.StringVar(&o.output, "output", "", "write the report to this file instead of standard output")
	f.StringVar(&o.kinds, "kinds", "secret,default-credential,misconfiguration,vulnerable-dependency,card-data", "comma-separated kinds of finding to look for")
	f.Int64Var(&o.maxFileMB, "max-file-size", 25, "largest file to scan, in MiB (larger files make the scan incomplete)")
	f.IntVar(&o.workers, "workers", 0, "files scanned in parallel (default: number of CPUs)")
	f.DurationVar(&o.fileBudget, "file-budget", 5*time.Second, "time allowed per file before it is reported as skipped")
	f.BoolVar(&o.noArchives, "no-archives", false, "do not look inside archives (zip, jar, tar, tar.gz, tar.xz, tar.zst, 7z, gz, xz, zst)")
	f.BoolVar(&o.noInline, "no-inline-allow", false, "ignore interlock:allow comments")
	f.BoolVar(&o.noProgress, "no-progress", false, "never show a progress line")
	f.BoolVar(&o.report, "report", false, "after the scan, send the findings (redacted: never a secret) to the server of the logged-in profile, where they become audit entries; the exit code is the scan's")
	return cmd
}

func fail(format string, a ...any) error {
	return &ExitError{Code: ExitIncomplete, Err: fmt.Errorf(format, a...)}
}

func run(ctx context.Context, o options, opts Options, target string, stdin io.Reader, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	failOn, err := scan.ParseSeverity(o.failOn)
	if err != nil {
		return fail("--fail-on: %v", err)
	}
	if !slices.Contains([]string{"table", "json", "sarif"}, o.format) {
		return fail("--format %q: want table, json or sarif", o.format)
	}
	if o.git && o.staged {
		return fail("--git and --staged are exclusive")
	}
	kinds := map[string]bool{}
	for k := range strings.SplitSeq(o.kinds, ",") {
		k = strings.TrimSpace(k)
		switch scan.Kind(k) {
		case scan.KindSecret, scan.KindDefaultCred, scan.KindMisconfig, scan.KindVulnerableDep, scan.KindCardData:
			kinds[k] = true
		default:
			return fail("--kinds: unknown kind %q", k)
		}
	}
	// A scan allocates much and briefly (file contents, parsed YAML,
	// rendered charts): collecting garbage half as often saves a tenth of
	// its CPU for a few tens of MiB more. GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(200))
	}
	dets, err := buildDetectors(o, kinds, stderr)
	if err != nil {
		return err
	}
	// Helm charts render from the scanned directory (misconfig/helm.go).
	if fi, e := os.Stat(target); e == nil && fi.IsDir() && !o.git && !o.staged && target != "-" {
		if root, e := os.OpenRoot(target); e == nil {
			defer root.Close()
			for _, d := range dets {
				if md, ok := d.(*misconfig.Detector); ok {
					md.Root, md.RenderChart = root.FS(), renderHelmChart
				}
			}
		}
	}

	var files, bytesDone atomic.Int64
	cfg := scan.Config{
		Detectors:      dets,
		Workers:        o.workers,
		MaxFileSize:    o.maxFileMB << 20,
		FileBudget:     o.fileBudget,
		NoIgnore:       o.noIgnore,
		NoInlineAllow:  o.noInline,
		ExpandArchives: !o.noArchives,
		SevenZip:       openSevenZip,
		Progress: func(n, b int64) {
			files.Store(n)
			bytesDone.Store(b)
		},
	}
	s, err := scan.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	stopProgress := progress(stderr, o, &files, &bytesDone)
	var res *scan.Result
	switch {
	case target == "-":
		res, err = s.ScanReader(ctx, "stdin", stdin)
	case o.git:
		res, err = s.GitHistory(ctx, target)
	case o.staged:
		res, err = s.GitStaged(ctx, target)
	default:
		var fi os.FileInfo
		fi, err = os.Stat(target)
		switch {
		case err != nil:
		case fi.IsDir():
			res, err = s.ScanDir(ctx, target)
		default:
			var data []byte
			data, err = os.ReadFile(target)
			if err == nil {
				res, err = s.ScanFile(ctx, &scan.File{Path: filepath.ToSlash(filepath.Base(target)), Data: data})
			}
		}
	}
	stopProgress()
	if err != nil && res == nil {
		return fail("scan %s: %v", target, err)
	}

	findings := res.Findings
	sum := report.Summary{Stats: res.Stats, Suppressed: map[string]int{}, Notes: res.Notes}
	for k, v := range res.Suppressed {
		sum.Suppressed[k] += v
	}
	var base *suppress.Baseline
	if o.baseline != "" {
		if base, err = suppress.LoadBaseline(o.baseline); err != nil {
			return fail("--baseline: %v", err)
		}
	}
	ignPath := o.ignoreFile
	if ignPath == "" && target != "-" {
		if fi, e := os.Stat(target); e == nil && fi.IsDir() {
			ignPath = filepath.Join(target, ".interlockignore")
		}
	}
	var ign *suppress.Ignore
	if ignPath != "" {
		if ign, err = suppress.LoadIgnore(ignPath); err != nil {
			return fail("ignore file: %v", err)
		}
	}
	findings, counts, stale := suppress.Apply(findings, base, ign)
	for k, v := range counts {
		sum.Suppressed[k] += v
	}
	sum.Stale = stale

	out := stdout
	var buf bytes.Buffer
	if o.output != "" {
		out = &buf
	}
	switch o.format {
	case "json":
		err = report.JSON(out, findings, sum)
	case "sarif":
		err = report.SARIFWith(out, findings, sum, sarifOptions(target, o))
	default:
		err = report.Table(out, findings, sum)
	}
	if err == nil && o.output != "" {
		err = os.WriteFile(o.output, buf.Bytes(), 0o600)
	}
	if err != nil {
		return fail("write report: %v", err)
	}
	if o.report {
		if err := opts.Report(ctx, Result{Target: target, Findings: findings, Summary: sum}, stderr); err != nil {
			return fail("--report: the findings were not sent: %v", err)
		}
	}

	if res.Stats.Incomplete() {
		return &ExitError{Code: ExitIncomplete, msg: "scan incomplete: some files could not be scanned (see the report)"}
	}
	if err != nil || ctx.Err() != nil {
		return fail("scan interrupted: %v", errors.Join(err, ctx.Err()))
	}
	n := 0
	for _, f := range findings {
		if f.Severity >= failOn {
			n++
		}
	}
	if n > 0 {
		return &ExitError{Code: ExitFindings, msg: fmt.Sprintf("%d findings at or above %s", n, failOn)}
	}
	return nil
}

// progress shows a progress line on a terminal for scans that run longer
// than two seconds; the returned func stops and clears it.
func progress(stderr io.Writer, o options, files, bytesDone *atomic.Int64) func() {
	fw, ok := stderr.(*os.File)
	if o.noProgress || !ok || !term.IsTerminal(int(fw.Fd())) {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(fw, "\r\033[K")
				}
				return
			case <-t.C:
				if time.Since(start) < 2*time.Second {
					continue
				}
				shown = true
				el := time.Since(start).Seconds()
				mb := float64(bytesDone.Load()) / (1 << 20)
				fmt.Fprintf(fw, "\r\033[Kscanning: %d files, %.0f MiB, %.0f MiB/s", files.Load(), mb, mb/el)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// buildDetectors returns the detectors for the requested kinds.
func buildDetectors(o options, kinds map[string]bool, stderr io.Writer) ([]scan.Detector, error) {
	var dets []scan.Detector
	if kinds[string(scan.KindSecret)] {
		rules, err := secrets.Bundled()
		if err != nil {
			return nil, fail("bundled rules: %v", err)
		}
		for _, p := range o.rules {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fail("--rules: %v", err)
			}
			extra, err := secrets.Parse(data)
			if err != nil {
				return nil, fail("--rules %s: %v", p, err)
			}
			rules = secrets.Merge(rules, extra)
		}
		rs, err := secrets.Compile(rules)
		if err != nil {
			return nil, fail("compile rules: %v", err)
		}
		var opts secrets.Options
		if o.explain {
			opts.Explain = func(e secrets.Explanation) {
				fmt.Fprintf(stderr, "explain: %s:%d: %s %s dropped: %s\n", e.File, e.Line, e.RuleID, e.Match, e.Reason)
			}
		}
		dets = append(dets, secrets.NewDetector(rs, opts))
	}
	if kinds[string(scan.KindDefaultCred)] {
		l, err := defcreds.Bundled()
		if err != nil {
			return nil, fail("bundled default credentials: %v", err)
		}
		dets = append(dets, defcreds.New(l))
	}
	if kinds[string(scan.KindMisconfig)] {
		dets = append(dets, misconfig.New())
	}
	if kinds[string(scan.KindCardData)] {
		dets = append(dets, cards.New())
	}
	if kinds[string(scan.KindVulnerableDep)] && o.osvDB != "" {
		db, err := deps.LoadOSV(o.osvDB)
		if err != nil {
			return nil, fail("--osv-db: %v", err)
		}
		dets = append(dets, deps.New(db))
	}

	return dets, nil
}

// sarifOptions roots SARIF locations: at the top of the git work tree that
// holds the target, with the target's place in it as a path prefix, so
// that a scan of a subdirectory reports the paths a code-scanning service
// knows; at the target directory when it is in no work tree. Git scans
// (--git, --staged) already report paths from the work tree's top.
func sarifOptions(target string, o options) report.SARIFOptions {
	if target == "-" {
		return report.SARIFOptions{}
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return report.SARIFOptions{}
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		abs = filepath.Dir(abs) // a single file is reported by its base name
	}
	top := gitTop(abs)
	if top == "" {
		return report.SARIFOptions{SourceRoot: abs}
	}
	if o.git || o.staged {
		return report.SARIFOptions{SourceRoot: top}
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || rel == "." {
		rel = ""
	}
	return report.SARIFOptions{SourceRoot: top, PathPrefix: filepath.ToSlash(rel)}
}

// gitTop returns the nearest directory at or above dir that has a .git
// entry (a directory, or a file for worktrees and submodules), or "".
func gitTop(dir string) string {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
