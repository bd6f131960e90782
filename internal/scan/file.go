package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"sort"
	"time"
	"unicode/utf16"
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

// BinaryDetector is a Detector that also reads binary files, which the
// scanner otherwise skips: some secrets are files whose structure, not
// text, gives them away (a PKCS #12 key store). The contract is Detect's.
type BinaryDetector interface {
	DetectBinary(ctx context.Context, f *File, emit func(Finding)) error
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

// utf8BOM is the byte-order mark Notepad and some editors write first.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// asText returns data as the detectors should read it: UTF-16 text (what
// Windows PowerShell 5 writes for > and Out-File, and regedit exports) is
// transcoded to UTF-8 so that it is scanned rather than skipped as binary
// (its ASCII letters alternate with NUL bytes), and a UTF-8 byte-order
// mark is blanked to spaces so the first key of the file starts a line.
// Line numbers are kept in both cases; columns of UTF-16 text count
// UTF-8 bytes. It reports false, and returns data, when neither applies.
func asText(data []byte) ([]byte, bool) {
	if bytes.HasPrefix(data, utf8BOM) {
		out := bytes.Clone(data)
		copy(out, "   ")
		return out, true
	}
	if order, skip := utf16Order(data); order != nil {
		return decodeUTF16(data[skip:], order), true
	}
	return data, false
}

// utf16Order detects UTF-16 by its byte-order mark or, without one, by the
// shape of ASCII text in it: in the first 512 bytes, every other byte NUL
// and none of the others. It returns the byte order and the length of the
// mark, or nil.
func utf16Order(data []byte) (binary.ByteOrder, int) {
	if len(data) >= 2 {
		switch {
		case data[0] == 0xFF && data[1] == 0xFE && !(len(data) >= 4 && data[2] == 0 && data[3] == 0): // not UTF-32LE
			return binary.LittleEndian, 2
		case data[0] == 0xFE && data[1] == 0xFF:
			return binary.BigEndian, 2
		}
	}
	n := min(len(data), 512) &^ 1
	if n < 8 {
		return nil, 0
	}
	le, be := true, true
	for i := 0; i < n && (le || be); i += 2 {
		le = le && data[i] != 0 && data[i+1] == 0
		be = be && data[i] == 0 && data[i+1] != 0
	}
	switch {
	case le:
		return binary.LittleEndian, 0
	case be:
		return binary.BigEndian, 0
	}
	return nil, 0
}

// decodeUTF16 transcodes UTF-16 in the given byte order to UTF-8; an odd
// trailing byte and unpaired surrogates become U+FFFD.
func decodeUTF16(data []byte, order binary.ByteOrder) []byte {
	u := make([]uint16, len(data)/2)
	for i := range u {
		u[i] = order.Uint16(data[2*i:])
	}
	out := make([]byte, 0, len(u)+len(u)/8)
	for _, r := range utf16.Decode(u) {
		out = utf8.AppendRune(out, r)
	}
	if len(data)%2 == 1 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return out
}
