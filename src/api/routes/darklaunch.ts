// The darklaunch flags the Chef API reads (docs/domain.md, section 3).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../../db/audit.js';
import { OVERRIDE_KEY, ROUTING_FIELDS } from '../../darklaunch.js';
import { actorOf } from '../operator-input.js';
import { Nullable, OrgName, replies, Reply } from '../schemas.js';

const OrgCreation = Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false });
const Default = Type.Object({ couchdb_containers: Type.Boolean(), couchdb_groups: Type.Boolean() }, { additionalProperties: false });
const OrgParams = Type.Object({ name: OrgName });
const Flag = Type.Union([Type.Boolean(), Type.String(), Type.Null()], {
  description: 'true or false for the exact strings "true"/"false", null when the hash has no such field, any other value as stored',
});
/** What Chef will do (src/chef-routing.ts), beside the raw fields. */
export const Effective = Type.Union(
  [
    Type.Object({
      containers: Type.Union([Type.Literal('couchdb'), Type.Literal('sql')]),
      groups: Type.Union([Type.Literal('couchdb'), Type.Literal('sql')]),
      down: Type.Boolean({ description: '503 for every request of the org' }),
      fields: Type.Record(Type.String(), Type.Object({ value: Nullable(), from: Nullable('the key it came from') }), {
        description: 'each routing field as merged',
      }),
    }),
    Type.Object({ error: Type.String(), key: Type.String(), type: Type.String() }, { description: 'a key Chef reads is not a hash: Chef answers 500' }),
  ],
  {
    description:
      'what Chef does with the org\'s requests, by its rule (dl_default < dl_org_<org> < dl_override; SQL only for exactly "false", down only for exactly "true")',
  },
);
/** An org's own flags and what Chef does with it (GET /darklaunch/orgs/:name, and GET /orgs/:name's darklaunch). */
export const OrgFlags = { couchdb_containers: Flag, couchdb_groups: Flag, '503_mode': Flag, effective: Effective };
const DryRun = Type.Boolean({ description: 'DRY_RUN: the write was logged, not made' });
export const DefaultReply = Reply({ couchdb_containers: Flag, couchdb_groups: Flag, dry_run: Type.Optional(DryRun) });
export const OrgCreationReply = Reply({ enabled: Type.Boolean(), dry_run: Type.Optional(DryRun) });
export const OrgReply = Reply({ org_name: Type.String(), ...OrgFlags });
export const OverrideReply = Reply({
  key: Type.String(),
  fields: Type.Record(Type.String(), Type.String(), { description: 'dl_override as stored' }),
  conflicts: Type.Array(Type.Object({ field: Type.String(), value: Type.String(), fix: Type.String() }), {
    description: 'routing fields in dl_override, each with the command that clears it',
  }),
});

export default async function darklaunch(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const dl = app.ctx.darklaunch;

  app.put(
    '/darklaunch/org-creation',
    { schema: { summary: 'Enable or disable org creation', body: OrgCreation, response: replies(OrgCreationReply) } },
    async (req) => {
      await dl.setOrgCreation(req.body.enabled);
      await audit(app.ctx.db, actorOf(req), 'darklaunch.org_creation', { enabled: req.body.enabled, dry_run: dl.dryRun });
      req.log.info({ enabled: req.body.enabled }, 'org creation set');
      return { enabled: await dl.orgCreationEnabled(), dry_run: dl.dryRun };
    },
  );

  app.get('/darklaunch/org-creation', { schema: { summary: 'Whether org creation is enabled', response: replies(OrgCreationReply) } }, async () => ({
    enabled: await dl.orgCreationEnabled(),
  }));

  app.put(
    '/darklaunch/default',
    { schema: { summary: 'Set dl_default (where orgs without flags of their own are served from)', body: Default, response: replies(DefaultReply) } },
    async (req) => {
      await dl.setDefault(req.body);
      await audit(app.ctx.db, actorOf(req), 'darklaunch.default', { ...req.body, dry_run: dl.dryRun });
      req.log.info(req.body, 'dl_default set');
      return { ...(await dl.getDefault()), dry_run: dl.dryRun };
    },
  );

  app.get('/darklaunch/default', { schema: { summary: 'dl_default', response: replies(DefaultReply) } }, async () => dl.getDefault());

  // dl_override as Chef reads it last: any routing field here overrides every org.
  app.get(
    '/darklaunch/override',
    { schema: { summary: 'dl_override, and the routing fields in it that override every org', response: replies(OverrideReply) } },
    async () => {
      const fields = await dl.getOverride();
      const conflicts = ROUTING_FIELDS.filter((f) => f in fields).map((f) => ({ field: f, value: fields[f], fix: `HDEL ${OVERRIDE_KEY} ${f}` }));
      return { key: OVERRIDE_KEY, fields, conflicts };
    },
  );

  app.get(
    '/darklaunch/orgs/:name',
    { schema: { summary: "An org's own flags (dl_org_<org>), and what Chef does with them", params: OrgParams, response: replies(OrgReply) } },
    async (req) => ({
      org_name: req.params.name,
      ...(await dl.orgView(req.params.name)),
    }),
  );
}
