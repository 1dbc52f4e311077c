// The runbook page's script reads the API's replies by types of its own
// (src/api/page/browser/replies.ts): its browser build cannot compile the
// routes' schemas. Each route's reply must fit them. tsc checks it, at
// `npm run typecheck` (expectTypeOf does nothing at run time), so a field the
// API renames or drops fails the typecheck, not the page in a browser.
import type { Static } from '@sinclair/typebox';
import { describe, expectTypeOf, it } from 'vitest';
import type * as Page from '../src/api/page/browser/replies.js';
import type { Series } from '../src/api/routes/migrations/run-reads.js';
import type { OrgView, PhaseView, RunFailures, RunList, RunStatus, SettingsView, SurveyView } from '../src/cli/replies.js';

describe("the runbook page's reply types", () => {
  it("take in each route's reply", () => {
    expectTypeOf<RunStatus>().toExtend<Page.RunStatus>();
    expectTypeOf<RunList>().toExtend<Page.RunList>();
    expectTypeOf<RunFailures>().toExtend<Page.Failures>();
    expectTypeOf<Static<typeof Series>>().toExtend<Page.Series>();
    expectTypeOf<SettingsView>().toExtend<Page.Settings>();
    expectTypeOf<SurveyView>().toExtend<Page.Survey>();
    expectTypeOf<OrgView>().toExtend<Page.Org>();
    expectTypeOf<{ phases: PhaseView[] }>().toExtend<Page.Phases>();
  });

  it('refuse a reply without a field the page reads (the guard itself can fail)', () => {
    expectTypeOf<Omit<RunStatus, 'objects_failed'>>().not.toExtend<Page.RunStatus>();
    expectTypeOf<Omit<RunList['runs'][number], 'orgs_in_run'>>().not.toExtend<Page.RunList['runs'][number]>();
  });
});
