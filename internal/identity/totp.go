package identity

import (
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP follows RFC 6238 with what every authenticator app supports: SHA-1,
// 6 digits, 30-second steps, a 160-bit seed. A code is accepted for the
// step before, at and after the server's (±30 s of clock drift), and only
// once: the person's last accepted step is stored and a code for that step
// or an earlier one is refused.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// newTOTP makes a seed and its otpauth URI for username.
func (s *Service) newTOTP(username string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.issuer, AccountName: username, Period: totpPeriod, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.rand,
	})
	if err != nil {
		return "", "", fmt.Errorf("identity: generate totp seed: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// totpStep returns the time step whose code is code, within the skew of
// now, or false. It compares in constant time and tries every candidate.
func totpStep(secret, code string, now time.Time) (int64, bool, error) {
	if len(code) != 6 {
		return 0, false, nil
	}
	cur := now.Unix() / totpPeriod
	var found int64
	ok := false
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false, fmt.Errorf("identity: totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = step, true
		}
	}
	return found, ok, nil
}

// TOTPCode returns the code for secret at t. The CLI's tests and the
// end-to-end test use it to act as an authenticator app.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts)
}
