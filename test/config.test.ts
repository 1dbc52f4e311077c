// Pure rules, no stores: how the fleet's env becomes its one typed config, and
// how a missing or malformed value is named.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, ConfigErrors, loadConfig, loadConfigOrExit, type Config } from '../src/config.js';

type Env = Record<string, string | undefined>;

const BASE: Env = {
  DATABASE_URL: 'postgres://mover:secret@db.local:5432/opscode_chef',
  REDIS_URL: 'redis://redis.local:6379/0',
  COUCHDB_URL: 'http://couch.local:5984',
  MOVER_API_TOKEN: 'tok-123',
};

const env = (over: Env = {}): Env => ({ ...BASE, ...over });

/** The ConfigError that loadConfig throws for this env (fails the test when it throws none or another kind). */
function configError(e: Env): ConfigError {
  try {
    loadConfig(e);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig did not throw');
}

function expectConfigError(e: Env, variable: string, message: string) {
  const err = configError(e);
  expect(err.variable).toBe(variable);
  expect(err.message).toBe(`${variable}: ${message}`);
}

describe('ConfigError', () => {
  it('is an Error that names the variable first in its message and keeps it as a field', () => {
    const err = new ConfigError('PORT', 'is broken');
    expect(err).toBeInstanceOf(Error);
    expect(err.variable).toBe('PORT');
    expect(err.message).toBe('PORT: is broken');
    // It sets no name of its own.
    expect(err.name).toBe('Error');
  });
});

describe('loadConfig: a complete env', () => {
  it('gives every setting, with defaults for the optional ones', () => {
    const expected: Config = {
      databaseUrl: BASE.DATABASE_URL!,
      redisUrl: BASE.REDIS_URL!,
      darklaunchRedisUrl: BASE.REDIS_URL!,
      couchdbUrl: BASE.COUCHDB_URL!,
      apiToken: 'tok-123',
      port: 3000,
      logLevel: 'info',
      queuePrefix: 'mover',
      workerConcurrency: 256,
      dryRun: false,
      storeOutageGraceMs: 60_000,
      jobLockMs: 30_000,
    };
    expect(loadConfig(env())).toEqual(expected);
  });

  it('reads every optional setting when given', () => {
    expect(
      loadConfig(
        env({
          DARKLAUNCH_REDIS_URL: 'rediss://dl.local:6380/2',
          PORT: '8080',
          LOG_LEVEL: 'debug',
          QUEUE_PREFIX: 'mover-staging',
          WORKER_CONCURRENCY: '32',
          DRY_RUN: 'true',
        }),
      ),
    ).toEqual({
      databaseUrl: BASE.DATABASE_URL,
      redisUrl: BASE.REDIS_URL,
      darklaunchRedisUrl: 'rediss://dl.local:6380/2',
      couchdbUrl: BASE.COUCHDB_URL,
      apiToken: 'tok-123',
      port: 8080,
      logLevel: 'debug',
      queuePrefix: 'mover-staging',
      workerConcurrency: 32,
      dryRun: true,
      storeOutageGraceMs: 60_000,
      jobLockMs: 30_000,
    });
  });

  it('trims whitespace around every value', () => {
    const cfg = loadConfig({
      DATABASE_URL: `  ${BASE.DATABASE_URL}\n`,
      REDIS_URL: `\t${BASE.REDIS_URL} `,
      DARKLAUNCH_REDIS_URL: ' redis://dl.local:6379 ',
      COUCHDB_URL: ` ${BASE.COUCHDB_URL}  `,
      MOVER_API_TOKEN: '  tok-123 \n',
      PORT: ' 8080 ',
      LOG_LEVEL: '  warn ',
      QUEUE_PREFIX: ' mover2 ',
      WORKER_CONCURRENCY: ' 4\t',
      DRY_RUN: ' yes ',
      STORE_OUTAGE_GRACE_MS: ' 15000 ',
    });
    expect(cfg).toEqual({
      databaseUrl: BASE.DATABASE_URL,
      redisUrl: BASE.REDIS_URL,
      darklaunchRedisUrl: 'redis://dl.local:6379',
      couchdbUrl: BASE.COUCHDB_URL,
      apiToken: 'tok-123',
      port: 8080,
      logLevel: 'warn',
      queuePrefix: 'mover2',
      workerConcurrency: 4,
      dryRun: true,
      storeOutageGraceMs: 15_000,
      jobLockMs: 30_000,
    });
  });

  it('returns a URL as written, not normalised by the URL parser', () => {
    // new URL() would add a trailing slash to a bare origin.
    const cfg = loadConfig(env({ COUCHDB_URL: 'https://admin:pw@couch.local:6984' }));
    expect(cfg.couchdbUrl).toBe('https://admin:pw@couch.local:6984');
  });

  it('does not change the env it is given', () => {
    const e = env({ PORT: ' 80 ', LOG_LEVEL: 'DEBUG' });
    const copy = { ...e };
    loadConfig(e);
    expect(e).toEqual(copy);
  });
});

describe('loadConfig: required variables', () => {
  it('takes MOVER_OPERATORS_FILE in place of MOVER_API_TOKEN (named operators), and needs one of the two', () => {
    const named = loadConfig(env({ MOVER_API_TOKEN: undefined, MOVER_OPERATORS_FILE: ' /etc/mover/operators ' }));
    expect(named).toMatchObject({ operatorsFile: '/etc/mover/operators', apiToken: '' });
    expect(loadConfig(env()).operatorsFile).toBeUndefined();
    expect(configError(env({ MOVER_API_TOKEN: undefined })).message).toContain('MOVER_API_TOKEN');
  });

  for (const name of ['DATABASE_URL', 'REDIS_URL', 'COUCHDB_URL', 'MOVER_API_TOKEN']) {
    it(`names ${name} when it is missing, empty or blank`, () => {
      for (const value of [undefined, '', '   \t\n']) {
        expectConfigError(env({ [name]: value }), name, 'is required but not set');
      }
    });
  }

  it('names every missing or bad variable at once, REDIS_URL first, not one per start', () => {
    const all = configError({ PORT: 'x' }) as ConfigErrors;
    expect(all).toBeInstanceOf(ConfigErrors);
    expect(all.variable).toBe('REDIS_URL');
    expect(all.problems.map((p) => p.variable)).toEqual(['REDIS_URL', 'DATABASE_URL', 'COUCHDB_URL', 'MOVER_API_TOKEN', 'PORT']);
    expect(all.message).toBe(
      '5 settings are missing or bad: REDIS_URL: is required but not set; DATABASE_URL: is required but not set; COUCHDB_URL: is required but not set; MOVER_API_TOKEN: is required but not set; PORT: must be a whole number, got "x"',
    );
  });

  it('reports one problem as itself: DATABASE_URL, then COUCHDB_URL, then MOVER_API_TOKEN', () => {
    const noDb = { REDIS_URL: BASE.REDIS_URL, COUCHDB_URL: BASE.COUCHDB_URL, MOVER_API_TOKEN: 't' };
    expectConfigError(noDb, 'DATABASE_URL', 'is required but not set');
    expectConfigError({ ...noDb, DATABASE_URL: BASE.DATABASE_URL, COUCHDB_URL: undefined }, 'COUCHDB_URL', 'is required but not set');
    expect(configError({ ...noDb, DATABASE_URL: BASE.DATABASE_URL, MOVER_API_TOKEN: undefined })).not.toBeInstanceOf(ConfigErrors);
  });

  it('accepts any non-blank API token as is (inner spaces kept)', () => {
    expect(loadConfig(env({ MOVER_API_TOKEN: 'a b' })).apiToken).toBe('a b');
  });
});

describe('loadConfig: URLs', () => {
  it('rejects a value that is not a URL, without echoing it (it may hold a password)', () => {
    const err = configError(env({ DATABASE_URL: 'not a url with pw=hunter2' }));
    expect(err.variable).toBe('DATABASE_URL');
    expect(err.message).toBe('DATABASE_URL: is not a valid URL');
    expect(err.message).not.toContain('hunter2');
    expectConfigError(env({ COUCHDB_URL: 'http://' }), 'COUCHDB_URL', 'is not a valid URL');
    expectConfigError(env({ REDIS_URL: '://redis.local' }), 'REDIS_URL', 'is not a valid URL');
  });

  it('DATABASE_URL takes postgres:// or postgresql:// only', () => {
    expect(loadConfig(env({ DATABASE_URL: 'postgresql://u@h/db' })).databaseUrl).toBe('postgresql://u@h/db');
    expect(loadConfig(env({ DATABASE_URL: 'POSTGRES://u@h/db' })).databaseUrl).toBe('POSTGRES://u@h/db');
    for (const bad of ['mysql://u@h/db', 'http://h:5432/db', 'redis://h']) {
      expectConfigError(env({ DATABASE_URL: bad }), 'DATABASE_URL', 'must start with postgres:// or postgresql://');
    }
  });

  it('REDIS_URL takes redis:// or rediss:// only', () => {
    expect(loadConfig(env({ REDIS_URL: 'rediss://h:6380' })).redisUrl).toBe('rediss://h:6380');
    for (const bad of ['http://h:6379', 'tcp://h:6379', 'unix:///tmp/redis.sock']) {
      expectConfigError(env({ REDIS_URL: bad }), 'REDIS_URL', 'must start with redis:// or rediss://');
    }
  });

  it('COUCHDB_URL takes http:// or https:// only', () => {
    expect(loadConfig(env({ COUCHDB_URL: 'https://h:6984' })).couchdbUrl).toBe('https://h:6984');
    for (const bad of ['ftp://h', 'couchdb://h:5984', 'postgres://h']) {
      expectConfigError(env({ COUCHDB_URL: bad }), 'COUCHDB_URL', 'must start with http:// or https://');
    }
  });

  it('treats a host:port without a scheme as a wrong protocol, not an invalid URL', () => {
    // new URL('localhost:5984') parses, with protocol "localhost:".
    expectConfigError(env({ COUCHDB_URL: 'localhost:5984' }), 'COUCHDB_URL', 'must start with http:// or https://');
  });

  it('checks only the scheme: a URL with no host passes', () => {
    // Current behaviour: nothing asks for a host.
    expect(loadConfig(env({ DATABASE_URL: 'postgres://' })).databaseUrl).toBe('postgres://');
    expect(loadConfig(env({ REDIS_URL: 'redis:foo' })).redisUrl).toBe('redis:foo');
  });
});

describe('loadConfig: DARKLAUNCH_REDIS_URL', () => {
  it('falls back to REDIS_URL when unset, empty or blank', () => {
    for (const value of [undefined, '', '   ']) {
      expect(loadConfig(env({ DARKLAUNCH_REDIS_URL: value })).darklaunchRedisUrl).toBe(BASE.REDIS_URL);
    }
  });

  it('falls back to the trimmed REDIS_URL', () => {
    expect(loadConfig(env({ REDIS_URL: '  redis://r:1 ' })).darklaunchRedisUrl).toBe('redis://r:1');
  });

  it('is used when set, independently of REDIS_URL', () => {
    const cfg = loadConfig(env({ DARKLAUNCH_REDIS_URL: 'redis://dl.local:6379/3' }));
    expect(cfg.darklaunchRedisUrl).toBe('redis://dl.local:6379/3');
    expect(cfg.redisUrl).toBe(BASE.REDIS_URL);
  });

  it('is validated under its own name', () => {
    expectConfigError(env({ DARKLAUNCH_REDIS_URL: 'http://dl.local' }), 'DARKLAUNCH_REDIS_URL', 'must start with redis:// or rediss://');
    expectConfigError(env({ DARKLAUNCH_REDIS_URL: 'nope nope' }), 'DARKLAUNCH_REDIS_URL', 'is not a valid URL');
  });

  it('does not stand in for a missing REDIS_URL', () => {
    expectConfigError(env({ REDIS_URL: undefined, DARKLAUNCH_REDIS_URL: 'redis://dl.local' }), 'REDIS_URL', 'is required but not set');
  });
});

describe('loadConfig: whole numbers', () => {
  it('defaults PORT to 3000 and WORKER_CONCURRENCY to 256 when unset, empty or blank', () => {
    for (const value of [undefined, '', '  ']) {
      const cfg = loadConfig(env({ PORT: value, WORKER_CONCURRENCY: value }));
      expect(cfg.port).toBe(3000);
      expect(cfg.workerConcurrency).toBe(256);
    }
  });

  it('rejects anything but digits, quoting the trimmed value', () => {
    for (const bad of ['abc', '-1', '80.5', '1e3', '+80', '0x50', '8 0', '3000abc']) {
      expectConfigError(env({ PORT: bad }), 'PORT', `must be a whole number, got "${bad}"`);
      expectConfigError(env({ WORKER_CONCURRENCY: bad }), 'WORKER_CONCURRENCY', `must be a whole number, got "${bad}"`);
    }
    expectConfigError(env({ PORT: '  abc ' }), 'PORT', 'must be a whole number, got "abc"');
  });

  it('keeps PORT within 0..65535', () => {
    expect(loadConfig(env({ PORT: '0' })).port).toBe(0);
    expect(loadConfig(env({ PORT: '65535' })).port).toBe(65535);
    expect(loadConfig(env({ PORT: '08080' })).port).toBe(8080);
    expectConfigError(env({ PORT: '65536' }), 'PORT', 'must be between 0 and 65535, got 65536');
    expectConfigError(env({ PORT: '99999999999999999999' }), 'PORT', 'must be between 0 and 65535, got 100000000000000000000');
  });

  it('keeps WORKER_CONCURRENCY within 1..1024', () => {
    expect(loadConfig(env({ WORKER_CONCURRENCY: '1' })).workerConcurrency).toBe(1);
    expect(loadConfig(env({ WORKER_CONCURRENCY: '1024' })).workerConcurrency).toBe(1024);
    expectConfigError(env({ WORKER_CONCURRENCY: '0' }), 'WORKER_CONCURRENCY', 'must be between 1 and 1024, got 0');
    expectConfigError(env({ WORKER_CONCURRENCY: '1025' }), 'WORKER_CONCURRENCY', 'must be between 1 and 1024, got 1025');
    // The number, not the text, is quoted back.
    expectConfigError(env({ WORKER_CONCURRENCY: '01025' }), 'WORKER_CONCURRENCY', 'must be between 1 and 1024, got 1025');
  });
});

describe('loadConfig: DRY_RUN', () => {
  it('defaults to false when unset, empty or blank', () => {
    for (const value of [undefined, '', ' ']) expect(loadConfig(env({ DRY_RUN: value })).dryRun).toBe(false);
  });

  it('takes 1, true, yes in any case as true', () => {
    for (const value of ['1', 'true', 'yes', 'TRUE', 'True', 'YES', ' yEs ']) {
      expect(loadConfig(env({ DRY_RUN: value })).dryRun, value).toBe(true);
    }
  });

  it('takes 0, false, no in any case as false', () => {
    for (const value of ['0', 'false', 'no', 'FALSE', 'No', ' NO ']) {
      expect(loadConfig(env({ DRY_RUN: value })).dryRun, value).toBe(false);
    }
  });

  it('rejects other spellings, quoting the value lower-cased', () => {
    for (const bad of ['on', 'off', 'y', 'n', 't', 'f', '2', 'enabled', 'truee']) {
      expectConfigError(env({ DRY_RUN: bad }), 'DRY_RUN', `must be true or false, got "${bad}"`);
    }
    expectConfigError(env({ DRY_RUN: ' Maybe ' }), 'DRY_RUN', 'must be true or false, got "maybe"');
  });
});

describe('loadConfig: LOG_LEVEL', () => {
  it('defaults to info when unset, empty or blank', () => {
    for (const value of [undefined, '', '  ']) expect(loadConfig(env({ LOG_LEVEL: value })).logLevel).toBe('info');
  });

  it("takes pino's levels and silent, lower-cased", () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      expect(loadConfig(env({ LOG_LEVEL: level })).logLevel).toBe(level);
      expect(loadConfig(env({ LOG_LEVEL: level.toUpperCase() })).logLevel).toBe(level);
    }
    expect(loadConfig(env({ LOG_LEVEL: ' Debug ' })).logLevel).toBe('debug');
  });

  it('rejects any other level, listing the allowed ones', () => {
    for (const bad of ['verbose', 'warning', 'information', '10', 'info,debug']) {
      expectConfigError(env({ LOG_LEVEL: bad }), 'LOG_LEVEL', 'must be one of fatal, error, warn, info, debug, trace, silent');
    }
  });

  it('is reported with the missing URLs, not instead of them', () => {
    const all = configError({ REDIS_URL: BASE.REDIS_URL, LOG_LEVEL: 'loud' }) as ConfigErrors;
    expect(all.problems.map((p) => p.message)).toEqual([
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
      'DATABASE_URL: is required but not set',
      'COUCHDB_URL: is required but not set',
      'MOVER_API_TOKEN: is required but not set',
    ]);
  });
});

describe('loadConfig: QUEUE_PREFIX', () => {
  it('defaults to mover when unset, empty or blank', () => {
    for (const value of [undefined, '', '   ']) expect(loadConfig(env({ QUEUE_PREFIX: value })).queuePrefix).toBe('mover');
  });

  it('takes letters, digits, _ . - as given (case kept)', () => {
    for (const ok of ['Mover_2', 'mover.staging', 'a-b_c.d-9', '-', '...']) {
      expect(loadConfig(env({ QUEUE_PREFIX: ok })).queuePrefix).toBe(ok);
    }
  });

  it('rejects any other character, a Redis key separator included', () => {
    for (const bad of ['mover:staging', 'my mover', '{mover}', 'mover/x', 'mövér', 'a*b']) {
      expectConfigError(env({ QUEUE_PREFIX: bad }), 'QUEUE_PREFIX', 'may hold only letters, digits, _ . -');
    }
  });
});

describe('loadConfigOrExit', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  const stubAll = (e: Env) => {
    for (const name of [
      'DATABASE_URL',
      'REDIS_URL',
      'DARKLAUNCH_REDIS_URL',
      'COUCHDB_URL',
      'MOVER_API_TOKEN',
      'PORT',
      'LOG_LEVEL',
      'QUEUE_PREFIX',
      'WORKER_CONCURRENCY',
      'DRY_RUN',
    ]) {
      vi.stubEnv(name, e[name]);
    }
  };

  it('reads process.env', () => {
    stubAll(env({ PORT: '4321', DRY_RUN: 'yes' }));
    const cfg = loadConfigOrExit();
    expect(cfg.port).toBe(4321);
    expect(cfg.dryRun).toBe(true);
    expect(cfg.databaseUrl).toBe(BASE.DATABASE_URL);
  });

  it('prints one line naming the variable and exits 1 on a config error', () => {
    stubAll(env({ WORKER_CONCURRENCY: '0' }));
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(() => loadConfigOrExit()).toThrow('exit 1');
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(1);
    expect(write).toHaveBeenCalledTimes(1);
    expect(write).toHaveBeenCalledWith('config error: WORKER_CONCURRENCY: must be between 1 and 1024, got 0\n');
  });
});
