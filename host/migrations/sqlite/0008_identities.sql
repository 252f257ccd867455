-- Who a tracker's user is here: an operator-kept mapping from an
-- integration's user id (GitHub's numeric id, say) to a user, per
-- organization, for trackers that do not tell us emails.
CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    integration_id BIGINT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    login TEXT,
    name TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, integration_id, external_id)
);
CREATE INDEX identities_user ON identities (organization_id, user_id);
