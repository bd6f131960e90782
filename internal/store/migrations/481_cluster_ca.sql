-- The CA every server sharing the database uses: its certificate (PEM)
-- and its private key as the CA files hold it, sealed with the root key.
-- The first server stores its CA here; a server started with an empty
-- data dir takes it from here, so only the root key must be shared.
CREATE TABLE cluster_ca (
    id         INTEGER PRIMARY KEY,
    cert_pem   TEXT NOT NULL,
    sealed_key {{BLOB}} NOT NULL
);
