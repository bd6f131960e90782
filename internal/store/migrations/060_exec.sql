-- Wave executor (internal/ops/exec): one row per (operation, host, phase).
-- The row is written in state 'dispatched' and committed BEFORE the step is
-- sent to the agent; the primary key refuses a second dispatch of the same
-- host and phase for one operation, also across a crash (invariant 4).
CREATE TABLE exec_steps (
	op_id TEXT NOT NULL,
	host_id TEXT NOT NULL,
	phase TEXT NOT NULL,
	wave INTEGER NOT NULL,
	step_id TEXT NOT NULL,
	state TEXT NOT NULL,
	exit_code INTEGER NOT NULL,
	output TEXT NOT NULL,
	err_text TEXT NOT NULL,
	dispatched_at BIGINT NOT NULL,
	finished_at BIGINT NOT NULL,
	PRIMARY KEY (op_id, host_id, phase)
);
CREATE UNIQUE INDEX exec_steps_step_id ON exec_steps (step_id);
-- A change counter per operation, bumped in the same transaction as every
-- step change, so that watchers can long-poll for "anything newer than N".
CREATE TABLE exec_versions (
	op_id TEXT PRIMARY KEY,
	version BIGINT NOT NULL
);
