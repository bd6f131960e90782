package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/config"
)

// The readiness check fails, with a sentence that names no driver detail,
// once the database stops answering.
func TestUnreadyWhenTheDatabaseDoesNotAnswer(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, config.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "data")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if why := a.unready(ctx); why != "" {
		t.Fatalf("a fresh server is unready: %s", why)
	}
	_ = a.db.Close()
	if why := a.unready(ctx); !strings.Contains(why, "the database does not answer") || strings.Contains(why, "sql") {
		t.Fatalf("with the database closed: %q", why)
	}
}
