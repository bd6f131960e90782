package identity

import (
	"context"
	"crypto/subtle"
)

// SessionOwner names the person and device of a session token presented
// with a proof by the device's own key (thumbprint jkt), whatever the
// state of the session, and says whether the person is disabled. Misuse
// detection uses it to notice a disabled person's device key still in use
// (disabling ends their sessions, so Authenticate answers session_ended);
// a token presented without its key names nobody.
func (s *Service) SessionOwner(ctx context.Context, token, jkt string) (personID, deviceID string, disabled, ok bool) {
	if len(token) > 128 || jkt == "" {
		return "", "", false, false
	}
	v, err := s.store.LoginSessionByTokenHash(ctx, hashToken(token))
	if err != nil || subtle.ConstantTimeCompare([]byte(jkt), []byte(v.Device.JKT)) != 1 {
		return "", "", false, false
	}
	return v.Person.ID, v.Device.ID, v.Person.Status == StatusDisabled, true
}
