package app

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/audit"
)

// SignerStateFile is the file in the data dir where the log's signer
// remembers the last checkpoint it signed (audit.FileMemory). Back it up
// with the root key, not with the database: it is what tells a restored
// database from the current one.
const SignerStateFile = "log-signer.checkpoint"

// whileHalted marks routes that answer while the log refuses to sign:
// with no patterns, all of them; otherwise those named.
func whileHalted(rs []api.Route, patterns ...string) []api.Route {
	for i := range rs {
		if len(patterns) == 0 || slices.Contains(patterns, rs[i].Pattern) {
			rs[i].WhileHalted = true
		}
	}
	return rs
}

// changeRoutesWhileHalted are the change routes a fork needs while the log
// refuses: the other writes (configuration, invitation codes) still wait.
var changeRoutesWhileHalted = []string{"GET /v1/changes", "GET /v1/changes/{id}", "POST /v1/changes/{id}/approvals",
	"POST /v1/changes/{id}/deny", "POST /v1/changes/{id}/withdraw"}

// signerRefusingGauge is 1 while the log's signer refuses to sign (its
// database does not extend the checkpoint it signed last), else 0.
func signerRefusingGauge(l *audit.Log) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "interlock_log_signer_refusing",
		Help: "1 while the audit log's signer refuses to sign because the database does not extend the checkpoint it signed last (see /readyz for why).",
	}, func() float64 {
		if l.Refusal() != "" {
			return 1
		}
		return 0
	})
}
