package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// gitBlob is one blob to read, with its provenance.
type gitBlob struct {
	sha, path, commit, author string
	date                      time.Time
}

// GitHistory scans every blob reachable from any ref of the repository in
// dir exactly once, attributed to the oldest commit (by walk order) that
// introduced it at a path. It runs `git log` and `git cat-file --batch`,
// so git must be on PATH.
func (s *Scanner) GitHistory(ctx context.Context, dir string) (*Result, error) {
	// Oldest first, every commit's changed blobs, merges diffed against
	// each parent so conflict resolutions are not missed.
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "log", "--all", "--reverse", "--topo-order",
		"-m", "--raw", "--no-abbrev", "--no-renames", "-z", "--diff-filter=AM",
		"--format=%x01%H%x1f%an <%ae>%x1f%aI")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git log in %s: %w%s", dir, err, stderrOf(err))
	}
	blobs, err := parseGitLog(out)
	if err != nil {
		return nil, err
	}
	return s.scanBlobs(ctx, dir, blobs)
}

// parseGitLog parses `git log -z --raw --format=%x01%H%x1f%an <%ae>%x1f%aI`
// output into the first occurrence of each blob.
func parseGitLog(out []byte) ([]gitBlob, error) {
	var (
		blobs  []gitBlob
		seen   = map[string]bool{}
		commit string
		author string
		date   time.Time
	)
	fields := bytes.Split(out, []byte{0})
	for i := 0; i < len(fields); i++ {
		f := string(fields[i])
		f = strings.TrimLeft(f, "\n")
		if f == "" {
			continue
		}
		if strings.HasPrefix(f, "\x01") {
			hdr := strings.SplitN(f[1:], "\x1f", 3)
			if len(hdr) != 3 {
				return nil, fmt.Errorf("git log: bad header %q", f)
			}
			commit, author = hdr[0], hdr[1]
			date, _ = time.Parse(time.RFC3339, strings.TrimSpace(hdr[2]))
			// With -z the first raw entry follows the header after a newline.
			if j := strings.IndexByte(hdr[2], '\n'); j >= 0 {
				rest := strings.TrimLeft(hdr[2][j:], "\n")
				date, _ = time.Parse(time.RFC3339, strings.TrimSpace(hdr[2][:j]))
				if rest == "" {
					continue
				}
				f = rest
			} else {
				continue
			}
		}
		if !strings.HasPrefix(f, ":") {
			continue
		}
		// ":100644 100644 <old> <new> M" then the path in the next field.
		meta := strings.Fields(f)
		if len(meta) < 5 || i+1 >= len(fields) {
			return nil, fmt.Errorf("git log: bad raw entry %q", f)
		}
		i++
		p := string(fields[i])
		sha, mode := meta[3], meta[1]
		if strings.HasPrefix(mode, "160000") || strings.HasPrefix(mode, "120000") {
			continue // submodule or symlink
		}
		if seen[sha] {
			continue
		}
		seen[sha] = true
		blobs = append(blobs, gitBlob{sha: sha, path: p, commit: commit, author: author, date: date})
	}
	return blobs, nil
}

// GitStaged scans exactly the content staged for commit in the repository
// at dir (the index, not the working tree): what a pre-commit hook must
// check.
func (s *Scanner) GitStaged(ctx context.Context, dir string) (*Result, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--no-renames")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git diff --cached in %s: %w%s", dir, err, stderrOf(err))
	}
	var blobs []gitBlob
	for p := range strings.SplitSeq(string(out), "\x00") {
		if p != "" {
			blobs = append(blobs, gitBlob{sha: ":" + p, path: p})
		}
	}
	return s.scanBlobs(ctx, dir, blobs)
}

// scanBlobs reads blobs through one `git cat-file --batch` process.
func (s *Scanner) scanBlobs(ctx context.Context, dir string, blobs []gitBlob) (*Result, error) {
	if len(blobs) == 0 {
		return s.ScanFiles(ctx, func() (*File, error) { return nil, nil })
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, "git", "-C", dir, "cat-file", "--batch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start git cat-file: %w", err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, b := range blobs {
			w.WriteString(b.sha)
			w.WriteByte('\n')
		}
		w.Flush()
		stdin.Close()
	}()
	br := bufio.NewReaderSize(stdout, 1<<16)
	limit := s.cfg.maxFileSize()
	var pendingSkips []Skip
	rank := map[string]int{}
	for _, b := range blobs {
		if _, ok := rank[b.commit]; !ok {
			rank[b.commit] = len(rank)
		}
	}
	i := 0
	res, err := s.scanFiles(ctx, rank, func() (*File, error) {
		for i < len(blobs) {
			b := blobs[i]
			i++
			hdr, err := br.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("git cat-file: %w", err)
			}
			parts := strings.Fields(hdr)
			if len(parts) == 2 && parts[1] == "missing" {
				pendingSkips = append(pendingSkips, Skip{Path: b.path, Reason: SkipUnreadable, Detail: "blob missing"})
				continue
			}
			if len(parts) != 3 {
				return nil, fmt.Errorf("git cat-file: bad header %q", hdr)
			}
			size, err := strconv.ParseInt(parts[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("git cat-file: bad size in %q", hdr)
			}
			if size > limit {
				if _, err := io.CopyN(io.Discard, br, size+1); err != nil {
					return nil, fmt.Errorf("git cat-file: %w", err)
				}
				pendingSkips = append(pendingSkips, Skip{Path: b.path, Reason: SkipTooLarge, Detail: fmt.Sprintf("%d bytes in %.12s", size, b.commit)})
				continue
			}
			data := make([]byte, size+1)
			if _, err := io.ReadFull(br, data); err != nil {
				return nil, fmt.Errorf("git cat-file: %w", err)
			}
			return &File{Path: b.path, Data: data[:size], Commit: b.commit, Author: b.author, Date: b.date}, nil
		}
		return nil, nil
	})
	cancel()
	_ = cmd.Wait()
	if res != nil {
		res.Stats.Skipped = append(res.Stats.Skipped, pendingSkips...)
	}
	return res, err
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
