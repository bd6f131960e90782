package witness

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// stateDir keeps, per log origin, the latest checkpoint this witness
// cosigned, as the signed note it received (log signatures only), in
// DIR/logs/<url-escaped origin>. A file is replaced by writing a
// temporary file, fsyncing it, renaming it over the old one and fsyncing
// the directory, so a crash leaves the old or the new state, never a
// torn one, and an answer is sent only once the new state is on disk.
type stateDir struct {
	dir string
}

func openStateDir(dir string) (*stateDir, error) {
	if dir == "" {
		return nil, errors.New("witness: a state directory is required (--state)")
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return nil, fmt.Errorf("witness: create state directory: %w", err)
	}
	return &stateDir{dir: logs}, nil
}

// path names origin's state file. Origins come from the configured log
// keys, but a leading dot is escaped all the same, so that "." and ".."
// cannot name a directory and no state file is hidden or taken for a
// temporary file.
func (s *stateDir) path(origin string) string {
	name := url.PathEscape(origin)
	if strings.HasPrefix(name, ".") {
		name = "%2E" + name[1:]
	}
	return filepath.Join(s.dir, name)
}

// load returns the latest cosigned checkpoint of origin, nil if none. The
// stored note is verified again with the log's keys, so a state file
// edited by hand cannot make the witness cosign a fork.
func (s *stateDir) load(origin string, keys []note.Verifier) (*tlog.Checkpoint, error) {
	b, err := os.ReadFile(s.path(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: read state of %q: %w", origin, err)
	}
	n, err := note.Open(b, note.VerifierList(keys...))
	if err != nil {
		return nil, fmt.Errorf("witness: the stored checkpoint of %q (%s) does not verify with the log's keys: %v", origin, s.path(origin), err)
	}
	cp, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil || cp.Origin != origin {
		return nil, fmt.Errorf("witness: the stored checkpoint of %q (%s) is damaged: %v", origin, s.path(origin), err)
	}
	return &cp, nil
}

// store durably replaces origin's state with signed.
func (s *stateDir) store(origin string, signed []byte) error {
	if err := writeFileAtomic(s.path(origin), signed, 0o600); err != nil {
		return fmt.Errorf("witness: store state of %q: %w", origin, err)
	}
	return nil
}

// writeFileAtomic writes data to path so that after a crash path holds
// either its old content or data, and returns only once data is durable.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
