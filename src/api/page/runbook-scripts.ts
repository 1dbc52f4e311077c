// The runbook page's script as the browser gets it: the modules of
// browser/ (TypeScript, strict, DOM types, its own tsconfig.json), compiled
// to JavaScript and served as /runbook/<module>.js (src/api/routes/runbook-page.ts).
// - Built (`npm run build` runs tsc on browser/tsconfig.json into dist/page/),
//   the api reads dist/page/ once, as it starts: production needs no compiler,
//   and a build without the page's script fails at start, not in a browser.
// - Run from the sources (tsx, vitest), there is no build to trust to be
//   current, so the api transpiles browser/*.ts itself on the first ask, with
//   the TypeScript the sources are run with (a devDependency: installed
//   wherever the sources run, and never loaded by the built api). Transpiling
//   checks no types: `npm run typecheck` and `npm run build` do.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Module file name (runbook.js, page.js, …) to its JavaScript. */
export type PageScripts = ReadonlyMap<string, string>;

const SOURCES = new URL('./browser/', import.meta.url);
/** From dist/src/api/page/ (this module, built) to dist/page/ (browser/tsconfig.json's outDir). */
const BUILT = new URL('../../../page/', import.meta.url);
const fromSources = import.meta.url.endsWith('.ts');

function built(): PageScripts {
  const names = readdirSync(BUILT).filter((n) => n.endsWith('.js'));
  return new Map(names.map((n) => [n, readFileSync(new URL(n, BUILT), 'utf8')]));
}

async function transpiled(): Promise<PageScripts> {
  const { default: ts } = await import('typescript');
  const dir = fileURLToPath(SOURCES);
  // The build's files and compiler options: browser/tsconfig.json's.
  const config = ts.readConfigFile(`${dir}tsconfig.json`, (path) => ts.sys.readFile(path));
  if (config.error) throw new Error(`browser/tsconfig.json: ${ts.flattenDiagnosticMessageText(config.error.messageText, '\n')}`);
  const { options, fileNames } = ts.parseJsonConfigFileContent(config.config, ts.sys, dir);
  const js = (file: string) => ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: options, fileName: file }).outputText;
  return new Map(fileNames.map((file) => [`${basename(file, '.ts')}.js`, js(file)]));
}

let scripts: Promise<PageScripts> | undefined = fromSources ? undefined : Promise.resolve(built());

export function pageScripts(): Promise<PageScripts> {
  scripts ??= transpiled();
  return scripts;
}
