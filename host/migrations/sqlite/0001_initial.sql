-- The domain of the foundation issue: organizations, projects, users, teams,
-- issue groups with status and assignee, integrations and their links.
-- Portable SQL: PostgreSQL gets a sibling migration with its own id types.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, slug)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    is_active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE user_emails (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    email TEXT NOT NULL,
    is_verified BIGINT NOT NULL,
    UNIQUE (user_id, email)
);
CREATE INDEX user_emails_by_lower_email ON user_emails (lower(email));

CREATE TABLE organization_members (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    UNIQUE (organization_id, user_id)
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    UNIQUE (organization_id, slug)
);

CREATE TABLE project_teams (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    team_id BIGINT NOT NULL REFERENCES teams(id),
    PRIMARY KEY (project_id, team_id)
);

CREATE TABLE organization_member_teams (
    team_id BIGINT NOT NULL REFERENCES teams(id),
    organization_member_id BIGINT NOT NULL REFERENCES organization_members(id),
    is_active BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (team_id, organization_member_id)
);

CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    substatus TEXT,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX groups_by_project ON groups (project_id);

-- At most one assignee per group: a user or a team, never both.
CREATE TABLE group_assignees (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL UNIQUE REFERENCES groups(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    user_id BIGINT REFERENCES users(id),
    team_id BIGINT REFERENCES teams(id),
    date_added BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);

CREATE TABLE group_subscriptions (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    user_id BIGINT REFERENCES users(id),
    team_id BIGINT REFERENCES teams(id),
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX group_subscriptions_user ON group_subscriptions (group_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX group_subscriptions_team ON group_subscriptions (group_id, team_id) WHERE team_id IS NOT NULL;

CREATE TABLE integrations (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    secrets TEXT NOT NULL,
    -- JSON list of the authorities (host[:port]) the integration's plugin calls may reach.
    allowed_hosts TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    UNIQUE (provider, external_id)
);

CREATE TABLE organization_integrations (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active',
    -- Set when the integration's service refused us for good (401/403/404):
    -- nothing more is sent until an operator installs it again.
    broken_reason TEXT,
    UNIQUE (organization_id, integration_id)
);

-- Outbound status mapping per external project (Sentry's IntegrationExternalProject).
CREATE TABLE integration_external_projects (
    id INTEGER PRIMARY KEY,
    organization_integration_id BIGINT NOT NULL REFERENCES organization_integrations(id),
    external_id TEXT NOT NULL,
    resolved_status TEXT NOT NULL,
    unresolved_status TEXT NOT NULL,
    UNIQUE (organization_integration_id, external_id)
);

CREATE TABLE external_issues (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    key TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (organization_id, integration_id, key)
);
CREATE INDEX external_issues_by_key ON external_issues (integration_id, key);

CREATE TABLE group_links (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    linked_type BIGINT NOT NULL,
    linked_id BIGINT NOT NULL,
    UNIQUE (group_id, linked_type, linked_id)
);
CREATE INDEX group_links_by_linked ON group_links (linked_id);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    group_id BIGINT NOT NULL REFERENCES groups(id),
    type TEXT NOT NULL,
    user_id BIGINT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX activities_by_group ON activities (group_id);

CREATE TABLE group_history (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    group_id BIGINT NOT NULL REFERENCES groups(id),
    status TEXT NOT NULL,
    user_id BIGINT,
    team_id BIGINT,
    prev_history_id BIGINT,
    prev_history_date BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX group_history_by_group ON group_history (group_id);

-- Per-second sequence counters of snowflake ids, shared by every host process
-- using this database (Sentry keeps them in Redis). Rows older than the
-- 300-second borrowing window are deleted as new seconds start.
CREATE TABLE snowflake_counters (
    ts BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- The message a notifier posted about a group, so later events edit it.
CREATE TABLE notification_messages (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    message_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (group_id, integration_id)
);
