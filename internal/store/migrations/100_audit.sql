-- Audit entries: one row per Append, in commit order of id.
CREATE TABLE audit_entries (
	id {{AUTOID}},
	kind TEXT NOT NULL,
	version INTEGER NOT NULL,
	actor TEXT NOT NULL,
	subject TEXT NOT NULL,
	at_unix_nano BIGINT NOT NULL,
	data {{BLOB}} NOT NULL,
	personal {{BLOB}} NOT NULL
);
