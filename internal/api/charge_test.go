package api

import (
	"context"
	"errors"
	"testing"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestOnlyClientFailuresSpendThePublicAllowance: an unknown join token or
// a bad request spends the address's allowance; the server's own failure
// (a 5xx, a request it was too busy to finish) does not, or a fleet
// enrolling through one busy server would lock its address out.
func TestOnlyClientFailuresSpendThePublicAllowance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		want   bool
	}{
		{"success", nil, 200, false},
		{"unknown token written by the hub", nil, 401, true},
		{"bad request written by the hub", nil, 400, true},
		{"server failure written by the hub", nil, 500, false},
		{"unavailable", nil, 503, false},
		{"unknown token returned", usererr.New(usererr.Unauthenticated, "bad_join_token", "x"), 0, true},
		{"bad request returned", usererr.New(usererr.Invalid, "bad", "x"), 0, true},
		{"internal error returned", errors.New("database is locked"), 0, false},
		{"client gave up", context.Canceled, 0, false},
	} {
		if got := clientFailure(tc.err, tc.status); got != tc.want {
			t.Errorf("%s: charged %v, want %v", tc.name, got, tc.want)
		}
	}
}
