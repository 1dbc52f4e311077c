-- Chef Server's groups table, exactly as its schema scripts leave it.
-- Created only when the database has no table of that name (a Chef Server
-- database always has one: then it is adopted, never altered).
CREATE TABLE "groups" (
  id              VARCHAR(36) PRIMARY KEY,
  org_id          CHAR(32) NOT NULL,
  authz_id        CHAR(32) NOT NULL UNIQUE,
  name            TEXT NOT NULL,
  CONSTRAINT groups_org_id_name_key UNIQUE (org_id, name),
  last_updated_by CHAR(32) NOT NULL,
  created_at      TIMESTAMP WITHOUT TIME ZONE NOT NULL,
  updated_at      TIMESTAMP WITHOUT TIME ZONE NOT NULL
);
