package wire

// OpProgress is an operation's execution, wave by wave
// (GET /v1/ops/{id}/progress). Long-poll with ?since=VERSION&wait=30s: the
// answer comes when Version is greater than since, the state changes or
// is terminal, or wait runs out (then with the same Version).
type OpProgress struct {
	OpID        string `json:"op_id"`
	State       string `json:"state"`
	Detail      string `json:"detail,omitempty"`
	CurrentWave int    `json:"current_wave"`
	// Terminal is true once the operation will not move without a person
	// (succeeded, halted, needs_attention, aborted, denied, void).
	Terminal bool             `json:"terminal"`
	Version  int64            `json:"version"`
	Waves    []OpWaveProgress `json:"waves"`
}

// OpWaveProgress is one wave; wave 1 is the canary.
type OpWaveProgress struct {
	Number int              `json:"number"`
	Hosts  []OpHostProgress `json:"hosts"`
}

// OpHostProgress is one host's step; Health and Rollback are set once
// those phases ran on it. States: pending, dispatched, succeeded, failed,
// unknown, skipped.
type OpHostProgress struct {
	HostID   string `json:"host_id"`
	State    string `json:"state"`
	ExitCode int    `json:"exit_code"` // -1 when there is none
	Output   string `json:"output,omitempty"`
	Error    string `json:"error,omitempty"`
	Health   string `json:"health,omitempty"`
	Rollback string `json:"rollback,omitempty"`
}

// OpHaltRequest is POST /v1/ops/{id}/halt (the kill switch).
type OpHaltRequest struct {
	Reason string `json:"reason"`
}

// OpAbortRequest is POST /v1/ops/{id}/abort.
type OpAbortRequest struct {
	Reason string `json:"reason"`
}

// OpMarkRequest is POST /v1/ops/{id}/hosts/{host}/mark: a person's finding
// about a step left unknown by a server restart.
type OpMarkRequest struct {
	Phase  string `json:"phase"` // "run" (default), "health" or "rollback"
	State  string `json:"state"` // "succeeded" or "failed"
	Reason string `json:"reason"`
}
