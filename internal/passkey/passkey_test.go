package passkey

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakeStore holds passkeys in memory; transactions are not exercised here
// (storetest does that on both databases).
type fakeStore struct{ pks []Passkey }

func (f *fakeStore) InTx(ctx context.Context, fn func(Tx) error) error { return nil }
func (f *fakeStore) Passkeys(ctx context.Context, personID string) ([]Passkey, error) {
	var out []Passkey
	for _, p := range f.pks {
		if p.PersonID == personID {
			out = append(out, p)
		}
	}
	return out, nil
}
func (f *fakeStore) Passkey(ctx context.Context, id string) (Passkey, error) {
	return Passkey{}, ErrNotFound
}

func newTestService(t *testing.T) *Service {
	t.Helper()
	cred, _ := json.Marshal(webauthn.Credential{ID: []byte("cred-1"), PublicKey: []byte{1}})
	s, err := New(Config{Store: &fakeStore{pks: []Passkey{{ID: "Y3JlZC0x", PersonID: "p-ann", Name: "key", Credential: cred}}},
		RPID: "localhost", Origins: func() []string { return []string{"https://localhost:8443"} }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func code(err error) string {
	if ue, ok := usererr.As(err); ok {
		return ue.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// A step-up is bound to the session that began it and to its purpose (the
// plan hash), and works once; these refusals come before the browser's
// answer is even read.
func TestStepUpIsBoundToSessionPurposeAndOnce(t *testing.T) {
	ctx := context.Background()
	ann := wire.Principal{Kind: "person", ID: "p-ann", SessionID: "ses_1"}
	for _, tc := range []struct {
		name    string
		who     wire.Principal
		purpose string
		want    string
	}{
		{"another session of the same person", wire.Principal{Kind: "person", ID: "p-ann", SessionID: "ses_2"}, "approve op op_1 plan aaa", "passkey_ceremony_foreign"},
		{"another person", wire.Principal{Kind: "person", ID: "p-bob", SessionID: "ses_1"}, "approve op op_1 plan aaa", "passkey_ceremony_foreign"},
		{"another plan hash", ann, "approve op op_1 plan bbb", "passkey_purpose_mismatch"},
		{"another operation", ann, "approve op op_2 plan aaa", "passkey_purpose_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t)
			o, err := s.BeginStepUp(ctx, ann, "approve op op_1 plan aaa")
			if err != nil {
				t.Fatal(err)
			}
			var opts struct {
				PublicKey struct{ Challenge string } `json:"publicKey"`
			}
			if err := json.Unmarshal(o.Options, &opts); err != nil || opts.PublicKey.Challenge == "" {
				t.Fatalf("options %s: %v", o.Options, err)
			}
			_, err = s.FinishStepUp(ctx, tc.who, o.Ceremony, tc.purpose, []byte(`{}`))
			if got := code(err); got != tc.want {
				t.Errorf("FinishStepUp = %q, want %q", got, tc.want)
			}
			// Whatever happened, the ceremony is spent.
			if _, err := s.FinishStepUp(ctx, ann, o.Ceremony, "approve op op_1 plan aaa", []byte(`{}`)); code(err) != "passkey_ceremony_unknown" {
				t.Errorf("a second finish = %v, want passkey_ceremony_unknown", err)
			}
		})
	}
}

func TestStepUpChallengeCoversThePurpose(t *testing.T) {
	n := []byte("nonce")
	if string(StepUpChallenge("approve op op_1 plan aaa", n)) == string(StepUpChallenge("approve op op_1 plan aab", n)) {
		t.Fatal("two purposes share a challenge")
	}
}

func TestCeremoniesExpire(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newTestService(t)
	s.now = func() time.Time { return now }
	ann := wire.Principal{Kind: "person", ID: "p-ann", SessionID: "ses_1"}
	o, err := s.BeginStepUp(ctx, ann, "approve op op_1 plan aaa")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(ceremonyTTL + time.Second)
	if _, err := s.FinishStepUp(ctx, ann, o.Ceremony, "approve op op_1 plan aaa", []byte(`{}`)); code(err) != "passkey_ceremony_unknown" {
		t.Errorf("an expired ceremony = %v", err)
	}
}
