// Waiting in tests: vitest's vi.waitFor does the polling; this only says,
// at the timeout, what was waited for and what was last seen.
import { vi } from 'vitest';

/** What fn gave while the wait went on: not yet what it waits for. */
class NotYet extends Error {}

/**
 * Waits until `fn` gives something truthy, asking it every `everyMs`; its value.
 * A throw from `fn` is retried like a falsy answer (a store a fault test took
 * away throws until it is back): what must end the wait at once is judged
 * after it, from what `fn` gave (refreshAccount does so). Past `timeoutMs`
 * it fails naming `what`, with fn's last error. `what` may be a function:
 * it is asked at the timeout, so it can say what was last seen.
 */
export async function waitFor<T>(
  what: string | (() => string),
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  try {
    return await vi.waitFor(
      async () => {
        const v = await fn();
        if (!v) throw new NotYet();
        return v;
      },
      { timeout: timeoutMs, interval: everyMs },
    );
  } catch (err) {
    const said = typeof what === 'function' ? what() : what;
    const last = err instanceof NotYet ? '' : `: ${err instanceof Error ? err.message : String(err)}`;
    throw new Error(`timed out waiting for ${said}${last}`, { cause: err });
  }
}
