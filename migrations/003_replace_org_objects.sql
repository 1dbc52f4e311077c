-- An org's containers and groups replaced in one call: the rows an earlier
-- delivery of the org left (mover's, marked rows_in_sql) are deleted, then the
-- new ones inserted. Two statements, one after the other, in a function: a
-- single statement with the DELETE and the INSERT as sibling CTEs shares one
-- snapshot, so its INSERT collided with the very rows it was deleting
-- (duplicate key on containers_pkey / groups_pkey) whenever a delivery ran
-- again after its copy. One round trip still, and atomic: the call is one
-- statement. Rows mover did not write are never touched: their count comes
-- back and nothing is written.
CREATE OR REPLACE FUNCTION mover.replace_org_objects(
  p_type text, p_org_id text,
  c_id text[], c_authz text[], c_name text[], c_by text[], c_created timestamp[], c_updated timestamp[],
  g_id text[], g_authz text[], g_name text[], g_by text[], g_created timestamp[], g_updated timestamp[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  owned boolean;
  foreign_rows integer;
BEGIN
  SELECT COALESCE((SELECT rows_in_sql FROM mover.org_progress WHERE migration_type = p_type AND org_id = p_org_id), false) INTO owned;
  IF owned THEN
    DELETE FROM containers WHERE org_id = p_org_id::bpchar;
    DELETE FROM "groups" WHERE org_id = p_org_id::bpchar;
  ELSE
    SELECT (SELECT count(*) FROM containers WHERE org_id = p_org_id::bpchar) + (SELECT count(*) FROM "groups" WHERE org_id = p_org_id::bpchar) INTO foreign_rows;
    IF foreign_rows > 0 THEN
      RETURN foreign_rows;
    END IF;
  END IF;
  INSERT INTO containers (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
    SELECT i, p_org_id, a, n, u, c, m FROM unnest(c_id, c_authz, c_name, c_by, c_created, c_updated) AS t(i, a, n, u, c, m);
  INSERT INTO "groups" (id, org_id, authz_id, name, last_updated_by, created_at, updated_at)
    SELECT i, p_org_id, a, n, u, c, m FROM unnest(g_id, g_authz, g_name, g_by, g_created, g_updated) AS t(i, a, n, u, c, m);
  UPDATE mover.org_progress SET rows_in_sql = true WHERE migration_type = p_type AND org_id = p_org_id;
  RETURN 0;
END
$$;
