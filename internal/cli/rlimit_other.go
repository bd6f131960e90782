//go:build !unix

package cli

// raiseOpenFiles has nothing to raise here (see rlimit_unix.go).
func raiseOpenFiles(want uint64) (uint64, string) { return want, "" }
