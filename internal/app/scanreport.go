package app

import (
	"context"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
)

// scanRecorder records `interlock scan --report` as audit entries: one
// "scan.finding" per finding and one "scan.reported" summary, all in one
// transaction, so a report is recorded whole or not at all. The findings
// arrive redacted (api checks the fingerprint is a hash); nothing here
// can hold a secret.
type scanRecorder struct {
	db  *store.DB
	now func() time.Time
}

func (r scanRecorder) RecordScan(ctx context.Context, p wire.Principal, rep wire.ScanReport) (int, error) {
	now := r.now()
	actor := p.Actor()
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		counts := map[string]int{} // by severity; inside: a retried tx starts over
		for _, f := range rep.Findings {
			counts[f.Severity]++
			data := map[string]any{
				"kind": f.Kind, "rule": f.RuleID, "severity": f.Severity, "file": f.File, "line": f.Line,
				"fingerprint": f.Fingerprint, "match": f.Match, "target": rep.Target,
			}
			if f.Commit != "" {
				data["commit"] = f.Commit
			}
			if err := audit.Append(ctx, tx, audit.Entry{Kind: "scan.finding", Version: 1, Actor: actor,
				Subject: "finding:" + f.Fingerprint, Time: now, Data: data}); err != nil {
				return err
			}
		}
		s := rep.Summary
		return audit.Append(ctx, tx, audit.Entry{Kind: "scan.reported", Version: 1, Actor: actor,
			Subject: "scan:" + rep.Target, Time: now, Data: map[string]any{
				"target": rep.Target, "findings": len(rep.Findings), "by_severity": counts,
				"files": s.Files, "bytes": s.Bytes, "skipped": s.Skipped, "suppressed": s.Suppressed,
				"total": s.Total, "part": max(s.Part, 1), "parts": max(s.Parts, 1),
			}})
	})
	if err != nil {
		return 0, err
	}
	return len(rep.Findings), nil
}
