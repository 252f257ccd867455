-- Every attempt at a job (a stored webhook or an outbound call), written
-- by the worker in the statement or transaction that records the attempt's
-- result, so the history costs no commit of its own. The error is the text
-- the job's last_error gets (never a secret). A job's attempts go with it
-- (pruned, or its integration or project deleted).
CREATE TABLE job_attempts (
    id INTEGER PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    -- the job's kind: webhook | sync_status | sync_assignee | notify | ...
    kind TEXT NOT NULL,
    -- the job's attempt count when it ran (restarts at 1 after a replay;
    -- a deferred attempt is given back, and the next one has its number)
    attempt BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    -- done | retry | deferred | dead
    outcome TEXT NOT NULL,
    error TEXT,
    next_retry_at BIGINT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, id);
