package tlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func FuzzParseVerifyLeafAgreesWithMarshal(f *testing.F) {
	for _, s := range []string{"plain", `q"uote`, "<&>", "a\\b", "{\"}"} {
		f.Add(s, s, uint64(3), `{"a":"`+s+`"}`)
	}
	f.Fuzz(func(t *testing.T, actor, prev string, seq uint64, data string) {
		if !utf8.ValidString(actor) || !utf8.ValidString(prev) {
			return // audit.NewRecord rejects these
		}
		d, err := json.Marshal(map[string]string{"x": data})
		if err != nil {
			return
		}
		l := LeafV1{Format: LeafFormatV1, Kind: "k", Version: 1, Actor: actor, ActorSeq: seq, ActorPrev: prev, Subject: "s", TimeUnixNano: 1, Data: d, Personal: []byte("{}")}
		b, _ := l.Marshal()
		got, err := parseVerifyLeaf(b)
		if err != nil {
			t.Fatalf("parse %s: %v", b, err)
		}
		if got.Actor != l.Actor || got.ActorPrev != l.ActorPrev || got.ActorSeq != seq || !bytes.Equal(got.Data, d) {
			t.Errorf("parse %s = %+v", b, got)
		}
		std, err := json.Marshal(l)
		if err != nil || !bytes.Equal(std, b) {
			t.Errorf("Marshal = %s, encoding/json = %s", b, std)
		}
	})
}
