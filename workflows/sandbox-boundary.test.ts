/**
 * The determinism boundary is a lint rule, not a convention: Node built-ins and I/O modules are rejected in
 * workflows/ (and common/, which workflows import), while the same imports stay legal in activities/.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname });

async function messagesFor(filePath: string, code: string) {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint boundaries: the workflow sandbox and the layers', () => {
  it.each([
    "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    "import * as fs from 'fs';\nexport const x = fs;\n",
    "import { MongoClient } from 'mongodb';\nexport const x = MongoClient;\n",
    "import { heartbeat } from '@temporalio/activity';\nexport const x = heartbeat;\n",
    // Deep imports reach the same I/O code.
    "import { Collection } from 'mongodb/lib/collection';\nexport const x = Collection;\n",
    "import { pino } from 'pino/pino';\nexport const x = pino;\n",
    "import { Worker } from '@temporalio/worker/lib/worker';\nexport const x = Worker;\n",
    "import { Context } from '@temporalio/activity/lib/index';\nexport const x = Context;\n",
    "import { Connection } from '@temporalio/client/lib/connection';\nexport const x = Connection;\n",
    "import { readFile } from 'node:fs/promises';\nexport const x = readFile;\n",
    // A value (not type-only) import from activities/ or workers/ would bundle their I/O into the sandbox.
    "import { describeWorkerActivity } from '../activities/describe-worker.ts';\nexport const x = describeWorkerActivity;\n",
    "import { log } from '../lib/logger.ts';\nexport const x = log;\n",
  ])('rejects in workflows/: %s', async (code) => {
    const msgs = await messagesFor('workflows/health-check.ts', code);
    expect(msgs.some((m) => m.startsWith('no-restricted-imports'))).toBe(true);
  });

  it.each([
    "import { Collection } from 'mongodb/lib/collection';\nexport const x = Collection;\n",
    "import { Worker } from '@temporalio/worker/lib/worker';\nexport const x = Worker;\n",
    "import { describeWorkerActivity } from '../activities/describe-worker.ts';\nexport const x = describeWorkerActivity;\n",
  ])('rejects in common/: %s', async (code) => {
    const msgs = await messagesFor('common/task-queues.ts', code);
    expect(msgs.some((m) => m.startsWith('no-restricted-imports'))).toBe(true);
  });

  it('allows type-only imports of activities and Node-free modules in workflows/', async () => {
    const code =
      "import type { DescribeWorkerActivities } from '../activities/describe-worker.ts';\n" +
      "import { proxyActivities } from '@temporalio/workflow';\n" +
      "export const a = proxyActivities<DescribeWorkerActivities>({ startToCloseTimeout: '1 minute' });\n";
    expect(await messagesFor('workflows/health-check.ts', code)).toEqual([]);
  });

  it('allows Node built-ins in activities/', async () => {
    const code = "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n";
    expect(await messagesFor('activities/describe-worker.ts', code)).toEqual([]);
  });

  // The layers of docs/architecture.md: a planted import that climbs into a folder its layer may not use fails lint.
  it.each([
    ['activities/orchestrator/topology.ts', "import { prune } from '../../api/prune.ts';\nexport const x = prune;\n"],
    ['activities/agent/copy-batch.ts', "import { run } from '../../cli/program.ts';\nexport const x = run;\n"],
    ['activities/agent/copy-batch.ts', "import { SimCluster } from '../../sim/cluster/cluster.ts';\nexport const x = SimCluster;\n"],
    ['workers/agent.ts', "import { startStack } from '../scripts/demo/stack.ts';\nexport const x = startStack;\n"],
    ['workers/agent.ts', "import { startSimStack } from '../test/helpers/sim-stack.ts';\nexport const x = startSimStack;\n"],
    ['common/errors.ts', "import { freePort } from '../lib/ports.ts';\nexport const x = freePort;\n"],
    ['workflows/health-check.ts', "import { fsRepository } from '../repository/repository.ts';\nexport const x = fsRepository;\n"],
    ['lib/logger.ts', "import { fsRepository } from '../repository/repository.ts';\nexport const x = fsRepository;\n"],
    ['repository/repository.ts', "import { copyActivities } from '../activities/agent/copy-batch.ts';\nexport const x = copyActivities;\n"],
    ['api/backups.ts', "import { run } from '../cli/program.ts';\nexport const x = run;\n"],
    ['api/backups.ts', "import { SimCluster } from '../sim/cluster/cluster.ts';\nexport const x = SimCluster;\n"],
    ['cli/program.ts', "import { SimCluster } from '../sim/cluster/cluster.ts';\nexport const x = SimCluster;\n"],
    ['sim/mongod.ts', "import { CutpointError } from '../common/errors.ts';\nexport const x = CutpointError;\n"],
  ])('rejects a planted import in %s: %s', async (file, code) => {
    const msgs = await messagesFor(file, code);
    expect(msgs.some((m) => m.startsWith('no-restricted-imports'))).toBe(true);
  });

  it.each([
    ['cli/cmd-up.ts', "import { startStack } from '../scripts/demo/stack.ts';\nexport const x = startStack;\n"],
    ['scripts/demo/cluster.ts', "import { SimCluster } from '../../sim/cluster/cluster.ts';\nexport const x = SimCluster;\n"],
    ['activities/agent/copy-batch.ts', "import { fsRepository } from '../../repository/repository.ts';\nexport const x = fsRepository;\n"],
    ['sim/mongod.ts', "import { freePort } from '../lib/ports.ts';\nexport const x = freePort;\n"],
    ['api/backups.ts', "import { log } from '../lib/logger.ts';\nexport const x = log;\n"],
  ])('allows the layers below: %s: %s', async (file, code) => {
    expect(await messagesFor(file, code)).toEqual([]);
  });

  it('flags a floating promise anywhere', async () => {
    const code = 'async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n';
    const msgs = await messagesFor('activities/describe-worker.ts', code);
    expect(msgs.some((m) => m.startsWith('@typescript-eslint/no-floating-promises'))).toBe(true);
  });
});
