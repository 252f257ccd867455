-- A counter every change to `integrations` moves: a process serves
-- integrations from memory and, when it sees the counter moved (it looks at
-- most every half second), forgets them, so a change made by another process
-- reaches it within that bound.
CREATE TABLE integrations_generation (
    id INTEGER PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO integrations_generation (id, value) VALUES (1, 0);
CREATE TRIGGER integrations_inserted AFTER INSERT ON integrations
BEGIN
    UPDATE integrations_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER integrations_updated AFTER UPDATE ON integrations
BEGIN
    UPDATE integrations_generation SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER integrations_deleted AFTER DELETE ON integrations
BEGIN
    UPDATE integrations_generation SET value = value + 1 WHERE id = 1;
END;
