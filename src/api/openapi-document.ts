// The OpenAPI document as the api serves it at /docs/json, made without any
// store: the app is built on a context whose connections are never opened.
import type { Config } from '../config.js';
import { createContext, closeContext } from '../context.js';
import { createLogger } from '../log.js';
import { buildApp } from './app.js';

export async function openApiDocument(): Promise<unknown> {
  const config: Config = {
    databaseUrl: 'postgres://127.0.0.1:1/openapi',
    redisUrl: 'redis://127.0.0.1:1',
    darklaunchRedisUrl: 'redis://127.0.0.1:1',
    couchdbUrl: 'http://127.0.0.1:1',
    apiToken: 'openapi',
    port: 0,
    logLevel: 'silent',
    queuePrefix: 'openapi',
    workerConcurrency: 1,
    dryRun: false,
    storeOutageGraceMs: 0,
    jobLockMs: 30_000,
  };
  const ctx = createContext(config, createLogger('silent', 'openapi'));
  try {
    const app = await buildApp(ctx);
    await app.ready();
    const doc = app.swagger();
    await app.close();
    return doc;
  } finally {
    ctx.queueRedis.disconnect();
    ctx.darklaunchRedis.disconnect();
    await closeContext(ctx);
  }
}
