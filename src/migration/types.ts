// The domain's own shapes, which the SQL layer (src/db) stores and reads and
// the domain rules (this folder) work with: an org's containers and groups as
// rows, and one org's survey results. Types only, so src/db may import them
// without depending on the rules (test/layers.test.ts places this file below
// src/db).

/** One container or group as Chef's SQL tables hold it (and as a CouchDB document maps to it, src/migration/plan-objects.ts). */
export interface ObjectRow {
  id: string;
  authz_id: string;
  name: string;
  last_updated_by: string;
  created_at: Date;
  updated_at: Date;
}

export type ObjectTable = 'containers' | 'groups';
export const OBJECT_TABLES: ObjectTable[] = ['containers', 'groups'];

/** One org's results, as mover.survey_orgs keeps them (the findings: src/migration/survey-findings.ts). */
export interface OrgSurvey {
  org_name: string;
  org_id: string;
  migration_state: string | null;
  containers: number | null;
  groups: number | null;
  documents: number | null;
  bytes: number | null;
  copy_ms: number | null;
  /** What Chef does with the org's containers and groups now; null where a key it reads is not a hash. */
  served_from: 'couchdb' | 'sql' | 'split' | null;
  sql_rows: number;
  foreign_rows: number;
  refusal: string | null;
  findings: string[];
  detail: Record<string, unknown>;
}
