// Which of a run's orgs are in flight, and which of those are dark now: what
// run status and the run series (src/runs/series.ts) both show. Only an org
// in flight can be dark, so only those orgs' own 503_mode is asked.
import type { Context } from '../context.js';
import { inFlightOrgs } from '../db/runs.js';
import { errorMessage } from '../errors.js';

/** `dark` is null when the darklaunch Redis did not answer (logged): a gap in what is shown, not an error. */
export async function darkNow(ctx: Context, runId: string): Promise<{ inFlight: string[]; dark: string[] | null }> {
  const inFlight = await inFlightOrgs(ctx.db, runId);
  try {
    return { inFlight, dark: await ctx.darklaunch.orgsDown(inFlight) };
  } catch (err) {
    ctx.log.warn({ err: errorMessage(err), run_id: runId }, 'could not read which orgs are dark');
    return { inFlight, dark: null };
  }
}
