-- The copy's write answers with what SQL then holds for the org (no read
-- that a write could return: docs/architecture.md, "Round trips per org"): verify compares the plan with
-- these rows instead of reading them back in a round trip of its own. The
-- rows are read inside the same call, after the inserts, exactly as
-- readAllObjects (src/db/org-objects.ts) reads them. replace_org_objects
-- stays for workers of the previous version during an upgrade.
CREATE OR REPLACE FUNCTION mover.replace_and_read_org_objects(
  p_type text, p_org_id text,
  c_id text[], c_authz text[], c_name text[], c_by text[], c_created timestamp[], c_updated timestamp[],
  g_id text[], g_authz text[], g_name text[], g_by text[], g_created timestamp[], g_updated timestamp[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  foreign_rows integer;
BEGIN
  foreign_rows := mover.replace_org_objects(p_type, p_org_id, c_id, c_authz, c_name, c_by, c_created, c_updated, g_id, g_authz, g_name, g_by, g_created, g_updated);
  IF foreign_rows > 0 THEN
    RETURN jsonb_build_object('foreign_rows', foreign_rows);
  END IF;
  RETURN jsonb_build_object('foreign_rows', 0, 'rows', COALESCE((
    SELECT jsonb_agg(jsonb_build_array(t, id, name, authz_id, last_updated_by)) FROM (
      SELECT 'containers' AS t, id, name, authz_id, last_updated_by FROM containers WHERE org_id = p_org_id::bpchar
      UNION ALL SELECT 'groups', id, name, authz_id, last_updated_by FROM "groups" WHERE org_id = p_org_id::bpchar) r), '[]'::jsonb));
END
$$;
