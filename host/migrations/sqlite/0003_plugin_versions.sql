-- Every plugin module ever installed, kept whole so that any host process
-- sharing this database can load it and any version can be rolled back to.
CREATE TABLE plugin_versions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    -- provider-plugin | notifier-plugin
    world TEXT NOT NULL,
    contract TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    module BLOB NOT NULL,
    installed_by TEXT NOT NULL,
    installed_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX plugin_versions_module ON plugin_versions (name, sha256);

-- Every switch of a plugin from one version to another, and why.
CREATE TABLE plugin_switches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    from_version_id BIGINT REFERENCES plugin_versions(id),
    to_version_id BIGINT NOT NULL REFERENCES plugin_versions(id),
    -- install | rollback | auto_rollback
    kind TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX plugin_switches_name ON plugin_switches (name, id);

-- The version each plugin serves with. `switch_id` names the switch that made
-- it so: a host process that has applied another one has a switch to catch up on.
CREATE TABLE plugin_active (
    name TEXT PRIMARY KEY,
    version_id BIGINT NOT NULL REFERENCES plugin_versions(id),
    switch_id BIGINT NOT NULL REFERENCES plugin_switches(id)
);

-- Which plugin version verified a stored webhook, and which one ran the job.
ALTER TABLE jobs ADD COLUMN verified_by TEXT;
ALTER TABLE jobs ADD COLUMN handled_by TEXT;
