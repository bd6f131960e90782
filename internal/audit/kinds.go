package audit

import "time"

// KindSpec documents one version of one entry kind: what it records and
// an example, from which a golden file pins its canonical leaf
// (testdata/entries/<kind>.v<version>.json; regenerate with
// `go test ./internal/audit -run Golden -update`).
//
// Kind history lives here, newest last per kind. A change to a kind's
// Data layout MUST add a new version (and golden file), never edit one.
type KindSpec struct {
	Kind    string
	Version int
	Doc     string
	Example Entry
}

var exampleTime = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// Kinds lists the kinds this package writes itself, and example entries
// for the shapes every kind shares. Other packages' kinds are pinned by
// their own tests.
var Kinds = []KindSpec{
	{
		Kind: KindRedacted, Version: 1,
		Doc: "1: 2026-11-29: personal data of entry Data.index erased; Data.fields names the erased fields; Personal.reason says why.",
		Example: Entry{Kind: KindRedacted, Version: 1, Actor: "person:p-admin", Subject: "log:17", Time: exampleTime,
			Data: map[string]any{"index": 17, "fields": []any{"ip", "name"}}, Personal: map[string]string{"reason": "erasure request 42"}},
	},
	{
		Kind: "example.event", Version: 1,
		Doc: "1: 2026-11-29: the common shape: public Data, erasable Personal, an idempotency key.",
		Example: Entry{Kind: "example.event", Version: 1, Actor: "agent:web-3", Subject: "op:42", Time: exampleTime,
			Data: map[string]any{"hosts": []any{"web-3"}, "wave": 1, "note": "<html> & \"quotes\""}, Personal: map[string]string{"ip": "192.0.2.1"},
			IdempotencyKey: "op:42:wave:1"},
	},
}
