package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/logwitness"
)

// splitWitnesses separates the --log-witness values: a bare verifier key
// names a witness that submits its own cosignatures (`interlock log
// witness`); URL+VKEY names one the log pushes its checkpoints to. The
// log accepts cosignatures from both, so it gets every key.
func splitWitnesses(values []string) (vkeys []string, push []logwitness.Endpoint, err error) {
	for _, v := range values {
		if !logwitness.IsEndpoint(v) {
			vkeys = append(vkeys, strings.TrimSpace(v))
			continue
		}
		e, err := logwitness.ParseEndpoint(v)
		if err != nil {
			return nil, nil, fmt.Errorf("log witness: %w", err)
		}
		vkeys = append(vkeys, e.VKey)
		push = append(push, e)
	}
	return vkeys, push, nil
}

// newFeeder returns the witness feeder, nil when no witness has a URL.
func (a *App) newFeeder(cfg config.Config, push []logwitness.Endpoint) (*logwitness.Feeder, error) {
	if len(push) == 0 {
		return nil, nil
	}
	client, err := logwitness.HTTPClient(cfg.LogWitnessCAFiles, 0)
	if err != nil {
		return nil, err
	}
	return logwitness.New(logwitness.Config{Log: a.Audit, Store: a.db, Endpoints: push, Client: client,
		RoundTimeout: cfg.LogWitnessTimeout, Now: a.now, Logger: a.log})
}

// witnessedLog serves the log's routes with the feeder's choice of
// checkpoint (the newest one whose witness round finished).
type witnessedLog struct {
	*audit.Log
	feeder *logwitness.Feeder
}

func (w witnessedLog) Checkpoint(ctx context.Context) (audit.SignedCheckpoint, error) {
	return w.feeder.Checkpoint(ctx)
}

// logReader is what the log routes read: the audit log, seen through the
// feeder when the log has witnesses it pushes to.
func (a *App) logReader() interface {
	api.LogReader
	api.PublicLogReader
} {
	if a.feeder == nil {
		return a.Audit
	}
	return witnessedLog{Log: a.Audit, feeder: a.feeder}
}
