package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/store"
)

var _ = Register("agent cosignatures", func(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	first := store.AgentCosignature{HostID: "h-1", WitnessKey: "interlock-agent/h-1+0102abcd+BAAA", Checkpoint: []byte("interlock/log\n3\nroot=\n"),
		Size: 3, Signature: "— interlock-agent/h-1 AQID\n", CosignedAt: at, ReceivedAt: at.Add(123 * time.Nanosecond)}
	newer := first
	newer.Checkpoint, newer.Size, newer.Signature, newer.CosignedAt = []byte("interlock/log\n9\nroot=\n"), 9, "— interlock-agent/h-1 BAUG\n", at.Add(time.Minute)
	other := first
	other.HostID, other.WitnessKey = "h-2", "interlock-agent/h-2+0102abcd+BAAB"

	if err := db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.AgentCosignature(ctx, "h-1")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AgentCosignature before any = %v, want ErrNotFound", err)
		}
		for _, c := range []store.AgentCosignature{first, other, newer} {
			if err := tx.PutAgentCosignature(ctx, c); err != nil {
				return err
			}
		}
		got, err := tx.AgentCosignature(ctx, "h-1")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(newer, got); diff != "" {
			t.Errorf("the newest cosignature replaces the one before (-want +got):\n%s", diff)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	all, err := db.AgentCosignatures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.AgentCosignature{newer, other}, all); diff != "" {
		t.Errorf("AgentCosignatures: one row per host (-want +got):\n%s", diff)
	}
})
