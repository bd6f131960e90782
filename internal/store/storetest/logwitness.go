package storetest

import (
	"context"
	"testing"
	"time"
)

var _ = Register("logwitness", func(t *testing.T, open Opener) {
	t.Run("witness size is remembered and replaced", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		const vkey = "w.test/1+01020304+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if _, ok, err := db.LogWitnessSize(ctx, vkey); err != nil || ok {
			t.Fatalf("unknown witness: ok=%v err=%v", ok, err)
		}
		for _, size := range []uint64{7, 1 << 40, 3} {
			if err := db.PutLogWitnessSize(ctx, vkey, "https://w.test", size, time.Now()); err != nil {
				t.Fatal(err)
			}
			got, ok, err := db.LogWitnessSize(ctx, vkey)
			if err != nil || !ok || got != size {
				t.Fatalf("after storing %d: got %d ok=%v err=%v", size, got, ok, err)
			}
		}
		if _, ok, _ := db.LogWitnessSize(ctx, vkey+"x"); ok {
			t.Fatal("another key shares the state")
		}
	})
})
