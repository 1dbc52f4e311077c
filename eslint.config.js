// npm run lint: typescript-eslint's recommended rules over src, test and
// scripts, with Prettier owning the layout (eslint-config-prettier turns off
// the rules it owns; `prettier --check` runs beside). The dependency rule,
// layers one way and no import cycle, value or type, is test/layers.test.ts,
// which `npm run lint` runs too (docs/architecture.md, "Rules the tree keeps").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.test-results/', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // Unused names are errors, but an argument kept for a signature's sake starts with _.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Tests and the CLI read loosely shaped JSON replies.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  prettier,
);
