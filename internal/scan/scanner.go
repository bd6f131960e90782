package scan

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gitignore "github.com/sabhiram/go-gitignore"
)

// SkipReason says why a file was not scanned, or only partly.
type SkipReason string

// Reasons a file is skipped. [SkipReason.Incomplete] tells which of them
// make a scan incomplete.
const (
	SkipBinary         SkipReason = "binary file"
	SkipIgnored        SkipReason = "ignored by .gitignore"
	SkipTooLarge       SkipReason = "larger than the size limit"
	SkipUnreadable     SkipReason = "unreadable"
	SkipSymlinkEscape  SkipReason = "symlink leading outside the target"
	SkipSymlinkDir     SkipReason = "symlink to a directory (not followed)"
	SkipSymlinkBroken  SkipReason = "broken symlink or symlink loop"
	SkipSpecial        SkipReason = "not a regular file"
	SkipTimeBudget     SkipReason = "per-file time budget exceeded"
	SkipArchiveLimit   SkipReason = "archive limit reached (depth, size, entries or compression ratio)"
	SkipArchiveCorrupt SkipReason = "corrupt archive"
	SkipDetectorError  SkipReason = "detector failed"
)

// Incomplete reports whether skipping a file for this reason means the
// scan did not look at everything it was asked to. Binary, ignored and
// non-regular files are skipped by design; the others are not.
func (r SkipReason) Incomplete() bool {
	switch r {
	case SkipBinary, SkipIgnored, SkipSpecial, SkipSymlinkDir, SkipSymlinkEscape, SkipSymlinkBroken:
		return false
	}
	return true
}

// Skip records one skipped file.
type Skip struct {
	Path   string     `json:"path"`
	Reason SkipReason `json:"reason"`
	Detail string     `json:"detail,omitempty"`
}

// Stats summarises a scan.
type Stats struct {
	Files   int64 `json:"files"` // files handed to detectors
	Bytes   int64 `json:"bytes"`
	NonUTF8 int64 `json:"non_utf8"` // scanned byte-wise; not valid UTF-8
	Skipped []Skip
}

// SkipCounts counts skips by reason.
func (s Stats) SkipCounts() map[SkipReason]int {
	m := map[SkipReason]int{}
	for _, k := range s.Skipped {
		m[k.Reason]++
	}
	return m
}

// Incomplete reports whether any skip makes the scan incomplete.
func (s Stats) Incomplete() bool {
	for _, k := range s.Skipped {
		if k.Reason.Incomplete() {
			return true
		}
	}
	return false
}

// Result is the outcome of a scan.
type Result struct {
	Findings []Finding
	Stats    Stats
	// Suppressed counts findings dropped, by mechanism ("inline" here;
	// package suppress adds "baseline" and "ignore-file").
	Suppressed map[string]int
	// Notes are messages for the user that are not findings, such as an
	// interlock:allow comment without a reason.
	Notes []string
}

// Config configures a [Scanner]. The zero value scans nothing (it has no
// detectors) but is otherwise valid.
type Config struct {
	Detectors []Detector
	// Workers bounds concurrency; 0 means GOMAXPROCS.
	Workers int
	// MaxFileSize is the largest file scanned, in bytes; 0 means 25 MiB.
	MaxFileSize int64
	// FileBudget bounds the detectors' time on one file; 0 means 5s.
	FileBudget time.Duration
	// NoIgnore scans files that .gitignore excludes.
	NoIgnore bool
	// NoInlineAllow ignores interlock:allow comments.
	NoInlineAllow bool
	// Archives sets limits for zip and tar archives; zero fields take
	// defaults (see [ArchiveLimits]). Archives are expanded only if
	// ExpandArchives is set.
	ExpandArchives bool
	Archives       ArchiveLimits
	// SevenZip, if set, opens .7z archives (see [ArchiveOpener]); without
	// it they are scanned as raw bytes.
	SevenZip ArchiveOpener
	// Progress, if set, is called from time to time with running totals.
	Progress func(files, bytes int64)
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Workers < 0 || c.MaxFileSize < 0 || c.FileBudget < 0 {
		return errors.New("scan config: negative limit")
	}
	return c.Archives.validate()
}

func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (c Config) maxFileSize() int64 {
	if c.MaxFileSize > 0 {
		return c.MaxFileSize
	}
	return 25 << 20
}

func (c Config) fileBudget() time.Duration {
	if c.FileBudget > 0 {
		return c.FileBudget
	}
	return 5 * time.Second
}

// Scanner runs detectors over targets. It is safe for concurrent use.
type Scanner struct {
	cfg Config
}

// New returns a Scanner.
func New(cfg Config) (*Scanner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scanner{cfg: cfg}, nil
}

// run is the state of one scan.
type run struct {
	s *Scanner
	// commitRank orders commits oldest first for history scans.
	commitRank map[string]int
	mu         sync.Mutex
	res        Result
	files      atomic.Int64
	bytes      atomic.Int64
}

func (r *run) skip(p string, reason SkipReason, detail string) {
	r.mu.Lock()
	r.res.Stats.Skipped = append(r.res.Stats.Skipped, Skip{Path: p, Reason: reason, Detail: detail})
	r.mu.Unlock()
}

func (r *run) emit(f Finding) {
	r.mu.Lock()
	r.res.Findings = append(r.res.Findings, f)
	r.mu.Unlock()
}

// emitter returns the emit function for file f, which honours inline
// "interlock:allow RULE reason" comments on the finding's line or the line
// above it.
func (r *run) emitter(f *File) func(Finding) {
	if r.s.cfg.NoInlineAllow || !bytes.Contains(f.Data, []byte(allowMarker)) {
		return r.emit
	}
	fileRule, fileReason, fileAllow := allowFile(f)
	return func(fd Finding) {
		if fileAllow && fileReason != "" && ruleMatches(fileRule, fd.RuleID) {
			r.mu.Lock()
			if r.res.Suppressed == nil {
				r.res.Suppressed = map[string]int{}
			}
			r.res.Suppressed["inline"]++
			r.mu.Unlock()
			return
		}
		for _, ln := range []int{fd.Line, fd.Line - 1} {
			rule, reason, ok := parseAllow(f.LineAt(ln))
			if !ok || !ruleMatches(rule, fd.RuleID) {
				continue
			}
			if reason == "" {
				r.note(fmt.Sprintf("%s:%d: interlock:allow %s has no reason; the finding is still reported", fd.File, ln, rule))
				break
			}
			r.mu.Lock()
			if r.res.Suppressed == nil {
				r.res.Suppressed = map[string]int{}
			}
			r.res.Suppressed["inline"]++
			r.mu.Unlock()
			return
		}
		r.emit(fd)
	}
}

func (r *run) note(s string) {
	r.mu.Lock()
	if !slices.Contains(r.res.Notes, s) {
		r.res.Notes = append(r.res.Notes, s)
	}
	r.mu.Unlock()
}

const allowMarker = "interlock:allow"

// allowFile finds "interlock:allow-file RULE reason" in the first ten lines
// of f: it suppresses RULE ("*" for all) in the whole file, for data files
// such as rule and default-credential lists.
func allowFile(f *File) (rule, reason string, ok bool) {
	for n := 1; n <= 10; n++ {
		line := f.LineAt(n)
		i := bytes.Index(line, []byte(allowMarker+"-file"))
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(string(line[i+len(allowMarker)+len("-file"):]))
		rule, reason, _ = strings.Cut(rest, " ")
		return rule, strings.TrimSpace(reason), rule != ""
	}
	return "", "", false
}

// parseAllow finds "interlock:allow RULE reason…" in a line.
func parseAllow(line []byte) (rule, reason string, ok bool) {
	i := bytes.Index(line, []byte(allowMarker))
	if i < 0 || bytes.HasPrefix(line[i+len(allowMarker):], []byte("-file")) {
		return "", "", false
	}
	rest := strings.TrimSpace(string(line[i+len(allowMarker):]))
	for _, end := range []string{"*/", "-->"} {
		rest = strings.TrimSpace(strings.TrimSuffix(rest, end))
	}
	rule, reason, _ = strings.Cut(rest, " ")
	return rule, strings.TrimSpace(reason), rule != ""
}

// ruleMatches reports whether pattern (an ID, a prefix ending in "*", or
// "*") names rule.
func ruleMatches(pattern, rule string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(rule, p)
	}
	return pattern == rule
}

func (r *run) finish() *Result {
	r.res.Stats.Files = r.files.Load()
	r.res.Stats.Bytes = r.bytes.Load()
	r.res.Findings = dedupe(r.res.Findings, r.commitRank)
	slices.SortFunc(r.res.Stats.Skipped, func(a, b Skip) int { return cmp.Compare(a.Path, b.Path) })
	return &r.res
}

// dedupe sorts findings and removes duplicates: the same rule and secret at
// the same place, the same rule and secret in the same path at a later
// commit, and a secret finding on a line that already has a
// default-credential finding (the more specific report wins), or by a card-data finding on the same line.
func dedupe(fs []Finding, commitRank map[string]int) []Finding {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.RuleID, b.RuleID), a.Date.Compare(b.Date))
	})
	type key struct {
		file, rule, fp string
		line, col      int
	}
	type lineKey struct {
		file, commit string
		line         int
	}
	seen := map[key]bool{}
	credLines := map[lineKey]bool{}
	for _, f := range fs {
		if f.Kind == KindDefaultCred || f.Kind == KindCardData {
			credLines[lineKey{f.File, f.Commit, f.Line}] = true
		}
	}
	// earliest commit first for history dedupe
	order := slices.Clone(fs)
	slices.SortStableFunc(order, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(commitRank[a.Commit], commitRank[b.Commit]), a.Date.Compare(b.Date))
	})
	out := fs[:0:0]
	for _, f := range order {
		k := key{file: f.File, rule: f.RuleID, fp: f.Fingerprint}
		if f.Commit == "" {
			k.line, k.col = f.Line, f.Column
		}
		if f.Kind != KindMisconfig && f.Kind != KindVulnerableDep {
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		if f.Kind == KindSecret && credLines[lineKey{f.File, f.Commit, f.Line}] {
			continue
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.RuleID, b.RuleID))
	})
	return out
}

// ScanFile runs the detectors over one in-memory file (standard input, a
// blob). Archives are expanded if the config says so.
func (s *Scanner) ScanFile(ctx context.Context, f *File) (*Result, error) {
	r := &run{s: s}
	r.process(ctx, f, 0)
	return r.finish(), ctx.Err()
}

// ScanReader reads all of rd (up to the size limit) and scans it as a file
// named name.
func (s *Scanner) ScanReader(ctx context.Context, name string, rd io.Reader) (*Result, error) {
	limit := s.cfg.maxFileSize()
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		r := &run{s: s}
		r.skip(name, SkipTooLarge, fmt.Sprintf("over %d bytes", limit))
		return r.finish(), nil
	}
	return s.ScanFile(ctx, &File{Path: name, Data: data})
}

// ScanFiles scans every file next yields until it returns nil, with the
// configured concurrency. next is called from one goroutine at a time. An
// error from next stops the scan and is returned.
func (s *Scanner) ScanFiles(ctx context.Context, next func() (*File, error)) (*Result, error) {
	return s.scanFiles(ctx, nil, next)
}

func (s *Scanner) scanFiles(ctx context.Context, commitRank map[string]int, next func() (*File, error)) (*Result, error) {
	r := &run{s: s, commitRank: commitRank}
	err := r.scanLoaders(ctx, func() (loader, error) {
		f, err := next()
		if f == nil || err != nil {
			return nil, err
		}
		return func() (*File, *Skip) { return f, nil }, nil
	})
	return r.finish(), err
}

// loader produces a file, or says why it could not. It runs on a worker.
type loader func() (*File, *Skip)

// scanLoaders runs loaders from next on the workers.
func (r *run) scanLoaders(ctx context.Context, next func() (loader, error)) error {
	s := r.s
	ch := make(chan loader, 4*s.cfg.workers())
	var wg sync.WaitGroup
	for range s.cfg.workers() {
		wg.Go(func() {
			for load := range ch {
				if ctx.Err() != nil {
					continue
				}
				f, sk := load()
				if sk != nil {
					r.skip(sk.Path, sk.Reason, sk.Detail)
					continue
				}
				r.process(ctx, f, 0)
			}
		})
	}
	var err error
	for ctx.Err() == nil {
		var l loader
		l, err = next()
		if err != nil || l == nil {
			break
		}
		ch <- l
	}
	close(ch)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// process runs detectors over f (expanding archives at depth).
func (r *run) process(ctx context.Context, f *File, depth int) {
	cfg := &r.s.cfg
	if int64(len(f.Data)) > cfg.maxFileSize() {
		r.skip(f.Path, SkipTooLarge, fmt.Sprintf("%d bytes, limit %d", len(f.Data), cfg.maxFileSize()))
		return
	}
	if cfg.ExpandArchives && r.archiveKind(f.Path) != "" {
		r.expandArchive(ctx, f, depth)
		return
	}
	r.processRaw(ctx, f)
}

// processRaw runs detectors over f's bytes as they are.
func (r *run) processRaw(ctx context.Context, f *File) {
	cfg := &r.s.cfg
	if text, ok := asText(f.Data); ok {
		g := *f
		g.Data, g.lines = text, nil
		f = &g
	}
	if isBinary(f.Data) {
		r.detectBinary(ctx, f)
		r.skip(f.Path, SkipBinary, "")
		return
	}
	if !validUTF8(f.Data) {
		r.mu.Lock()
		r.res.Stats.NonUTF8++
		r.mu.Unlock()
	}
	n := r.files.Add(1)
	b := r.bytes.Add(int64(len(f.Data)))
	if cfg.Progress != nil && n%256 == 0 {
		cfg.Progress(n, b)
	}
	fctx, cancel := context.WithTimeout(ctx, cfg.fileBudget())
	defer cancel()
	// A detector that does not notice its context (a third-party parser
	// stuck on crafted input) must not hold the scan: past the budget and a
	// short grace it is abandoned, its later findings dropped, and the file
	// reported as not fully scanned. Its goroutine ends with the process.
	var abandoned atomic.Bool
	emitAll := r.emitter(f)
	emit := func(fd Finding) {
		if !abandoned.Load() {
			emitAll(fd)
		}
	}
	for _, d := range cfg.Detectors {
		done := make(chan error, 1)
		go func() { done <- d.Detect(fctx, f, emit) }()
		var err error
		select {
		case err = <-done:
		case <-fctx.Done():
			select {
			case err = <-done:
			case <-time.After(detectorGrace):
				abandoned.Store(true)
				if ctx.Err() == nil {
					r.skip(f.Path, SkipTimeBudget, fmt.Sprintf("%s detector did not stop within %s and was abandoned", d.Name(), cfg.fileBudget()+detectorGrace))
				}
				return
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				r.skip(f.Path, SkipTimeBudget, fmt.Sprintf("%s detector stopped after %s", d.Name(), cfg.fileBudget()))
			} else {
				r.skip(f.Path, SkipDetectorError, fmt.Sprintf("%s: %v", d.Name(), err))
			}
		}
	}
}

// detectBinary offers a binary file to the detectors that recognise
// binary formats (see [BinaryDetector]); the text detectors do not run.
func (r *run) detectBinary(ctx context.Context, f *File) {
	emit := r.emitter(f)
	for _, d := range r.s.cfg.Detectors {
		bd, ok := d.(BinaryDetector)
		if !ok {
			continue
		}
		if err := bd.DetectBinary(ctx, f, emit); err != nil && ctx.Err() == nil {
			r.skip(f.Path, SkipDetectorError, fmt.Sprintf("%s: %v", d.Name(), err))
		}
	}
}

// detectorGrace is how long a detector past the file budget has to return
// before it is abandoned.
const detectorGrace = time.Second

// ScanDir scans the tree under dir. Files are opened through an [os.Root]
// so that no symlink can lead outside dir; symlinks to directories are not
// followed (which also rules out loops). .gitignore files are honoured
// unless Config.NoIgnore is set; .git directories are never scanned.
func (s *Scanner) ScanDir(ctx context.Context, dir string) (*Result, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open scan target: %w", err)
	}
	defer root.Close()
	st, err := root.Stat(".")
	if err != nil {
		return nil, fmt.Errorf("stat scan target: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("scan target %s is not a directory", dir)
	}

	r := &run{s: s}
	var (
		pending = make(chan walkEntry, 1024)
		walkErr error
	)
	go func() {
		defer close(pending)
		w := &walker{ctx: ctx, noIgnore: s.cfg.NoIgnore, file: func(e walkEntry) { pending <- e }, skip: r.skip}
		walkErr = w.dir(root, ".", nil)
	}()
	limit := s.cfg.maxFileSize()
	err = r.scanLoaders(ctx, func() (loader, error) {
		e, ok := <-pending
		if !ok {
			return nil, nil
		}
		return func() (*File, *Skip) {
			defer e.dir.release()
			data, reason, detail := readUnder(root, e, limit)
			if reason != "" {
				return nil, &Skip{Path: e.path, Reason: reason, Detail: detail}
			}
			return &File{Path: e.path, Data: data}, nil
		}, nil
	})
	for e := range pending { // drain if the scan stopped early
		e.dir.release()
	}
	if err == nil && walkErr != nil {
		err = walkErr
	}
	return r.finish(), err
}

// dirRoot is an open directory shared by the files queued from it; the last
// user closes it.
type dirRoot struct {
	root  *os.Root
	refs  atomic.Int32
	owned bool // false for the scan target, which ScanDir closes
}

func (d *dirRoot) release() {
	if d.refs.Add(-1) == 0 && d.owned {
		d.root.Close()
	}
}

// walkEntry is a file found by the walk.
type walkEntry struct {
	path    string // relative to the scan target
	name    string // relative to dir
	symlink bool
	dir     *dirRoot
}

// readUnder reads e, refusing what it must not read. Regular files open
// through their directory's root with one openat; symlinks resolve
// through top, the scan target's root, so a link may point anywhere
// inside the target but never outside it.
func readUnder(top *os.Root, e walkEntry, limit int64) ([]byte, SkipReason, string) {
	root, p := e.dir.root, e.name
	if e.symlink {
		root, p = top, e.path
		fi, err := root.Lstat(p)
		if err != nil {
			return nil, SkipUnreadable, err.Error()
		}
		// Stat through the root: fails if the link escapes.
		fi, err = root.Stat(p)
		if err != nil {
			// os.Root reports "path escapes from parent" for links that
			// leave the root; it has no exported sentinel error.
			if strings.Contains(err.Error(), "escapes") {
				return nil, SkipSymlinkEscape, ""
			}
			return nil, SkipSymlinkBroken, err.Error()
		}
		if fi.IsDir() {
			return nil, SkipSymlinkDir, ""
		}
	}
	f, err := root.Open(p)
	if err != nil {
		if strings.Contains(err.Error(), "escapes") {
			return nil, SkipSymlinkEscape, ""
		}
		return nil, SkipUnreadable, err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, SkipUnreadable, err.Error()
	}
	if !fi.Mode().IsRegular() {
		return nil, SkipSpecial, ""
	}
	if fi.Size() > limit {
		return nil, SkipTooLarge, fmt.Sprintf("%d bytes, limit %d", fi.Size(), limit)
	}
	data := make([]byte, 0, fi.Size()+1)
	data, err = readAllInto(data, io.LimitReader(f, limit+1))
	if err != nil {
		return nil, SkipUnreadable, err.Error()
	}
	if int64(len(data)) > limit {
		return nil, SkipTooLarge, fmt.Sprintf("over %d bytes", limit)
	}
	return data, "", ""
}

// ignoreLevel is the .gitignore of one directory.
type ignoreLevel struct {
	dir string // "." or slash path
	gi  *gitignore.GitIgnore
}

// walker walks a tree depth-first, one [os.Root] per directory so that
// each file opens with a single openat; symlinks to directories are never
// followed.
type walker struct {
	ctx      context.Context
	noIgnore bool
	file     func(walkEntry)
	skip     func(string, SkipReason, string)
}

// dir walks the directory open as root at slash path rel, with the
// .gitignore levels of its ancestors.
func (w *walker) dir(root *os.Root, rel string, levels []ignoreLevel) error {
	d := &dirRoot{root: root, owned: rel != "."}
	d.refs.Add(1)
	defer d.release()
	f, err := root.Open(".")
	if err != nil {
		w.skip(rel+"/", SkipUnreadable, err.Error())
		return nil
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		w.skip(rel+"/", SkipUnreadable, err.Error())
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	if !w.noIgnore {
		if data, err := root.ReadFile(".gitignore"); err == nil {
			lines := strings.Split(string(data), "\n")
			levels = append(slices.Clip(levels), ignoreLevel{dir: rel, gi: gitignore.CompileIgnoreLines(lines...)})
		}
	}
	join := func(name string) string {
		if rel == "." {
			return name
		}
		return rel + "/" + name
	}
	for _, e := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := join(e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			if e.Name() == ".git" {
				continue
			}
			if !w.noIgnore && ignoredBy(levels, p, true) {
				w.skip(p+"/", SkipIgnored, "")
				continue
			}
			sub, err := root.OpenRoot(e.Name())
			if err != nil {
				w.skip(p+"/", SkipUnreadable, err.Error())
				continue
			}
			if err := w.dir(sub, p, levels); err != nil {
				return err
			}
		case t.IsRegular() || t&fs.ModeSymlink != 0:
			if !w.noIgnore && ignoredBy(levels, p, false) {
				w.skip(p, SkipIgnored, "")
				continue
			}
			d.refs.Add(1)
			w.file(walkEntry{path: p, name: e.Name(), symlink: t&fs.ModeSymlink != 0, dir: d})
		default:
			w.skip(p, SkipSpecial, "")
		}
	}
	return nil
}

// ignoredBy reports whether any .gitignore level excludes p.
func ignoredBy(levels []ignoreLevel, p string, isDir bool) bool {
	for _, l := range levels {
		rel := p
		if l.dir != "." {
			if !strings.HasPrefix(p, l.dir+"/") {
				continue
			}
			rel = p[len(l.dir)+1:]
		}
		if isDir {
			rel += "/"
		}
		if l.gi.MatchesPath(rel) {
			return true
		}
	}
	return false
}

// readAllInto reads r to EOF, appending to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
