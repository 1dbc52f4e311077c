// The state tracker routes (legacy moser_state_tracker from the console).
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { captureOrgs } from '../../migration/capture.js';
import { deleteOwnedOrgObjects } from '../../db/org-objects.js';
import * as tracker from '../../db/state-tracker.js';
import { listOrgs } from '../../db/org-states.js';
import { migrationType, OrgNames, TypeParams, type TypeParamsT } from '../schemas.js';
import { audit } from '../../db/audit.js';
import { actorOf, lineResults, orgsFromText } from '../operator-input.js';

const OrgsBody = Type.Object({ orgs: OrgNames }, { additionalProperties: false });
const OptionalOrgsBody = Type.Object({ orgs: Type.Optional(OrgNames) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union(tracker.ORG_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,5}$' })),
    cursor: Type.Optional(Type.String({ maxLength: 255 })),
  },
  { additionalProperties: false },
);

type OrgsReq = { Params: TypeParamsT; Body: Static<typeof OrgsBody> };
const unique = (names: string[]) => [...new Set(names)];
const movedLines = (req: import('fastify').FastifyRequest, moved: string[]) => lineResults(req, (n) => (moved.includes(n) ? 'updated' : 'skipped'), ['updated']);

export default async function stateTracker(app: FastifyInstance) {
  const { db } = app.ctx;

  const fromFile = { preValidation: orgsFromText };

  app.post<OrgsReq>('/migrations/:type/orgs', { schema: { params: TypeParams, body: OrgsBody }, ...fromFile }, async (req) => {
    const type = migrationType(req.params.type);
    const { inserted, duplicate, unknown, precreated } = await captureOrgs(db, type, req.body.orgs);
    req.log.info({ migration_type: type, inserted: inserted.length, duplicate: duplicate.length, unknown: unknown.length, precreated: precreated.length }, 'orgs captured');
    await audit(db, actorOf(req), 'orgs.capture', { migration_type: type, inserted: inserted.length, duplicate: duplicate.length, unknown, precreated });
    const outcome = (n: string) => (inserted.includes(n) ? 'inserted' : duplicate.includes(n) ? 'duplicate' : precreated.includes(n) ? 'precreated' : 'unknown');
    // The contract counts pre-created orgs as unknown; they are also listed apart.
    const notCaptured = new Set([...unknown, ...precreated]);
    return { inserted, duplicate, unknown: unique(req.body.orgs).filter((n) => notCaptured.has(n)), precreated, ...lineResults(req, outcome, ['inserted', 'duplicate']) };
  });

  app.post<{ Params: TypeParamsT; Body: Static<typeof OptionalOrgsBody> }>(
    '/migrations/:type/ready',
    { schema: { params: TypeParams, body: OptionalOrgsBody }, ...fromFile },
    async (req) => {
      const type = migrationType(req.params.type);
      const names = req.body?.orgs ? unique(req.body.orgs) : undefined;
      const moved = await tracker.readyHolding(db, type, names);
      await audit(db, actorOf(req), 'orgs.ready', { migration_type: type, orgs: names ?? 'all holding', updated: moved.length });
      return { updated: moved.length, ...(names ? { skipped: names.filter((n) => !moved.includes(n)) } : {}), ...movedLines(req, moved) };
    },
  );

  app.post<OrgsReq>('/migrations/:type/hold', { schema: { params: TypeParams, body: OrgsBody }, ...fromFile }, async (req) => {
    const type = migrationType(req.params.type);
    const names = unique(req.body.orgs);
    const moved = await tracker.moveOrgs(db, type, names, 'ready', 'holding');
    await audit(db, actorOf(req), 'orgs.hold', { migration_type: type, orgs: names, updated: moved.length });
    return { updated: moved.length, skipped: names.filter((n) => !moved.includes(n)), ...movedLines(req, moved) };
  });

  app.post<OrgsReq>('/migrations/:type/reset', { schema: { params: TypeParams, body: OrgsBody }, ...fromFile }, async (req) => {
    const type = migrationType(req.params.type);
    const names = unique(req.body.orgs);
    // failed → holding, and the org's partial SQL rows (only those mover wrote) go with it, in one transaction.
    const moved = await tracker.resetOrgs(db, type, names, (c, orgId) => deleteOwnedOrgObjects(c, type, orgId));
    await audit(db, actorOf(req), 'orgs.reset', { migration_type: type, orgs: names, updated: moved.length });
    return { updated: moved.length, skipped: names.filter((n) => !moved.includes(n)), ...movedLines(req, moved) };
  });

  app.get<{ Params: TypeParamsT; Querystring: Static<typeof ListQuery> }>(
    '/migrations/:type/orgs',
    { schema: { params: TypeParams, querystring: ListQuery } },
    async (req) => {
      const type = migrationType(req.params.type);
      const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 10_000);
      const rows = await listOrgs(db, type, { state: req.query.state, limit, cursor: req.query.cursor });
      const orgs = rows.map(({ org_name, org_id, state, fail_location, migration_start, migration_end }) => ({ org_name, org_id, state, fail_location, migration_start, migration_end }));
      return { orgs, next_cursor: rows.length === limit ? rows[rows.length - 1].org_name : null };
    },
  );
}
