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

// The layers (docs/architecture.md, "Layout"): each folder may import only the folders below it. A relative import
// that climbs into a folder the layer may not use is refused; `allowTypeImports` lets workflow code name the types of
// the activities it schedules without bundling their code.
const folder = (name) => `^(\\.\\./)+${name}/`;
const LAYER_MESSAGE = {
  api: 'the client API (api/) is a front door: only the CLI, tooling and tests import it',
  cli: 'the CLI (cli/) is a front door: nothing imports it but tests',
  scripts: 'scripts/ is tooling (Temporal provisioning, the demo stack, benchmarks): the product does not import it',
  sim: 'sim/ is imported only by tests, tooling (scripts/) and the demo stack',
  test: 'test/ helpers are for tests only',
  node: 'workflows/ and common/ run in the deterministic workflow sandbox: only types from Node-side folders',
};
/** no-restricted-imports patterns refusing relative imports of the named folders. */
const refuse = (names, message, allowTypeImports = false) =>
  names.map((name) => ({ regex: folder(name), message: message ?? LAYER_MESSAGE[name], ...(allowTypeImports ? { allowTypeImports } : {}) }));
const productBans = refuse(['api', 'cli', 'scripts', 'sim', 'test']);
const sandboxBans = [
  { group: workflowBannedDeep, message: SANDBOX_MESSAGE },
  ...refuse(['api', 'cli', 'scripts', 'sim', 'test']),
  ...refuse(['activities', 'workers', 'lib', 'repository'], LAYER_MESSAGE.node, true),
];
const restrict = (paths, patterns) => ({ 'no-restricted-imports': ['error', { paths, patterns }] });

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
    rules: restrict(
      workflowBanned.map((name) => ({ name, message: SANDBOX_MESSAGE })),
      sandboxBans,
    ),
  },
  {
    // Node-only shared helpers: below everything but common/.
    files: ['lib/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([], [...productBans, ...refuse(['activities', 'workers', 'workflows', 'repository'], 'lib/ holds shared Node helpers: it imports only common/ and lib/')]),
  },
  {
    // The repository layer: storage backends, format, locks. Used by activities, workers and the client API.
    files: ['repository/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.conformance.ts'],
    rules: restrict([], [...productBans, ...refuse(['activities', 'workers', 'workflows'], 'repository/ sits below the activities and workers that use it')]),
  },
  {
    files: ['activities/**/*.ts', 'workers/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([], productBans),
  },
  {
    files: ['api/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([], refuse(['cli', 'scripts', 'sim', 'test'])),
  },
  {
    files: ['cli/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([], refuse(['sim', 'test'])),
  },
  {
    // The simulator stands alone (it plays mongod): only lib/'s helpers.
    files: ['sim/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: restrict([], refuse(['api', 'cli', 'scripts', 'test', 'activities', 'workers', 'workflows', 'repository', 'common'], 'sim/ plays mongod and stands alone: it imports only sim/ and lib/')),
  },
);
