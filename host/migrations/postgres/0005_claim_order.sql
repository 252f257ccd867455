-- The claim walks pending jobs in id order and stops at the first that is due
-- and free in its line; without this index it sorted every pending job first,
-- at a cost that grew with the backlog.
CREATE INDEX jobs_claim_order ON jobs (state, id);
