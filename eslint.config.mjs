import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.data/**', 'bin/**', '*.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
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
