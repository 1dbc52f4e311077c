// npm run openapi — writes docs/openapi.json from the routes' schemas (the
// test in test/openapi.test.ts fails while the committed one is out of date).
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../src/api/openapi-document.js';

writeFileSync(new URL('../docs/openapi.json', import.meta.url), `${JSON.stringify(await openApiDocument(), null, 2)}\n`);
console.log('docs/openapi.json written');
process.exit(0);
