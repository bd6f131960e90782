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

// archiveKind returns "zip", "tar", "tgz" or "" from a file name.
func archiveKind(name string) string {
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '!'); i >= 0 {
		n = n[i+1:]
	}
	switch {
	case strings.HasSuffix(n, ".zip"), strings.HasSuffix(n, ".jar"), strings.HasSuffix(n, ".war"):
		return "zip"
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return "tgz"
	case strings.HasSuffix(n, ".tar"):
		return "tar"
	}
	return ""
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

func (r *run) expandWith(ctx context.Context, f *File, depth int, lim ArchiveLimits, b *budget) {
	if depth >= lim.MaxDepth {
		r.skip(f.Path, SkipArchiveLimit, fmt.Sprintf("nested deeper than %d archives", lim.MaxDepth))
		return
	}
	member := func(name string, data []byte) {
		child := &File{Path: f.Path + "!" + name, Data: data, Commit: f.Commit, Author: f.Author, Date: f.Date}
		if archiveKind(name) != "" {
			r.expandWith(ctx, child, depth+1, lim, b)
			return
		}
		r.process(ctx, child, depth+1)
	}
	var err error
	switch archiveKind(f.Path) {
	case "zip":
		err = r.walkZip(ctx, f, lim, b, member)
	case "tgz":
		var zr *gzip.Reader
		zr, err = gzip.NewReader(bytes.NewReader(f.Data))
		if err == nil {
			err = r.walkTar(ctx, f, zr, lim, b, member)
		}
	case "tar":
		err = r.walkTar(ctx, f, bytes.NewReader(f.Data), lim, b, member)
	}
	switch {
	case err == nil:
	case errors.Is(err, errArchiveLimit):
		r.skip(f.Path, SkipArchiveLimit, err.Error())
	default:
		r.skip(f.Path, SkipArchiveCorrupt, err.Error())
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
