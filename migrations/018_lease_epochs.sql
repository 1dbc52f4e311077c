-- The fencing epoch of an org's lease (docs/architecture.md, "Fencing"): a
-- number from one sequence, new each time the lease changes hands, so a later
-- holder always has a higher one. The darklaunch Redis keeps the highest epoch
-- it has seen for each org and refuses a flag write that carries another; the
-- lease token (lease_owner) is what Postgres checks.
CREATE SEQUENCE mover.lease_epochs;
ALTER TABLE mover.org_progress ADD COLUMN lease_epoch BIGINT;
