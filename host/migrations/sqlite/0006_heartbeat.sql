-- One row the host writes every second through its ordinary write path: its
-- readiness is whether that write commits (a full disk, a database that is
-- away, a stuck writer all show within seconds).
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
