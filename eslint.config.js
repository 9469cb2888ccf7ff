// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import * as espree from 'espree';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.bench-tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // node:test's describe/test return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
    },
  },
  { files: ['eslint.config.js', 'scripts/**/*.mjs', '.dependency-cruiser.cjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly' } } },
  { files: ['.dependency-cruiser.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } } },
  // k6 scripts: k6 up to 0.52 parses with a Babel that rejects syntax after ES2017 (`??`, `?.`,
  // object spread, numeric separators, `catch {}`), so espree at ecmaVersion 2017 refuses it here.
  // Types are checked by `tsc -p load-tests/tsconfig.json` (checkJs against @types/k6).
  { files: ['load-tests/**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['load-tests/**/*.js'],
    languageOptions: {
      parser: espree,
      ecmaVersion: 2017,
      sourceType: 'module',
      globals: { __ENV: 'readonly', __VU: 'readonly', __ITER: 'readonly', open: 'readonly', console: 'readonly' },
    },
    // ES2017 has no `catch {}`: an unused binding must be written.
    rules: { '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }] },
  },
);
