-- Deliveries are applied concurrently; of two events with the same provider
-- time, the one that arrived later (the higher job id) must be the one that
-- stays, as it would when they ran in arrival order.
ALTER TABLE external_issue_clocks ADD COLUMN arrival BIGINT NOT NULL DEFAULT 0;
