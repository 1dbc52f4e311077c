-- Was: mover.replace_and_read_org_objects, the copy's write answering with the
-- org's rows. Its current definition is in src/db/functions.sql.
SELECT 1;
