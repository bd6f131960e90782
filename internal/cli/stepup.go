package cli

import (
	"context"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// proveFreshMFA sends otp to /v1/mfa when one was given, before a command
// the default policy allows only with a second factor proved in the last
// five minutes (approving, and minting credentials: invitations, their
// codes, join tokens). Without one nothing is sent: a recent sign-in is
// fresh enough, and the server's refusal says to add --otp.
func proveFreshMFA(ctx context.Context, c doer, otp string) error {
	if otp == "" {
		return nil
	}
	var mfa wire.MFAResponse
	return c.Do(ctx, "POST", "/v1/mfa", wire.MFARequest{OTP: otp}, &mfa)
}

const otpFlagHelp = "a current one-time code, proving fresh MFA (needed when you signed in more than 5 minutes ago)"
