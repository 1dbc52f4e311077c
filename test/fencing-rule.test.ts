// The fencing rule, kept by the tree (docs/architecture.md, "Fencing"): a
// write made for one org carries its lease token, and the statement itself
// refuses a stale one. A new SQL function or statement that writes an org's
// rows or state without it fails here, until it is fenced or named below with
// the reason it need not be.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ORG_TABLES =
  /\b(INSERT INTO|UPDATE|DELETE FROM)\s+(containers|"groups"|org_migration_state|mover\.org_progress|mover\.revert_results|mover\.purge_results)\b/i;
const FENCED = /\$\{HELD\}|mover\.hold_lease\(|lease_owner = (\$\d+|ANY\(\$1\)|p_owner)/;

/**
 * Statements that write those tables for an org without a lease token, and
 * why that is safe: each is conditional on the state it moves from, in the
 * statement itself (a late one finds the org moved on and changes nothing),
 * or runs only inside a transaction whose first statement held the org.
 */
const UNFENCED_BY_DESIGN: Record<string, string> = {
  'state-tracker.ts:insertOrgs': 'capture: inserts only orgs not yet captured (ON CONFLICT DO NOTHING)',
  'state-tracker.ts:readyHolding': 'holding -> ready, conditional on holding in the statement',
  'state-tracker.ts:moveOrgs': "an operator's move between resting states, conditional on the from-state in the statement",
  'state-tracker.ts:forceState': "the legacy force_org_to_state: an operator's override, unguarded by design, no HTTP route",
  'state-tracker.ts:clearStaleInFlight': 'clears in_flight only where Chef says the org is not started, read by the statement itself',
  'state-tracker.ts:retryInfrastructureFailures': 'failed -> ready for orgs not in flight, conditional on failed and fail_kind in the statement',
  'state-tracker.ts:resetOrgs': 'failed -> holding, conditional on failed in the statement; the rows it deletes are in the same transaction',
  'state-tracker.ts:markInRun': 'marks orgs a run took, only where not in flight, in the statement',
  'org-objects.ts:deleteOwnedOrgObjects': 'only inside a transaction whose first statement held the org (a restore, a completion, a reset)',
  'reverts.ts:recordResult': "the revert's record, only inside the transaction that completes or fails the org (fenced) or holds its lease",
  'maintenance.ts:resyncStateMirror': "copies Chef's state into the mirror (never used to decide anything about an org), read by the same statement",
};

const DB = join(__dirname, '..', 'src', 'db');

/** Each top-level function of a module, by name, with its text. */
function functionsOf(file: string): Map<string, string> {
  const text = readFileSync(join(DB, file), 'utf8');
  const out = new Map<string, string>();
  // Every declaration at the left margin ends the one before it; only functions are kept.
  const starts = [...text.matchAll(/^(?:export )?(?:(?:async )?function (\w+)|const |let |type |interface |class )/gm)];
  starts.forEach((m, i) => m[1] && out.set(m[1], text.slice(m.index, starts[i + 1]?.index ?? text.length)));
  return out;
}

describe('the fencing rule', () => {
  it("every SQL function that writes an org's rows or state takes the lease token and checks it", () => {
    const sql = readFileSync(join(DB, 'functions.sql'), 'utf8');
    const fns = [...sql.matchAll(/CREATE OR REPLACE FUNCTION (mover\.\w+)\(([^)]*)\)[^$]*\$\$([\s\S]*?)\$\$;/g)];
    expect(fns.length).toBeGreaterThan(5);
    const writers = fns.filter(([, , , body]) => ORG_TABLES.test(body));
    expect(writers.map(([, name]) => name).sort()).toEqual(['mover.claim_org', 'mover.replace_org_objects', 'mover.take_lease'].sort());
    for (const [, name, args, body] of writers) {
      expect(args, `${name} takes no owner token`).toMatch(/\bp_owner text\b/);
      expect(body, `${name} does not check its owner token`).toMatch(/mover\.take_lease\(|lease_owner = p_owner|p\.lease_owner = EXCLUDED\.lease_owner/);
    }
  });

  it("every statement in src/db that writes an org's rows or state is fenced, or is listed with why it need not be", () => {
    const unfenced: string[] = [];
    const listed = new Set<string>();
    for (const file of readdirSync(DB).filter((f) => f.endsWith('.ts'))) {
      for (const [name, text] of functionsOf(file)) {
        if (!ORG_TABLES.test(text) || FENCED.test(text)) continue;
        const id = `${file}:${name}`;
        if (UNFENCED_BY_DESIGN[id]) listed.add(id);
        else unfenced.push(id);
      }
    }
    expect(unfenced, 'writes for an org with no lease token: fence them (FencedOrg, HELD) or list them with the reason').toEqual([]);
    // A listed function that no longer writes, or is fenced now, comes off the list.
    expect(Object.keys(UNFENCED_BY_DESIGN).filter((id) => !listed.has(id))).toEqual([]);
  });
});
