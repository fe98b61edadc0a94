/** `cutpoint agent --mongod host:port [--mongod ...]`: agent workers, one task queue per mongod. */
import { Option, type Command } from 'commander';
import { CutpointError } from '../common/errors.ts';
import { normalizeHostPort } from '../common/task-queues.ts';
import { createAgentWorkers, type AgentTarget } from '../workers/agent.ts';
import { temporalTargetFromEnv } from '../lib/temporal-connection.ts';
import type { CliContext } from './context.ts';
import { serveWorkers } from './serve.ts';
import { connectWorker } from '../workers/runtime.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * Validates the command line before anything connects: pairs each --mongod with the --dbpath at the same position
 * (dbpaths are optional, but not partially given) and rejects a mongod given twice. BAD_USAGE on bad input.
 */
export function agentTargets(mongods: string[], dbpaths: string[]): AgentTarget[] {
  if (mongods.length === 0) throw new CutpointError('BAD_USAGE', 'agent: give at least one --mongod host:port');
  if (dbpaths.length > 0 && dbpaths.length !== mongods.length) {
    throw new CutpointError(
      'BAD_USAGE',
      `agent: ${mongods.length} --mongod but ${dbpaths.length} --dbpath; give one --dbpath per --mongod, in the same order, or none`,
    );
  }
  const seen = new Set<string>();
  return mongods.map((m, i) => {
    let mongod: string;
    try {
      mongod = normalizeHostPort(m);
    } catch (e) {
      throw new CutpointError('BAD_USAGE', `agent: --mongod ${(e as Error).message}`);
    }
    if (seen.has(mongod)) throw new CutpointError('BAD_USAGE', `agent: --mongod ${mongod} is given twice`);
    seen.add(mongod);
    const dbpath = dbpaths[i];
    return dbpath ? { mongod, dbpath } : { mongod };
  });
}

/** Adds the `agent` verb to `program`. */
export function registerAgent(program: Command, ctx: CliContext): void {
  program
    .command('agent')
    .description('run agent workers beside mongod(s): task queue "cutpoint-agent:<host:port>" per mongod')
    .addOption(new Option('--mongod <host:port>', 'a mongod this agent serves (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--dbpath <dir>', "that mongod's dbpath, in --mongod order (repeatable)").argParser(collect).default([]))
    .option('--metrics <host:port>', `serve Prometheus metrics at http://<host:port>/metrics (default $CUTPOINT_METRICS_ADDRESS; none when unset)`)
    .action(async (opts: { mongod: string[]; dbpath: string[]; metrics?: string }) => {
      const log = ctx.log();
      const targets = agentTargets(opts.mongod, opts.dbpath);
      const target = temporalTargetFromEnv();
      await serveWorkers(
        log,
        async () => {
          const connection = await connectWorker(target);
          try {
            const workers = await createAgentWorkers({ connection, namespace: target.namespace, targets, log });
            return { workers, close: () => connection.close() };
          } catch (e) {
            await connection.close();
            throw e;
          }
        },
        (metrics) => log.info({ mongods: targets.map((t) => t.mongod), address: target.address, metrics }, 'agent workers running'),
        { metrics: opts.metrics },
      );
    });
}
