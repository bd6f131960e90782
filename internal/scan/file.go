package scan

import (
	"bytes"
	"context"
	"sort"
	"time"
	"unicode/utf8"
)

// File is one unit of input handed to detectors.
type File struct {
	// Path is slash-separated and relative to the target; members of
	// archives are written "outer.zip!inner/path".
	Path string
	Data []byte

	// Commit, Author and Date are set for blobs read from git history.
	Commit string
	Author string
	Date   time.Time

	lines []int // offsets of '\n', built lazily
}

// LineCol converts a byte offset in f.Data to a 1-based line and column.
func (f *File) LineCol(off int) (line, col int) {
	if f.lines == nil {
		f.lines = make([]int, 0, 64)
		d := f.Data
		base := 0
		for {
			i := bytes.IndexByte(d, '\n')
			if i < 0 {
				break
			}
			f.lines = append(f.lines, base+i)
			base += i + 1
			d = d[i+1:]
		}
	}
	// number of newlines strictly before off
	n := sort.SearchInts(f.lines, off)
	lineStart := 0
	if n > 0 {
		lineStart = f.lines[n-1] + 1
	}
	return n + 1, off - lineStart + 1
}

// LineAt returns the text of the 1-based line n, without its newline.
func (f *File) LineAt(n int) []byte {
	f.LineCol(0)
	if n < 1 || n > len(f.lines)+1 {
		return nil
	}
	start := 0
	if n > 1 {
		start = f.lines[n-2] + 1
	}
	end := len(f.Data)
	if n-1 < len(f.lines) {
		end = f.lines[n-1]
	}
	return bytes.TrimRight(f.Data[start:end], "\r")
}

// NewFinding fills the location and provenance fields of a finding at byte
// offset off of f.
func (f *File) NewFinding(off int) Finding {
	line, col := f.LineCol(off)
	return Finding{File: f.Path, Line: line, Column: col, Commit: f.Commit, Author: f.Author, Date: f.Date}
}

// Detector inspects one file and reports findings through emit.
//
// Detect MUST be safe to call from several goroutines at once with
// different files, MUST NOT retain f.Data after it returns, and SHOULD
// return ctx.Err() promptly once ctx is done (the scanner gives each file a
// time budget through ctx).
type Detector interface {
	Name() string
	Detect(ctx context.Context, f *File, emit func(Finding)) error
}

// isBinary reports whether data looks binary: a NUL byte in its first 8 KiB
// (the heuristic git uses).
func isBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0
}

func validUTF8(data []byte) bool { return utf8.Valid(data) }

// FindingAt fills the location and provenance fields of a finding at a
// known 1-based line and column.
func (f *File) FindingAt(line, col int) Finding {
	return Finding{File: f.Path, Line: line, Column: col, Commit: f.Commit, Author: f.Author, Date: f.Date}
}
