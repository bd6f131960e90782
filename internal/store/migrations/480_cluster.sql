-- Several servers on one PostgreSQL (internal/cluster). SQLite has one
-- server, which holds every lease.
--
-- leases: work that must have one owner at a time (the log sequencer and
-- signer, crash recovery, the KMS's periodic work). token is the fencing
-- token: it grows by one each time the lease changes hands (or its holder
-- takes it back after it expired), and writes made under the lease check
-- it in their own transaction. expires_at is unix ms on the database's
-- clock (PostgreSQL) or the only server's (SQLite).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
-- cluster_servers: the servers sharing this database, with the URL agents
-- should use to reach each and when it was last seen alive (unix ms).
CREATE TABLE cluster_servers (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);
-- step_queue: steps sent to an agent connected to another server. The
-- step (which may carry secret values in its environment) is sealed with
-- the root key; it is erased once taken. state: queued → taken → done.
-- outcome (when done): result, not_sent, lost or failed.
CREATE TABLE step_queue (
    step_id    TEXT PRIMARY KEY,
    host_id    TEXT NOT NULL,
    origin     TEXT NOT NULL,
    sealed     {{BLOB}},
    state      TEXT NOT NULL,
    taken_by   TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX step_queue_state_host ON step_queue (state, host_id);
