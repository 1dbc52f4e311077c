import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { lookupOrgs } from '../../db/account-snapshot.js';
import { getOrgStates, orgFailures } from '../../db/org-states.js';
import { latestResult } from '../../db/reverts.js';
import { NotFoundError } from '../../errors.js';
import { OrgName } from '../schemas.js';

const Params = Type.Object({ name: OrgName });

export default async function orgs(app: FastifyInstance) {
  app.get<{ Params: Static<typeof Params> }>('/orgs/:name', { schema: { params: Params } }, async (req) => {
    const { name } = req.params;
    const [account, states] = await Promise.all([lookupOrgs(app.ctx.db, [name]), getOrgStates(app.ctx.db, name)]);
    const org = account.get(name);
    if (!org && !states.length) throw new NotFoundError(`unknown org "${name}"`, 'unknown_org');
    return {
      org_name: name,
      org_id: org?.guid ?? states[0]?.org_id ?? null,
      precreated: org?.precreated ?? false,
      states: Object.fromEntries(
        states.map((s) => [s.migration_type, { state: s.state, fail_location: s.fail_location, fail_detail: s.fail_detail, migration_start: s.migration_start, migration_end: s.migration_end, current_step: s.current_step, run_id: s.run_id }]),
      ),
      darklaunch: await app.ctx.darklaunch.getOrg(name),
      // The last revert of the org: reverted, or refused with what changed on SQL.
      revert: await latestResult(app.ctx.db, name),
      // Every time it failed, newest first, whatever became of it since (a fault's failures are retried).
      failures: await orgFailures(app.ctx.db, name),
    };
  });
}
