// Who may use the api, by name (docs/api.md, "Operators"). With
// MOVER_OPERATORS_FILE, one operator a line, `name sha256-hex-of-token`
// (space-separated, `#` comments): each request authenticates as the
// operator whose token it carries, and the audit log records that name. The
// file is read again on SIGHUP and whenever it changes, so a token revoked
// there is refused from the next request on, with no restart. Without it,
// MOVER_API_TOKEN alone is a single operator named "operator".
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

export interface Operator {
  name: string;
  /** SHA-256 of the token, 32 bytes. */
  hash: Buffer;
}

/** An operator's name: what the audit log and a confirmation's `by` carry (PostgreSQL text: no NUL; no spaces: the file splits on them). */
// eslint-disable-next-line no-control-regex -- NUL is the one character PostgreSQL text cannot hold
export const OPERATOR_NAME = /^[^\s\u0000#][^\s\u0000]{0,99}$/;

export interface ParsedOperators {
  operators: Operator[];
  /** Lines that were not taken, with why (logged by line number; the token hash is never logged). */
  problems: { line: number; why: string }[];
}

/** The operators file's text, as operators; a line that does not parse is left out and named. */
export function parseOperators(text: string): ParsedOperators {
  const operators: Operator[] = [];
  const problems: ParsedOperators['problems'] = [];
  const names = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const [name, hex, ...rest] = line.split(/\s+/);
    if (rest.length || hex === undefined) return problems.push({ line: i + 1, why: 'expected two fields: name and the SHA-256 of the token' });
    if (!OPERATOR_NAME.test(name)) return problems.push({ line: i + 1, why: 'the name must be 1 to 100 characters, without spaces or NUL' });
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) return problems.push({ line: i + 1, why: `the hash for ${name} is not 64 hex digits (a SHA-256)` });
    if (names.has(name)) return problems.push({ line: i + 1, why: `${name} is listed twice; the first line is kept` });
    names.add(name);
    operators.push({ name, hash: Buffer.from(hex, 'hex') });
  });
  return { operators, problems };
}

export const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export class Operators {
  private list: Operator[] = [];
  private readonly onHangUp = () => this.reload('SIGHUP');

  /** `named`: operators come from a file (a confirmation's `by` must then be the operator's own name). */
  readonly named: boolean;

  constructor(
    private readonly source: { file?: string; token?: string },
    private readonly log: Logger,
  ) {
    this.named = source.file !== undefined;
    if (source.file === undefined) {
      if (!source.token) throw new Error('MOVER_API_TOKEN or MOVER_OPERATORS_FILE must be set');
      this.list = [{ name: 'operator', hash: sha256(source.token) }];
      return;
    }
    // A file that cannot be read at start stops the api: nobody could sign in.
    this.list = this.read();
    if (source.token) log.warn('MOVER_OPERATORS_FILE is set: MOVER_API_TOKEN is not accepted by the api');
    watchFile(source.file, { interval: 500 }, () => this.reload('change'));
    process.on('SIGHUP', this.onHangUp);
  }

  /** The operator a token belongs to, or null. Every entry is compared, in constant time, whichever matches. */
  authenticate(token: string | undefined): string | null {
    if (!token) return null;
    const presented = sha256(token);
    let found: string | null = null;
    for (const op of this.list) if (timingSafeEqual(presented, op.hash) && found === null) found = op.name;
    return found;
  }

  get size(): number {
    return this.list.length;
  }

  close(): void {
    if (this.source.file === undefined) return;
    unwatchFile(this.source.file);
    process.off('SIGHUP', this.onHangUp);
  }

  private read(): Operator[] {
    const { operators, problems } = parseOperators(readFileSync(this.source.file!, 'utf8'));
    for (const p of problems) this.log.error({ file: this.source.file, line: p.line, why: p.why }, 'operators file: line left out');
    this.log.info({ file: this.source.file, operators: operators.map((o) => o.name) }, 'operators read');
    return operators;
  }

  /** Reads the file again; if it cannot be read, the operators as they were stay (and the error is logged). */
  reload(why: string): void {
    try {
      this.list = this.read();
    } catch (err) {
      this.log.error({ file: this.source.file, why, err: errorMessage(err) }, 'could not read the operators file again; the operators as they were stay');
    }
  }
}
