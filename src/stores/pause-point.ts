// A seam for the pause tests (test/pause.test.ts): every write mover makes
// for an org calls beforeWrite with the write's name and the org, right
// before the write is sent and after every check the process makes of its
// own. A test holds a delivery there, as a process paused at that instant
// would be held (a GC pause, a frozen VM), lets another delivery finish the
// org, then lets the write go and sees the store itself refuse it
// (docs/architecture.md, "Fencing"). Unset in the product: one property read
// per write.

/** The writes made for an org, by what they are. */
export type OrgWrite =
  | 'copy'
  | 'checkpoint'
  | 'complete'
  | 'fail'
  | 'requeue'
  | 'hold'
  | 'flags'
  | 'fail_unstarted'
  | 'refuse_unstarted'
  | 'write_back'
  | 'purge_move'
  | 'purge_delete'
  | 'purge_record';

/** The org a write is for: its id, or its name where only that is known (a darklaunch write). */
export type WriteFor = { orgId?: string; orgName?: string };

export const pausePoint: { beforeWrite?: (write: OrgWrite, org: WriteFor) => Promise<void> } = {};

export async function beforeWrite(write: OrgWrite, org: WriteFor): Promise<void> {
  if (pausePoint.beforeWrite) await pausePoint.beforeWrite(write, org);
}
