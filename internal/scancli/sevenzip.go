package scancli

import (
	"bytes"
	"io"

	"github.com/bodgit/sevenzip"

	"github.com/interlock-dev/interlock/internal/scan"
)

// openSevenZip lists the regular files of a 7z archive for the scanner.
// It lives here, not in internal/scan, because github.com/bodgit/sevenzip
// reaches net/http through its dependencies (afero, brotli), which the
// scanner package must never link; the limits are the scanner's, applied
// as it reads each member (see [scan.ArchiveOpener]).
func openSevenZip(data []byte) ([]scan.ArchiveMember, error) {
	zr, err := sevenzip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	var ms []scan.ArchiveMember
	for _, f := range zr.File {
		if !f.Mode().IsRegular() {
			continue
		}
		ms = append(ms, scan.ArchiveMember{Name: f.Name, Open: func() (io.ReadCloser, error) { return f.Open() }})
	}
	return ms, nil
}
