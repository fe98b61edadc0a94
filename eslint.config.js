// @ts-check
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, and no module that pulls them in.
// samples-typescript enforces the same boundary with no-restricted-imports.
const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
const workflowBanned = [
  ...nodeBuiltins,
  'mongodb',
  'pino',
  'commander',
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
];
// Deep imports of the same packages (`mongodb/lib/...`, `@temporalio/worker/lib/...`) pull in the same I/O code.
const workflowBannedDeep = workflowBanned.filter((m) => !nodeBuiltins.includes(m)).map((m) => `${m}/*`);
const SANDBOX_MESSAGE = 'workflows/ and common/ run in the deterministic workflow sandbox: no Node built-ins or I/O modules';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.cache/**', 'test/fixtures/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'common/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: workflowBanned.map((name) => ({ name, message: SANDBOX_MESSAGE })),
          patterns: [
            { group: workflowBannedDeep, message: SANDBOX_MESSAGE },
            {
              group: ['**/activities', '**/activities/**', '**/workers', '**/workers/**', '**/scripts', '**/scripts/**', '**/sim', '**/sim/**'],
              allowTypeImports: true,
              message: 'workflow code may import only types from activities/workers/scripts/sim',
            },
          ],
        },
      ],
    },
  },
);
