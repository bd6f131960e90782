package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api"
)

// TestTilePathsThatOverflowOrAliasAreRefused attacks the tile routes with
// indexes whose ·256 wraps around 2^64 (tile 2^56 would then read as tile
// 0), an index whose decimal value overflows uint64, and a non-canonical
// spelling of a small index. Each must be a 4xx with a sentence — never a
// 5xx, and never some other tile's hashes or entries under the wrong path.
func TestTilePathsThatOverflowOrAliasAreRefused(t *testing.T) {
	srv, _, _ := publicLogServer(t, 0, 0)
	wrapped := "x072/x057/x594/x037/x927/936" // 2^56: 2^56·256 = 2^64 ≡ 0
	for _, tt := range []struct{ path, why string }{
		{"tile/0/" + wrapped, "wraps to tile 0"},
		{"tile/0/" + wrapped + ".p/44", "wraps to tile 0"},
		{"tile/1/" + wrapped + ".p/1", "wraps to tile 0 of level 1"},
		{"tile/0/x009/x223/x372/x036/x854/x775/808.p/2", "2^63, wraps"},
		{"tile/0/x018/x446/x744/x073/x709/x551/999", "overflows uint64 to 383"},
		{"tile/0/x018/x446/x744/x073/x709/x552/000", "overflows uint64"},
		{"tile/0/x000/001", "a second spelling of tile/0/001"},
		{"tile/0/x000/x000/000.p/44", "a third spelling of tile/0/000.p/44"},
	} {
		for _, prefix := range []string{api.PublicLogPrefix, "/v1/log/"} {
			path := prefix + tt.path
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			req.Header.Set("Authorization", "DPoP admin-1")
			req.Header.Set("DPoP", "proof")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 4 || !strings.Contains(string(b), "tile") {
				t.Errorf("GET %s (%s): %d %.200q, want a 4xx that names the tile", path, tt.why, resp.StatusCode, b)
			}
		}
		// The entry bundle of the same index, behind a session.
		if strings.HasPrefix(tt.path, "tile/0/") {
			path := "/v1/log/tile/entries/" + strings.TrimPrefix(tt.path, "tile/0/")
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			req.Header.Set("Authorization", "DPoP admin-1")
			req.Header.Set("DPoP", "proof")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 4 {
				t.Errorf("GET %s (%s): %d, %d bytes, want a 4xx: entries must never be served under another tile's path", path, tt.why, resp.StatusCode, len(b))
			}
		}
	}
}
