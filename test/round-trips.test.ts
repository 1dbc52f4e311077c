// Postgres round trips are counted where mover's pools send them, once per
// statement, whether by pool.query or by a client checked out for a
// transaction, and nothing else (pg's own Client is not patched for the process).
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool, inTransaction } from '../src/stores/postgres.js';
import { roundTrips } from '../src/stores/round-trips.js';
// The server the suite uses (test/support/global-setup.ts); only SELECTs are sent.
const PG_ADMIN = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const pool = createPool(PG_ADMIN, { graceMs: 1000, log: pino({ level: 'silent' }) }, 2);
afterAll(() => pool.end());

const sent = async (fn: () => Promise<unknown>) => {
  const before = roundTrips().postgres;
  await fn();
  return roundTrips().postgres - before;
};

describe('Postgres round trips', () => {
  it('counts each statement of a pool once: a query, and a transaction as BEGIN, its statements and COMMIT', async () => {
    expect(await sent(() => pool.query('SELECT 1'))).toBe(1);
    expect(await sent(() => inTransaction(pool, async (c) => c.query('SELECT 1')))).toBe(3);
    // A connection the pool reuses is counted once still.
    expect(await sent(() => Promise.all([pool.query('SELECT 1'), pool.query('SELECT 2'), pool.query('SELECT 3')]))).toBe(3);
  });

  it('does not count a pg client of anyone else (no global patch)', async () => {
    const other = new pg.Client({ connectionString: PG_ADMIN });
    await other.connect();
    try {
      expect(await sent(() => other.query('SELECT 1'))).toBe(0);
    } finally {
      await other.end();
    }
  });
});
