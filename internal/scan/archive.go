package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ArchiveLimits bounds archive expansion so that a hostile archive (a zip
// bomb, a deeply nested archive) cannot exhaust memory or time. Zero fields
// take the defaults shown.
type ArchiveLimits struct {
	MaxDepth      int   // nesting depth of archives in archives; default 4
	MaxEntries    int   // entries per archive; default 10000
	MaxTotalBytes int64 // uncompressed bytes per top-level archive; default 512 MiB
	MaxRatio      int   // uncompressed/compressed size of a zip entry; default 200
}

func (l ArchiveLimits) validate() error {
	if l.MaxDepth < 0 || l.MaxEntries < 0 || l.MaxTotalBytes < 0 || l.MaxRatio < 0 {
		return errors.New("archive limits: negative value")
	}
	return nil
}

func (l ArchiveLimits) withDefaults() ArchiveLimits {
	if l.MaxDepth == 0 {
		l.MaxDepth = 4
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = 10000
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = 512 << 20
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = 200
	}
	return l
}

// Archive kinds that [archiveKind] recognises.
const (
	kindZip  = "zip"  // zip, jar, war, ear, apk, nupkg, whl
	kindTar  = "tar"  // plain tar
	kindTgz  = "tgz"  // tar.gz, tgz
	kindTxz  = "txz"  // tar.xz, txz
	kindTzst = "tzst" // tar.zst, tzst
	kind7z   = "7z"
	kindGz   = "gz"  // one gzip-compressed file
	kindXz   = "xz"  // one xz-compressed file
	kindZst  = "zst" // one zstd-compressed file
)

// archiveKind returns the archive kind of a file name, or "".
func archiveKind(name string) string {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '!'); i >= 0 {
		n = n[i+1:]
	}
	has := func(sfx ...string) bool {
		for _, s := range sfx {
			if strings.HasSuffix(n, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has(".zip", ".jar", ".war", ".ear", ".apk", ".nupkg", ".whl"):
		return kindZip
	case has(".tar.gz", ".tgz"):
		return kindTgz
	case has(".tar.xz", ".txz"):
		return kindTxz
	case has(".tar.zst", ".tzst", ".tar.zstd"):
		return kindTzst
	case has(".tar"):
		return kindTar
	case has(".7z"):
		return kind7z
	case has(".gz"):
		return kindGz
	case has(".xz"):
		return kindXz
	case has(".zst", ".zstd"):
		return kindZst
	}
	return ""
}

// streamMember is the name of the one file inside a plain .gz/.xz/.zst.
func streamMember(name string) string {
	base := name[strings.LastIndexAny(name, "/!")+1:]
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		return base[:i]
	}
	return base
}

var errArchiveLimit = errors.New("archive limit")

// budget tracks uncompressed bytes across one top-level archive.
type budget struct{ left int64 }

func (r *run) expandArchive(ctx context.Context, f *File, depth int) {
	lim := r.s.cfg.Archives.withDefaults()
	if depth >= lim.MaxDepth {
		r.skip(f.Path, SkipArchiveLimit, fmt.Sprintf("nested deeper than %d archives", lim.MaxDepth))
		return
	}
	b := &budget{left: lim.MaxTotalBytes}
	r.expandWith(ctx, f, depth, lim, b)
}

// streamSlack is decompressed bytes allowed beyond the ratio limit for a
// compressed stream: tar padding compresses to almost nothing, so a small
// honest .tar.gz can exceed any sane ratio.
const streamSlack = 1 << 20

// decompress opens the compressed stream of kind over data, bounded so
// that it yields at most the ratio limit times its size (plus slack).
func decompress(kind string, data []byte, lim ArchiveLimits) (io.Reader, func(), error) {
	in := bytes.NewReader(data)
	var (
		rd    io.Reader
		close = func() {}
	)
	switch kind {
	case kindTgz, kindGz:
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, nil, err
		}
		rd = zr
	case kindTxz, kindXz:
		xr, err := xz.NewReader(in)
		if err != nil {
			return nil, nil, err
		}
		rd = xr
	case kindTzst, kindZst:
		// One goroutine and a bounded window: the decoder's defaults
		// (GOMAXPROCS goroutines, windows up to 8 GiB) suit trusted input.
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, nil, err
		}
		rd, close = zr, zr.Close
	default:
		return nil, nil, fmt.Errorf("not a compressed stream: %s", kind)
	}
	return &ratioReader{rd: rd, left: int64(len(data))*int64(lim.MaxRatio) + streamSlack, ratio: lim.MaxRatio}, close, nil
}

// ratioReader fails with errArchiveLimit once more than left bytes come out.
type ratioReader struct {
	rd    io.Reader
	left  int64
	ratio int
}

func (r *ratioReader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return 0, fmt.Errorf("%w: expands more than %d times its compressed size: possible decompression bomb", errArchiveLimit, r.ratio)
	}
	if int64(len(p)) > r.left+1 {
		p = p[:r.left+1]
	}
	n, err := r.rd.Read(p)
	r.left -= int64(n)
	if r.left < 0 {
		return n, fmt.Errorf("%w: expands more than %d times its compressed size: possible decompression bomb", errArchiveLimit, r.ratio)
	}
	return n, err
}

func (r *run) expandWith(ctx context.Context, f *File, depth int, lim ArchiveLimits, b *budget) {
	if depth >= lim.MaxDepth {
		r.skip(f.Path, SkipArchiveLimit, fmt.Sprintf("nested deeper than %d archives", lim.MaxDepth))
		return
	}
	members := 0
	member := func(name string, data []byte) {
		members++
		child := &File{Path: f.Path + "!" + name, Data: data, Commit: f.Commit, Author: f.Author, Date: f.Date}
		if r.archiveKind(name) != "" {
			r.expandWith(ctx, child, depth+1, lim, b)
			return
		}
		r.process(ctx, child, depth+1)
	}
	var err error
	switch kind := r.archiveKind(f.Path); kind {
	case kindZip:
		err = r.walkZip(ctx, f, lim, b, member)
	case kind7z:
		err = r.walkMembers(ctx, f, r.s.cfg.SevenZip, lim, b, member)
	case kindTar:
		err = r.walkTar(ctx, f, bytes.NewReader(f.Data), lim, b, member)
	case kindTgz, kindTxz, kindTzst:
		var (
			rd    io.Reader
			close func()
		)
		rd, close, err = decompress(kind, f.Data, lim)
		if err == nil {
			err = r.walkTar(ctx, f, rd, lim, b, member)
			close()
		}
	case kindGz, kindXz, kindZst:
		var (
			rd    io.Reader
			close func()
			data  []byte
		)
		rd, close, err = decompress(kind, f.Data, lim)
		if err == nil {
			data, err = readLimited(rd, min(b.left, r.s.cfg.maxFileSize()), streamMember(f.Path))
			close()
		}
		if err == nil {
			b.left -= int64(len(data))
			member(streamMember(f.Path), data)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, errArchiveLimit):
		r.skip(f.Path, SkipArchiveLimit, err.Error())
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		r.skip(f.Path, SkipArchiveLimit, "zstd window larger than 64 MiB: "+err.Error())
	case ctx.Err() != nil:
	default:
		// Not an archive after all, or a damaged one: what it holds
		// cannot be read by anyone, so the scan is not incomplete. Its
		// bytes are scanned as they are, and the user is told.
		if members == 0 {
			r.note(fmt.Sprintf("%s: not a readable archive (%v); scanned as raw bytes", f.Path, err))
		} else {
			r.note(fmt.Sprintf("%s: archive damaged after %d members (%v); those were scanned, and the whole file as raw bytes", f.Path, members, err))
		}
		r.processRaw(ctx, f)
	}
}

// readLimited reads at most n bytes of rd; it fails with errArchiveLimit if
// there is more.
func readLimited(rd io.Reader, n int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, fmt.Errorf("%w: %s expands beyond %d bytes", errArchiveLimit, what, n)
	}
	return data, nil
}

func (r *run) walkZip(ctx context.Context, f *File, lim ArchiveLimits, b *budget, member func(string, []byte)) error {
	zr, err := zip.NewReader(bytes.NewReader(f.Data), int64(len(f.Data)))
	if err != nil {
		return err
	}
	if len(zr.File) > lim.MaxEntries {
		return fmt.Errorf("%w: %d entries, limit %d", errArchiveLimit, len(zr.File), lim.MaxEntries)
	}
	maxFile := r.s.cfg.maxFileSize()
	for _, zf := range zr.File {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if zf.FileInfo().IsDir() {
			continue
		}
		name := f.Path + "!" + zf.Name
		// Never trust the declared size; bound the actual read.
		allowed := min(b.left, maxFile)
		if zf.CompressedSize64 > 0 {
			allowed = min(allowed, int64(zf.CompressedSize64)*int64(lim.MaxRatio)+4096)
		}
		rc, err := zf.Open()
		if err != nil {
			r.skip(name, SkipArchiveCorrupt, err.Error())
			continue
		}
		data, err := readLimited(rc, allowed, zf.Name)
		rc.Close()
		if err != nil {
			if errors.Is(err, errArchiveLimit) {
				r.skip(name, SkipArchiveLimit, fmt.Sprintf("expands beyond %d bytes (compressed %d, ratio limit %d, size limit %d): possible zip bomb",
					allowed, zf.CompressedSize64, lim.MaxRatio, maxFile))
				if b.left <= allowed {
					return fmt.Errorf("%w: total uncompressed size over %d bytes", errArchiveLimit, lim.MaxTotalBytes)
				}
				continue
			}
			r.skip(name, SkipArchiveCorrupt, err.Error())
			continue
		}
		b.left -= int64(len(data))
		member(zf.Name, data)
	}
	return nil
}

func (r *run) walkTar(ctx context.Context, f *File, rd io.Reader, lim ArchiveLimits, b *budget, member func(string, []byte)) error {
	tr := tar.NewReader(rd)
	maxFile := r.s.cfg.maxFileSize()
	for n := 0; ; n++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n >= lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", errArchiveLimit, lim.MaxEntries)
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := f.Path + "!" + h.Name
		if h.Size > maxFile {
			// A header may declare more than the archive holds (a
			// truncated or crafted tar): only a member that really has
			// more than the limit makes the scan incomplete; a short one
			// means the archive is damaged, and its bytes are scanned raw.
			if _, err := io.CopyN(io.Discard, tr, maxFile+1); err != nil {
				return fmt.Errorf("member %s declares %d bytes but the archive ends first: %w", h.Name, h.Size, err)
			}
			r.skip(name, SkipTooLarge, fmt.Sprintf("%d bytes, limit %d", h.Size, maxFile))
			continue
		}
		data, err := readLimited(tr, min(b.left, maxFile), h.Name)
		if err != nil {
			if errors.Is(err, errArchiveLimit) {
				return fmt.Errorf("%w: total uncompressed size over %d bytes", errArchiveLimit, lim.MaxTotalBytes)
			}
			return err
		}
		b.left -= int64(len(data))
		member(h.Name, data)
	}
}

// ArchiveMember is one regular file of an archive read by an
// [ArchiveOpener].
type ArchiveMember struct {
	Name string
	Open func() (io.ReadCloser, error)
}

// ArchiveOpener lists the regular files of the archive held in data.
// Package scan reads zip, tar and compressed streams itself; an opener
// plugs in a format whose library this package may not link: the 7z
// reader (bodgit/sevenzip) reaches net/http through its dependencies, and
// the scanner, which the agent links for redaction, must never reach
// net/http (deps_test.go). internal/scancli supplies it.
type ArchiveOpener func(data []byte) ([]ArchiveMember, error)

// archiveKind is [archiveKind] limited to the formats this scan can open.
func (r *run) archiveKind(name string) string {
	k := archiveKind(name)
	if k == kind7z && r.s.cfg.SevenZip == nil {
		return ""
	}
	return k
}

// walkMembers reads the members an opener lists, within the limits.
func (r *run) walkMembers(ctx context.Context, f *File, open ArchiveOpener, lim ArchiveLimits, b *budget, member func(string, []byte)) error {
	var ms []ArchiveMember
	err := safely(func() (err error) {
		ms, err = open(f.Data)
		return err
	})
	if err != nil {
		return err
	}
	if len(ms) > lim.MaxEntries {
		return fmt.Errorf("%w: %d entries, limit %d", errArchiveLimit, len(ms), lim.MaxEntries)
	}
	maxFile := r.s.cfg.maxFileSize()
	// 7z compresses members together in solid blocks, so a ratio per
	// member means nothing; the ratio bounds the archive as a whole.
	total := int64(len(f.Data))*int64(lim.MaxRatio) + streamSlack
	for _, m := range ms {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := f.Path + "!" + m.Name
		allowed := min(b.left, maxFile, total)
		var data []byte
		err := safely(func() error {
			rc, err := m.Open()
			if err != nil {
				return err
			}
			defer rc.Close()
			data, err = readLimited(rc, allowed, m.Name)
			return err
		})
		if err != nil {
			if errors.Is(err, errArchiveLimit) {
				r.skip(name, SkipArchiveLimit, fmt.Sprintf("expands beyond %d bytes (archive %d bytes, ratio limit %d, size limit %d): possible decompression bomb",
					allowed, len(f.Data), lim.MaxRatio, maxFile))
				if allowed < maxFile {
					return fmt.Errorf("%w: total uncompressed size over the limit", errArchiveLimit)
				}
				continue
			}
			return err
		}
		b.left -= int64(len(data))
		total -= int64(len(data))
		member(m.Name, data)
	}
	return nil
}

// safely runs a third-party archive parser's call, turning a panic into
// an error: a hostile archive must not stop the scan. (bodgit/sevenzip
// before v1.6.5 panicked on a forged 7z header; a fuzz test found it.)
func safely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("archive reader failed on this input: %v", p)
		}
	}()
	return fn()
}
