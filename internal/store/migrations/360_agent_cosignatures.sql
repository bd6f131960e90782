-- Agents witness the audit log: each keeps the newest checkpoint it
-- verified and may cosign it (C2SP tlog-cosignature/v1, Ed25519) with its
-- own witness key. The server keeps the newest cosignature per host.
-- checkpoint is the cosigned checkpoint body (the signed note's text);
-- signature is the note signature line ("— name base64\n") that verifies
-- over it with witness_key. cosigned_at is the time inside the
-- cosignature (unix s); received_at when the server stored it (unix ns).
CREATE TABLE agent_cosignatures (
    host_id     TEXT PRIMARY KEY,
    witness_key TEXT NOT NULL,
    checkpoint  {{BLOB}} NOT NULL,
    tree_size   BIGINT NOT NULL,
    signature   TEXT NOT NULL,
    cosigned_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
