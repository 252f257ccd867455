-- The durable queue: verified webhooks waiting to be processed and every
-- outbound call (tracker sync, notification) written in the transaction of the
-- change that causes it. Workers claim rows; a row is never deleted before it
-- is done (done webhooks stay as dedup records for the retention period).
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    -- webhook | group_changed | sync_status | sync_assignee | notify
    kind TEXT NOT NULL,
    integration_id BIGINT REFERENCES integrations(id) ON DELETE CASCADE,
    group_id BIGINT,
    -- Jobs sharing a serial key run one at a time, in id order.
    serial_key TEXT,
    -- Per provider: the delivery's identity; a second delivery with the same key is a duplicate.
    dedup_key TEXT,
    body_sha256 TEXT,
    event_time BIGINT,
    payload TEXT NOT NULL,
    body BLOB,
    -- pending | running | done | dead
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    last_failed_at BIGINT,
    note TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX jobs_dedup ON jobs (kind, integration_id, dedup_key);
CREATE INDEX jobs_ready ON jobs (state, run_after);
CREATE INDEX jobs_serial ON jobs (serial_key, id);
CREATE INDEX jobs_integration ON jobs (integration_id, state);
CREATE INDEX jobs_group ON jobs (group_id);

-- The provider's event time of the last status / assignee change applied per
-- external issue: an older event arriving later is recorded and ignored.
CREATE TABLE external_issue_clocks (
    integration_id BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    external_issue TEXT NOT NULL,
    change TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    PRIMARY KEY (integration_id, external_issue, change)
);
