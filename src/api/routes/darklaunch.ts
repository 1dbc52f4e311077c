import { audit } from '../../db/audit.js';
import { actorOf } from '../operator-input.js';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { OrgName } from '../schemas.js';
import { OVERRIDE_KEY, ROUTING_FIELDS } from '../../darklaunch.js';

const OrgCreation = Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false });
const Default = Type.Object({ couchdb_containers: Type.Boolean(), couchdb_groups: Type.Boolean() }, { additionalProperties: false });
const OrgParams = Type.Object({ name: OrgName });

export default async function darklaunch(app: FastifyInstance) {
  const dl = app.ctx.darklaunch;

  app.put<{ Body: Static<typeof OrgCreation> }>('/darklaunch/org-creation', { schema: { body: OrgCreation } }, async (req) => {
    await dl.setOrgCreation(req.body.enabled);
    await audit(app.ctx.db, actorOf(req), 'darklaunch.org_creation', { enabled: req.body.enabled, dry_run: dl.dryRun });
    req.log.info({ enabled: req.body.enabled }, 'org creation set');
    return { enabled: await dl.orgCreationEnabled(), dryRun: dl.dryRun };
  });

  app.get('/darklaunch/org-creation', async () => ({ enabled: await dl.orgCreationEnabled() }));

  app.put<{ Body: Static<typeof Default> }>('/darklaunch/default', { schema: { body: Default } }, async (req) => {
    await dl.setDefault(req.body);
    await audit(app.ctx.db, actorOf(req), 'darklaunch.default', { ...req.body, dry_run: dl.dryRun });
    req.log.info(req.body, 'dl_default set');
    return { ...(await dl.getDefault()), dryRun: dl.dryRun };
  });

  app.get('/darklaunch/default', async () => dl.getDefault());

  // dl_override as Chef reads it last: any routing field here overrides every org.
  app.get('/darklaunch/override', async () => {
    const fields = await dl.getOverride();
    const conflicts = ROUTING_FIELDS.filter((f) => f in fields).map((f) => ({ field: f, value: fields[f], fix: `HDEL ${OVERRIDE_KEY} ${f}` }));
    return { key: OVERRIDE_KEY, fields, conflicts };
  });

  app.get<{ Params: Static<typeof OrgParams> }>('/darklaunch/orgs/:name', { schema: { params: OrgParams } }, async (req) => ({
    org_name: req.params.name,
    ...(await dl.getOrg(req.params.name)),
  }));
}
