package usererr

import (
	"errors"
	"fmt"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	for k, want := range map[Kind]int{Invalid: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404,
		Conflict: 409, TooLarge: 413, RateLimited: 429, Kind(0): 400} {
		if got := k.HTTPStatus(); got != want {
			t.Errorf("Kind(%d).HTTPStatus() = %d, want %d", k, got, want)
		}
	}
}

func TestAsFindsWrappedUserError(t *testing.T) {
	cause := errors.New("disk full")
	err := fmt.Errorf("save: %w", Wrap(cause, Conflict, "busy", "try again in %d s", 5))
	ue, ok := As(err)
	if !ok || ue.Code != "busy" || ue.Msg != "try again in 5 s" || !errors.Is(err, cause) {
		t.Fatalf("As(%v) = %+v, %v", err, ue, ok)
	}
}
