// npm run lint: typescript-eslint's type-checked rules over src, test and
// scripts, with Prettier owning the layout (eslint-config-prettier turns off
// the rules it owns; `prettier --check` runs beside). The dependency rule,
// layers one way and no import cycle, value or type, is test/layers.test.ts,
// which `npm run lint` runs too (docs/architecture.md, "Rules the tree keeps").
//
// Type-aware: the rules read the types tsconfig.check.json gives (src, test,
// scripts, vitest.config.ts), so a promise nobody awaits, an async function
// handed where a callback's result is ignored (an event listener, a timer), or
// an `await` on a value that is no promise is an error wherever it is written;
// test/no-swallowed-errors.test.ts still refuses the catch that does nothing.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.test-results/', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  { languageOptions: { parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname } } },
  // The runbook page's browser code has a project of its own (DOM types; src/api/page/browser/tsconfig.json).
  { files: ['src/api/page/browser/**/*.ts'], languageOptions: { parserOptions: { project: './src/api/page/browser/tsconfig.json' } } },
  // bin/mover.js, this file and the .mjs/.cjs loaders are outside the TypeScript project.
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  // A loader node --require's (dev/pouch-all-dbs.cjs) is CommonJS, run by Node.
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', Buffer: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // Unused names are errors, but an argument kept for a signature's sake starts with _.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Off: the no-unsafe-* family flags every read of a value a library
      // types `any`. With our own `any`s gone (no-explicit-any) it still finds
      // 365, nearly all pg's rows (a query's rows are `any` unless the call
      // names their type: src/db is most of them), then JSON.parse and fetch's
      // json(). Naming each query's row type is work of its own, not a lint
      // switch; the replies the api sends are typed from their schemas.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // A Fastify plugin is an async function whether or not it awaits (the
      // other form takes a done callback), and a stub stands in for an async
      // method: the rule's findings here were those, not bugs.
      '@typescript-eslint/require-await': 'off',
    },
  },
  prettier,
);
