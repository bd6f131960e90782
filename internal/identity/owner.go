package identity

import (
	"context"
	"crypto/subtle"
)

// SessionOwner names the person and device of a session token presented
// with a proof by the device's own key (thumbprint jkt), whatever the
// state of the session or person. Misuse detection uses it to notice a
// disabled person's device key still in use; a token presented without
// its key names nobody.
func (s *Service) SessionOwner(ctx context.Context, token, jkt string) (personID, deviceID string, ok bool) {
	if len(token) > 128 || jkt == "" {
		return "", "", false
	}
	v, err := s.store.LoginSessionByTokenHash(ctx, hashToken(token))
	if err != nil || subtle.ConstantTimeCompare([]byte(jkt), []byte(v.Device.JKT)) != 1 {
		return "", "", false
	}
	return v.Person.ID, v.Device.ID, true
}
