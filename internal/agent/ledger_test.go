package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLedgerSurvivesATornWrite: a line left unfinished by a failed write
// (a full disk) must not swallow the next step ID.
func TestLedgerSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ledgerFile), []byte("stp_one\nstp_tw"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.add("stp_three"); err != nil {
		t.Fatal(err)
	}
	l2, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"stp_one", "stp_three"} {
		if !l2.has(id) {
			t.Errorf("after a restart the ledger does not know %s", id)
		}
	}
}
