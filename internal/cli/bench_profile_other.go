//go:build !unix

package cli

import "context"

// profileOnSignal needs SIGUSR1 and SIGUSR2; elsewhere it profiles nothing.
func profileOnSignal(context.Context, string) (stop func()) { return func() {} }

func signalProfile(int, string, bool) {}
