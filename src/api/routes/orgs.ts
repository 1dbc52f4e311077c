import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { lookupOrgs } from '../../db/account-snapshot.js';
import { getOrgStates, orgFailures } from '../../db/org-states.js';
import { latestResult } from '../../db/reverts.js';
import { surveyedOrg } from '../../db/survey.js';
import { NotFoundError } from '../../errors.js';
import { Nullable, OrgName, replies, Reply, SurveyedOrg, Time } from '../schemas.js';
import { OrgFlags } from './darklaunch.js';

const Params = Type.Object({ name: OrgName });
export const Org = Reply({
  org_name: Type.String(),
  org_id: Type.Union([Type.String(), Type.Null()]),
  precreated: Type.Boolean(),
  states: Type.Record(
    Type.String(),
    Type.Object({
      state: Type.String(),
      fail_location: Nullable(),
      fail_detail: Nullable(),
      migration_start: Time(),
      migration_end: Time(),
      current_step: Nullable(),
      run_id: Nullable(),
      dark_ms: Nullable('how long it was dark when it last finished; null: never, or not measured', Type.Number()),
    }),
    { description: 'by migration type' },
  ),
  darklaunch: Type.Object(OrgFlags, { description: "the org's own flags (true, false, null when unset, other values as stored), and what Chef does with it" }),
  revert: Type.Union(
    [
      Type.Object({
        run_id: Type.String(),
        org_name: Type.String(),
        outcome: Type.String({ description: 'reverted, refused or failed' }),
        written_back: Type.Integer(),
        differences: Type.Array(Type.Unknown(), { description: 'what changed on SQL since it migrated' }),
        detail: Nullable(),
        at: Type.String(),
      }),
      Type.Null(),
    ],
    { description: 'the latest revert result, or null' },
  ),
  failures: Type.Array(
    Type.Object({ migration_type: Type.String(), run_id: Nullable(), step: Type.String(), kind: Type.String(), detail: Nullable(), at: Type.String() }),
    { description: 'every failure, newest first' },
  ),
  survey: Type.Union([SurveyedOrg, Type.Null()], { description: 'what the latest estate survey found of it, or null' }),
});

export default async function orgs(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/orgs/:name',
    { schema: { summary: 'One org: its states, failures, revert and darklaunch flags', params: Params, response: replies(Org) } },
    async (req) => {
      const { name } = req.params;
      const [account, states] = await Promise.all([lookupOrgs(app.ctx.db, [name]), getOrgStates(app.ctx.db, name)]);
      const org = account.get(name);
      if (!org && !states.length) throw new NotFoundError(`unknown org "${name}"`, 'unknown_org');
      return {
        org_name: name,
        org_id: org?.guid ?? states[0]?.org_id ?? null,
        precreated: org?.precreated ?? false,
        states: Object.fromEntries(
          states.map((s) => [
            s.migration_type,
            {
              state: s.state,
              fail_location: s.fail_location,
              fail_detail: s.fail_detail,
              migration_start: s.migration_start,
              migration_end: s.migration_end,
              current_step: s.current_step,
              run_id: s.run_id,
              dark_ms: s.dark_ms,
            },
          ]),
        ),
        darklaunch: await app.ctx.darklaunch.orgView(name),
        // The last revert of the org: reverted, or refused with what changed on SQL.
        revert: await latestResult(app.ctx.db, name),
        // Every time it failed, newest first, whatever became of it since (a fault's failures are retried).
        failures: await orgFailures(app.ctx.db, name),
        survey: await surveyedOrg(app.ctx.db, name),
      };
    },
  );
}
