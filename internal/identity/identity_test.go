package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/usererr"
)

func TestPasswordPolicy(t *testing.T) {
	for _, tt := range []struct {
		name, password, username, want string
	}{
		{"passphrase", "violet-harbour-tractor-41", "admin", ""},
		{"random", "X7#9k2!mP4qZ", "admin", ""},
		{"long digits", "8472-1938-2746", "admin", ""},
		{"eleven characters", "violet-harb", "admin", "password_too_short"},
		{"twelve multibyte characters", "ñandú-ñandú-ñ", "admin", ""},
		{"too long", strings.Repeat("ab3", 400), "admin", "password_too_long"},
		{"common", "qwertyuiop12", "admin", "password_common"},
		{"common with digits", "password1234", "admin", "password_common"},
		{"common with symbols around", "!!sunshine2026!!", "admin", "password_common"},
		{"leet", "P@ssw0rd2024!", "admin", "password_common"},
		{"repeated common word", "monkeymonkey", "admin", "password_common"},
		{"repeated short unit", "xkcdxkcdxkcd", "admin", "password_common"},
		{"few distinct characters", "aaaaaaaaaaab", "admin", "password_common"},
		{"digit sequence", "123456789012", "admin", "password_common"},
		{"letter sequence", "abcdefghijklm", "admin", "password_common"},
		{"contains username", "marguerite-rocks-1", "marguerite", "password_contains_username"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := checkPasswordPolicy(tt.password, tt.username); err != nil {
				ue, ok := usererr.As(err)
				if !ok || ue.Kind != usererr.Invalid {
					t.Fatalf("error %v is not an Invalid usererr", err)
				}
				got = ue.Code
			}
			if got != tt.want {
				t.Errorf("checkPasswordPolicy(%q) = %q, want %q", tt.password, got, tt.want)
			}
		})
	}
	if len(commonPasswords) < 400 {
		t.Errorf("the bundled list has %d entries; it failed to load?", len(commonPasswords))
	}
}

func TestArgon2id(t *testing.T) {
	p := Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}
	salt := []byte("0123456789abcdef")
	h := hashPassword("violet-harbour-tractor-41", salt, p)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string with its parameters", h)
	}
	for _, tt := range []struct {
		name, phc, password string
		want                bool
		wantErr             bool
	}{
		{name: "right", phc: h, password: "violet-harbour-tractor-41", want: true},
		{name: "wrong", phc: h, password: "violet-harbour-tractor-42"},
		{name: "default parameters", phc: hashPassword("x", salt, DefaultArgon2), password: "x", want: true},
		{name: "malformed", phc: "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", password: "x", wantErr: true},
		{name: "zero time", phc: "$argon2id$v=19$m=64,t=0,p=1$AAAA$AAAA", password: "x", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkPassword(tt.phc, tt.password)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("checkPassword = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTOTPStep(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_015, 0) // step 60,000,000, 15 s in
	cur := now.Unix() / 30
	for _, tt := range []struct {
		name   string
		at     time.Time
		want   int64
		wantOK bool
	}{
		{"current step", now, cur, true},
		{"previous step", now.Add(-30 * time.Second), cur - 1, true},
		{"next step", now.Add(30 * time.Second), cur + 1, true},
		{"two steps ago", now.Add(-60 * time.Second), 0, false},
		{"two steps ahead", now.Add(60 * time.Second), 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, err := TOTPCode(secret, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			step, ok, err := totpStep(secret, code, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([2]any{tt.want, tt.wantOK}, [2]any{step, ok}); diff != "" {
				t.Errorf("totpStep (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok, _ := totpStep(secret, "12345", now); ok {
		t.Error("a 5-digit code was accepted")
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret("ilk_sess_topsecret")
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "token", s)
	enr := Enrollment{TOTPSecret: "JBSWY3DPEHPK3PXP", TOTPURI: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"}
	out := fmt.Sprintf("%v %s %+v %#v %v", s, s, enr, enr, []Secret{s}) + logged.String()
	if strings.Contains(out, "topsecret") || strings.Contains(out, "JBSWY3DPEHPK3PXP") {
		t.Errorf("a secret was printed: %s", out)
	}
	if s.Reveal() != "ilk_sess_topsecret" {
		t.Error("Reveal lost the secret")
	}
}

type nopStore struct{ Store } // calls panic: the test below must not reach the store

type nopSealer struct{ Sealer }

func TestHashingIsBounded(t *testing.T) {
	s, err := New(Config{Store: nopStore{}, Sealer: nopSealer{}, MaxConcurrentHashes: 1, Argon2: Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.acquireHash(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.checkPassword(ctx, Person{}, false, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("checkPassword with every slot taken = %v, want to wait until the deadline", err)
	}
	s.releaseHash()
	if _, err := s.checkPassword(context.Background(), Person{}, false, "x"); err != nil {
		t.Errorf("checkPassword with a free slot: %v", err)
	}
}
