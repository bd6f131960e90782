-- A counter bumped in the same transaction as every change to a host's
-- agent identity: a revocation or a certificate pinned (enrollment or
-- renewal). Servers cache hosts' revocations and pins in memory and read
-- this one row (at most once a second) to know when to forget them, so
-- that an agent request costs no database read (internal/agenthub
-- identity.go), while a change made on any server sharing the database
-- reaches all of them within a second.
CREATE TABLE ops_identity_generation (
	id INTEGER PRIMARY KEY,
	generation BIGINT NOT NULL
);
INSERT INTO ops_identity_generation (id, generation) VALUES (1, 0);
