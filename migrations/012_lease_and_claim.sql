-- Was: mover.foreign_row_count, mover.claim_org and mover.lease_and_claim, a
-- delivery's start in one call (docs/architecture.md, "A job's path"). Their
-- current definitions are in src/db/functions.sql.
SELECT 1;
