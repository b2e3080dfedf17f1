import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.data/**', 'bin/**', '*.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The console (#12): plain browser scripts, with Vue and Chart.js loaded as globals by console/index.html.
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        Vue: 'readonly',
        Chart: 'readonly',
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        crypto: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
      },
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../core-ledger/*',
                '../projections/*',
                '../api/*',
                '../security/*',
                '../pos-gateway/*',
                '../clearing/*',
                '../app/*',
                '../../core-ledger/*',
                '../../projections/*',
                '../../api/*',
                '../../security/*',
                '../../pos-gateway/*',
                '../../clearing/*',
                '../../app/*',
              ],
              message: 'Import another top-level folder only through its index.ts.',
            },
          ],
        },
      ],
    },
  },
);
