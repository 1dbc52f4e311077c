// /migrations/:type orgs (legacy moser_state_tracker from the console): capture, ready, hold, reset, and the list by state.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { captureOrgs } from '../../../migration/capture.js';
import { deleteOwnedOrgObjects } from '../../../db/org-objects.js';
import * as tracker from '../../../db/state-tracker.js';
import { listOrgs, statesOf } from '../../../db/org-states.js';
import type { Db } from '../../../stores/postgres.js';
import { NextCursor, Nullable, OrgLines, OrgNames, orgsType, replies, Reply, Text, Time, TypeParams } from '../../schemas.js';
import { audit } from '../../../db/audit.js';
import { actorOf, lineResults, orgsFromText } from '../../operator-input.js';

const OrgsBody = Type.Object({ orgs: OrgNames }, { additionalProperties: false });
const OptionalOrgsBody = Type.Object({ orgs: Type.Optional(OrgNames) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union(tracker.ORG_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,5}$' })),
    cursor: Type.Optional(Text({ maxLength: 255 })),
  },
  { additionalProperties: false },
);

const Names = Type.Array(Type.String());
export const Captured = Reply({
  inserted: Names,
  duplicate: Names,
  unknown: Type.Array(Type.String(), { description: 'not in the snapshot, or pre-created' }),
  precreated: Names,
  ...OrgLines,
});
export const Moved = Reply({ updated: Type.Integer(), skipped: Type.Optional(Names), ...OrgLines });
export const Page = Reply({
  orgs: Type.Array(
    Type.Object({
      org_name: Type.String(),
      org_id: Type.String(),
      state: Type.String(),
      fail_location: Nullable('the step it failed at'),
      migration_start: Time(),
      migration_end: Time(),
    }),
  ),
  next_cursor: NextCursor('the last org_name'),
});
const unique = (names: string[]) => [...new Set(names)];
/** Per-line results of a move: each name updated, or skipped with why (not captured, or in another state than the move takes). */
async function movedLines(q: Db, req: import('fastify').FastifyRequest, type: string, moved: string[], from: string) {
  if (!req.orgLines) return {};
  const skipped = req.orgLines.map((l) => l.org).filter((n) => !moved.includes(n));
  const states = await statesOf(q, type, skipped);
  const why = (n: string) => {
    const s = states.get(n);
    return s === undefined ? `skipped: not captured for ${type}` : `skipped: it is ${s}, not ${from}`;
  };
  return lineResults(req, (n) => (moved.includes(n) ? 'updated' : why(n)), ['updated']);
}

export default async function migrationOrgs(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { db } = app.ctx;

  const fromFile = { preValidation: orgsFromText };

  app.post(
    '/:type/orgs',
    { schema: { summary: 'Capture orgs as holding (legacy insert_one_org)', params: TypeParams, body: OrgsBody, response: replies(Captured) }, ...fromFile },
    async (req) => {
      const type = orgsType(req.params.type);
      const { inserted, duplicate, unknown, precreated } = await captureOrgs(db, type, req.body.orgs);
      req.log.info(
        { migration_type: type, inserted: inserted.length, duplicate: duplicate.length, unknown: unknown.length, precreated: precreated.length },
        'orgs captured',
      );
      await audit(db, actorOf(req), 'orgs.capture', { migration_type: type, inserted: inserted.length, duplicate: duplicate.length, unknown, precreated });
      const outcome = (n: string) =>
        inserted.includes(n) ? 'inserted' : duplicate.includes(n) ? 'duplicate' : precreated.includes(n) ? 'precreated' : 'unknown';
      // The contract counts pre-created orgs as unknown; they are also listed apart.
      const notCaptured = new Set([...unknown, ...precreated]);
      return {
        inserted,
        duplicate,
        unknown: unique(req.body.orgs).filter((n) => notCaptured.has(n)),
        precreated,
        ...lineResults(req, outcome, ['inserted', 'duplicate']),
      };
    },
  );

  app.post(
    '/:type/ready',
    {
      schema: { summary: 'holding → ready: all holding orgs, or the named ones', params: TypeParams, body: OptionalOrgsBody, response: replies(Moved) },
      ...fromFile,
    },
    async (req) => {
      const type = orgsType(req.params.type);
      const names = req.body?.orgs ? unique(req.body.orgs) : undefined;
      const moved = await tracker.readyHolding(db, type, names);
      await audit(db, actorOf(req), 'orgs.ready', { migration_type: type, orgs: names ?? 'all holding', updated: moved.length });
      return {
        updated: moved.length,
        ...(names ? { skipped: names.filter((n) => !moved.includes(n)) } : {}),
        ...(await movedLines(db, req, type, moved, 'holding')),
      };
    },
  );

  app.post(
    '/:type/hold',
    { schema: { summary: 'ready → holding', params: TypeParams, body: OrgsBody, response: replies(Moved) }, ...fromFile },
    async (req) => {
      const type = orgsType(req.params.type);
      const names = unique(req.body.orgs);
      const moved = await tracker.moveOrgs(db, type, names, 'ready', 'holding');
      await audit(db, actorOf(req), 'orgs.hold', { migration_type: type, orgs: names, updated: moved.length });
      return { updated: moved.length, skipped: names.filter((n) => !moved.includes(n)), ...(await movedLines(db, req, type, moved, 'ready')) };
    },
  );

  app.post(
    '/:type/reset',
    {
      schema: { summary: 'failed → holding; the rows mover wrote for them are deleted', params: TypeParams, body: OrgsBody, response: replies(Moved) },
      ...fromFile,
    },
    async (req) => {
      const type = orgsType(req.params.type);
      const names = unique(req.body.orgs);
      // failed → holding, and the org's partial SQL rows (only those mover wrote) go with it, in one transaction.
      const moved = await tracker.resetOrgs(db, type, names, (c, orgId) => deleteOwnedOrgObjects(c, type, orgId));
      await audit(db, actorOf(req), 'orgs.reset', { migration_type: type, orgs: names, updated: moved.length });
      return { updated: moved.length, skipped: names.filter((n) => !moved.includes(n)), ...(await movedLines(db, req, type, moved, 'failed')) };
    },
  );

  app.get(
    '/:type/orgs',
    { schema: { summary: 'A page of orgs of the type, by name', params: TypeParams, querystring: ListQuery, response: replies(Page) } },
    async (req) => {
      const type = orgsType(req.params.type);
      const limit = Math.min(Math.max(Number(req.query.limit ?? 100), 1), 10_000);
      const rows = await listOrgs(db, type, { state: req.query.state, limit, cursor: req.query.cursor });
      const orgs = rows.map(({ org_name, org_id, state, fail_location, migration_start, migration_end }) => ({
        org_name,
        org_id,
        state,
        fail_location,
        migration_start,
        migration_end,
      }));
      return { orgs, next_cursor: rows.length === limit ? rows[rows.length - 1].org_name : null };
    },
  );
}
