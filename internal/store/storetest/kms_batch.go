package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/usererr"
)

var _ = Register("kms batches", func(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("a batch round-trips in order with one audit entry per call", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		items := []kms.EncryptItem{
			{Plaintext: []byte("row one"), Context: kms.Context{"row": "1"}},
			{Plaintext: []byte("row two"), Context: kms.Context{"row": "2"}},
			{Plaintext: []byte("row three")},
		}
		enc, err := svc.EncryptBatch(ctx, alice, "app", items)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != 3 {
			t.Fatalf("got %d results for 3 items", len(enc))
		}
		// Each ciphertext is an ordinary one: the single-item call opens it.
		for i, r := range enc {
			if got := mustDecrypt(t, svc, r.Ciphertext, items[i].Context); got != string(items[i].Plaintext) {
				t.Errorf("items[%d] decrypts to %q", i, got)
			}
		}
		dec, err := svc.DecryptBatch(ctx, alice, "app", []kms.DecryptItem{
			{Ciphertext: enc[2].Ciphertext}, {Ciphertext: enc[0].Ciphertext, Context: kms.Context{"row": "1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := []string{string(dec[0].Plaintext.Bytes()), string(dec[1].Plaintext.Bytes())}; !cmp.Equal(got, []string{"row three", "row one"}) {
			t.Errorf("decrypted batch = %q, want [row three, row one] (request order)", got)
		}
		single := mustEncrypt(t, svc, "app", "x", kms.Context{"row": "1"})
		_ = single
		eb := auditRows(t, db, "kms.encrypt_batch")
		db2 := auditRows(t, db, "kms.decrypt_batch")
		one := auditRows(t, db, "kms.encrypt")
		if len(eb) != 1 || len(db2) != 1 {
			t.Fatalf("audit: %d encrypt_batch and %d decrypt_batch entries, want 1 each", len(eb), len(db2))
		}
		e := eb[0]
		hmacs, _ := e.Data["context_hmacs"].([]any)
		if e.Actor != "person:p-alice" || e.Subject != "key:app" || e.Data["items"] != float64(3) ||
			e.Data["bytes"] != float64(len("row onerow tworow three")) || len(hmacs) != 3 {
			t.Errorf("encrypt_batch entry = %+v", e)
		} else {
			if hmacs[0] != one[len(one)-1].Data["context_hmac"] {
				t.Error("items[0]'s context HMAC differs from the single call's HMAC of the same context")
			}
			if hmacs[0] == hmacs[1] || hmacs[2] != "" {
				t.Errorf("context HMACs = %v: want distinct for distinct contexts and empty for none", hmacs)
			}
		}
		if vs, _ := db2[0].Data["versions"].([]any); len(vs) != 2 || vs[0] != float64(1) {
			t.Errorf("decrypt_batch versions = %v", db2[0].Data["versions"])
		}
		ki, err := svc.GetKey(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if v := ki.Versions[0]; v.Encryptions != 4 || v.Decryptions != 5 {
			t.Errorf("counters: %d encryptions, %d decryptions; want 4 and 5", v.Encryptions, v.Decryptions)
		}
	})

	t.Run("a batch uses one version and rotates before it would pass the limit", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, func(c *kms.Config) { c.MaxEncryptions = 5 })
		mustKey(t, svc, "app", kms.KeyOptions{})
		batch := func(n int) []kms.EncryptItem {
			out := make([]kms.EncryptItem, n)
			for i := range out {
				out[i] = kms.EncryptItem{Plaintext: []byte("m")}
			}
			return out
		}
		var versions []int
		for _, n := range []int{3, 3, 2} {
			r, err := svc.EncryptBatch(ctx, alice, "app", batch(n))
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range r {
				versions = append(versions, x.Version)
			}
		}
		if diff := cmp.Diff([]int{1, 1, 1, 2, 2, 2, 2, 2}, versions); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
		_, err := svc.EncryptBatch(ctx, alice, "app", batch(6))
		wantUserErr(t, "batch above the key's limit", err, usererr.Invalid, "batch_over_key_limit")
	})

	t.Run("an invalid item refuses the whole batch, names it, and changes nothing", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		mustKey(t, svc, "other", kms.KeyOptions{})
		c := kms.Context{"k": "v"}
		good := mustEncrypt(t, svc, "app", "fine", c).Ciphertext
		foreign := mustEncrypt(t, svc, "other", "fine", c).Ciphertext
		before := countRows(t, db)
		kiBefore, _ := svc.GetKey(ctx, "app")
		many := make([]kms.EncryptItem, kms.MaxBatchItems+1)
		for i := range many {
			many[i].Plaintext = []byte("m")
		}
		for _, tt := range []struct {
			name   string
			call   func() error
			kind   usererr.Kind
			code   string
			naming string
		}{
			{"empty batch", func() error { _, err := svc.EncryptBatch(ctx, alice, "app", nil); return err }, usererr.Invalid, "empty_batch", ""},
			{"too many items", func() error { _, err := svc.EncryptBatch(ctx, alice, "app", many); return err }, usererr.TooLarge, "batch_too_large", ""},
			{"empty plaintext", func() error {
				_, err := svc.EncryptBatch(ctx, alice, "app", []kms.EncryptItem{{Plaintext: []byte("a")}, {}})
				return err
			}, usererr.Invalid, "empty_plaintext", "items[1]"},
			{"bad context", func() error {
				_, err := svc.EncryptBatch(ctx, alice, "app", []kms.EncryptItem{{Plaintext: []byte("a"), Context: kms.Context{"": "v"}}})
				return err
			}, usererr.Invalid, "invalid_context", "items[0]"},
			{"unknown key", func() error {
				_, err := svc.EncryptBatch(ctx, alice, "nokey", []kms.EncryptItem{{Plaintext: []byte("a")}})
				return err
			}, usererr.NotFound, "unknown_key", ""},
			{"tampered item", func() error {
				_, err := svc.DecryptBatch(ctx, alice, "app", []kms.DecryptItem{{Ciphertext: good, Context: c}, {Ciphertext: flipB64(good, 3), Context: c}})
				return err
			}, usererr.Invalid, "decrypt_failed", "items[1]"},
			{"wrong context", func() error {
				_, err := svc.DecryptBatch(ctx, alice, "app", []kms.DecryptItem{{Ciphertext: good}})
				return err
			}, usererr.Invalid, "decrypt_failed", "items[0]"},
			{"another key's ciphertext", func() error {
				_, err := svc.DecryptBatch(ctx, alice, "app", []kms.DecryptItem{{Ciphertext: good, Context: c}, {Ciphertext: foreign, Context: c}})
				return err
			}, usererr.Invalid, "key_mismatch", "items[1]"},
			{"garbage", func() error {
				_, err := svc.DecryptBatch(ctx, alice, "app", []kms.DecryptItem{{Ciphertext: "nope"}})
				return err
			}, usererr.Invalid, "invalid_ciphertext", "items[0]"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				wantUserErr(t, tt.name, err, tt.kind, tt.code)
				if ue, _ := usererr.As(err); tt.naming != "" && !strings.HasPrefix(ue.Msg, tt.naming+": ") {
					t.Errorf("message %q does not start with %q", ue.Msg, tt.naming)
				}
			})
		}
		if diff := cmp.Diff(before, countRows(t, db)); diff != "" {
			t.Errorf("refused batches changed the database (-before +after):\n%s", diff)
		}
		kiAfter, _ := svc.GetKey(ctx, "app")
		if diff := cmp.Diff(fmt.Sprint(kiBefore.Versions), fmt.Sprint(kiAfter.Versions)); diff != "" {
			t.Errorf("refused batches moved the usage counters (-before +after):\n%s", diff)
		}
		// The largest batch fits its audit entry (every item's context HMAC).
		full := many[:kms.MaxBatchItems]
		for i := range full {
			full[i].Context = kms.Context{"row": fmt.Sprint(i)}
		}
		enc, err := svc.EncryptBatch(ctx, alice, "app", full)
		if err != nil {
			t.Fatalf("a batch of %d items: %v", len(full), err)
		}
		dis := make([]kms.DecryptItem, len(enc))
		for i, r := range enc {
			dis[i] = kms.DecryptItem{Ciphertext: r.Ciphertext, Context: full[i].Context}
		}
		if _, err := svc.DecryptBatch(ctx, alice, "app", dis); err != nil {
			t.Fatalf("decrypting a batch of %d items: %v", len(dis), err)
		}
	})
})
