-- The log's witnesses (internal/logwitness): per witness, by its
-- cosignature verifier key, the size of the latest checkpoint it
-- cosigned, so that after a restart the log sends the right consistency
-- proof at once. The cosignatures themselves are in audit_cosignatures.
CREATE TABLE log_witness_state (
	vkey TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	size BIGINT NOT NULL,
	updated_unix_nano BIGINT NOT NULL
);
