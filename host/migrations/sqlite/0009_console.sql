-- The operator console: signed-in sessions (only a hash of the cookie's id
-- is kept, with the CSRF token every form of the session carries) and the
-- record of every change made through it.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE console_audit (
    id INTEGER PRIMARY KEY,
    -- `session:<prefix of the session id's hash>`
    who TEXT NOT NULL,
    at BIGINT NOT NULL,
    what TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX console_audit_at ON console_audit (at);
