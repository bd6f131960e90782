package identity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// Argon2Params is the cost of an Argon2id password hash. Each hash records
// its own parameters (PHC string format), so changing the defaults affects
// new passwords only.
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 follows RFC 9106 §4's second recommended option (t=3,
// 64 MiB) with 2 lanes for small servers: on the order of 0.1 s per hash on
// an idle modern core. The salt is 16 random bytes and the hash 32 bytes.
// Service bounds how many hashes run at once (Config.MaxConcurrentHashes),
// so a flood of sign-ins cannot take more than that many times 64 MiB.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

const (
	saltLen = 16
	hashLen = 32
	// MinPasswordLength is the shortest password accepted.
	MinPasswordLength = 12
	// MaxPasswordLength bounds the work one request can ask for.
	MaxPasswordLength = 1024
)

func (p Argon2Params) validate() error {
	if p.Time < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.Threads < 1 {
		return fmt.Errorf("identity: argon2 parameters %+v are out of range", p)
	}
	return nil
}

// hashPassword returns the PHC string of password under p with salt.
func hashPassword(password string, salt []byte, p Argon2Params) string {
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("identity: stored password hash is malformed")

// checkPassword reports whether password matches the PHC string phc,
// comparing in constant time.
func checkPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.validate() != nil {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// commonPasswords is a compact list, written by hand for Interlock, of a
// few hundred of the most common passwords and base words found in public
// breach-frequency lists (not a download of any such list). A password is
// refused when it, or its core once leading/trailing digits and symbols
// are stripped, or the unit it repeats, is on the list; see
// [checkPasswordPolicy].
//
//go:embed common_passwords.txt
var commonPasswordsText []byte

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(commonPasswordsText))
	for sc.Scan() {
		w := strings.TrimSpace(sc.Text())
		if w != "" && !strings.HasPrefix(w, "#") {
			m[strings.ToLower(w)] = true
		}
	}
	return m
}()

// checkPasswordPolicy refuses passwords that are short or easy to guess.
func checkPasswordPolicy(password, username string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength {
		return usererr.New(usererr.Invalid, "password_too_short",
			"The password must be at least %d characters long; a few unrelated words make a good one.", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return usererr.New(usererr.Invalid, "password_too_long", "The password must be at most %d bytes long.", MaxPasswordLength)
	}
	common := usererr.New(usererr.Invalid, "password_common",
		"This password is too common or too predictable; choose another one, for example a few unrelated words.")
	lower := strings.ToLower(password)
	if username != "" && strings.Contains(lower, strings.ToLower(username)) {
		return usererr.New(usererr.Invalid, "password_contains_username", "The password must not contain the username.")
	}
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) <= 3 {
		return common
	}
	if u := repeatedUnit(lower); u != lower && len(u) < 6 {
		return common // "xkcdxkcdxkcd"
	}
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	decoded := leet.Replace(core)
	for _, w := range []string{lower, core, decoded, repeatedUnit(lower), repeatedUnit(core), repeatedUnit(decoded)} {
		if commonPasswords[w] || isSequence(w) {
			return common
		}
	}
	return nil
}

// leet undoes the usual letter-for-symbol swaps ("p@ssw0rd").
var leet = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i")

// repeatedUnit returns the shortest u such that s is u repeated (s itself
// when it is not a repetition).
func repeatedUnit(s string) string {
	for l := 1; l <= len(s)/2; l++ {
		if len(s)%l == 0 && strings.Repeat(s[:l], len(s)/l) == s {
			return s[:l]
		}
	}
	return s
}

// isSequence reports whether s is a run of consecutive characters
// ("123456789012", "abcdefghijkl", "zyxwvu…") of at least 4.
func isSequence(s string) bool {
	if len(s) < 4 {
		return false
	}
	up, down := true, true
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		up = up && (d == 1 || s[i-1] == '9' && s[i] == '0')
		down = down && d == -1
	}
	return up || down
}

// acquireHash waits for a hashing slot (see Config.MaxConcurrentHashes).
func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashSem }
