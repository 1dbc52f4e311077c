-- Was: mover.replace_org_objects, an org's containers and groups replaced in
-- one call. Every SQL function's current definition is in src/db/functions.sql,
-- applied on every migrate; numbered migrations hold only tables, indexes,
-- triggers and data moves.
SELECT 1;
