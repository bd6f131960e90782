-- The tamper-evident log (internal/audit). An entry row is inserted by
-- audit.Append in the caller's transaction (pending: idx IS NULL) and
-- later integrated by the sequencer, which sets idx, actor_seq and
-- actor_prev. The canonical leaf is rebuilt from these columns.
CREATE TABLE audit_entries (
	id {{AUTOID}},
	idx BIGINT,
	kind TEXT NOT NULL,
	version INTEGER NOT NULL,
	actor TEXT NOT NULL,
	subject TEXT NOT NULL,
	at_unix_nano BIGINT NOT NULL,
	idem_key TEXT,
	data {{BLOB}} NOT NULL,
	commitments {{BLOB}} NOT NULL,
	-- personal {name: value} and salts {name: salt} open the commitments
	-- (JSON objects), NULL once redacted (or when there are none).
	personal {{BLOB}},
	salts {{BLOB}},
	actor_seq BIGINT,
	actor_prev {{BLOB}}
);
CREATE UNIQUE INDEX audit_entries_by_idx ON audit_entries (idx) WHERE idx IS NOT NULL;
CREATE UNIQUE INDEX audit_entries_by_idem ON audit_entries (idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX audit_entries_pending ON audit_entries (id) WHERE idx IS NULL;

-- The tail of each actor's chain.
CREATE TABLE audit_actors (
	actor TEXT PRIMARY KEY,
	seq BIGINT NOT NULL,
	last_hash {{BLOB}} NOT NULL
);

-- C2SP tlog-tiles hash tiles (height 8), each stored at its latest width.
CREATE TABLE audit_tiles (
	level INTEGER NOT NULL,
	idx BIGINT NOT NULL,
	hashes {{BLOB}} NOT NULL,
	PRIMARY KEY (level, idx)
);

-- The integrated tree: size, root and compact-range frontier. One row.
CREATE TABLE audit_tree (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL,
	root {{BLOB}} NOT NULL,
	frontier {{BLOB}} NOT NULL
);

-- Every signed checkpoint published, in order.
CREATE TABLE audit_checkpoints (
	id {{AUTOID}},
	size BIGINT NOT NULL,
	root {{BLOB}} NOT NULL,
	at_unix_nano BIGINT NOT NULL,
	note {{BLOB}} NOT NULL
);

-- Witness cosignature lines (C2SP tlog-cosignature) per checkpoint.
CREATE TABLE audit_cosignatures (
	checkpoint_id BIGINT NOT NULL,
	witness TEXT NOT NULL,
	line TEXT NOT NULL,
	PRIMARY KEY (checkpoint_id, witness)
);

-- The log's Ed25519 signing key, sealed by the KMS root key. One row.
CREATE TABLE audit_log_key (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	sealed {{BLOB}} NOT NULL,
	vkey TEXT NOT NULL
);
