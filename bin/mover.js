#!/usr/bin/env node
// The mover CLI (src/cli/main.ts): the built one when `npm run build` made it,
// else straight from the TypeScript source through tsx.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const built = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
