/**
 * `npm run bench -- <name> [options]`: cutpoint's benchmarks (bench/RESULTS.md). Each prints a table and writes a JSON
 * result with the machine, the command line, the date and the sizes. Not part of `npm test`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseInteger, parseIntegerList, parseSize } from '../../common/units.ts';
import { createLogger } from '../../lib/logger.ts';
import { benchCopy } from './bench-copy.ts';
import { benchFiles } from './bench-files.ts';
import { benchIncremental, PEERS, type Peer } from './bench-incremental.ts';
import { benchMemory } from './bench-memory.ts';
import { benchOrchestration } from './bench-orchestration.ts';
import { benchPitr } from './bench-pitr.ts';
import { benchRestore } from './bench-restore.ts';
import { benchS3 } from './bench-s3.ts';
import { canDropCaches, type CacheMode } from './page-cache.ts';
import { renderInto } from './render.ts';
import { GiB, machine, RESULTS_DIR, writeResult } from './report.ts';

/** A common/units.ts parser whose errors commander reports as an invalid option value. */
function arg<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** `4GiB`, `512MiB`, `1048576` → bytes, more than 0. */
const bytesArg = arg((v) => parseSize(v, 1));
/** A positive integer; `what` names the option. */
const positiveArg = (what: string) => arg((v) => parseInteger(v, what, 1));
/** `1GiB,4GiB` → their bytes, each more than 0. */
const sizesArg = arg((v) => v.split(',').map((x) => parseSize(x.trim(), 1)));
/** `1,4,16` → [1, 4, 16], positive integers; `what` names the option. */
const listArg = (what: string) => arg((v) => parseIntegerList(v, what, 1));
/** `restic` (or `none`) → the peers to run beside cutpoint. */
const peersArg = arg((v): Peer[] => {
  if (v === 'none') return [];
  const names = v.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(PEERS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`unknown peer ${unknown.join(', ')}: ${PEERS.join(', ')} or none`);
  return [...new Set(names)] as Peer[];
});

/** The defaults a run is compared with: a run at other sizes says so in its result. */
export const DEFAULTS = { size: 4 * GiB, runs: 3, shards: [1, 4, 16], files: [1000, 10_000, 100_000], sizes: [GiB, 4 * GiB, 16 * GiB], sealEveryMs: 1000, seconds: 180, noopMs: 1000 };

interface Opts {
  size: number;
  sizes: number[];
  runs: number;
  cache: 'auto' | CacheMode;
  throttle: number;
  shards: number[];
  files: number[];
  peers: Peer[];
  profile: boolean;
  dir?: string;
  out?: string;
  temporal?: string;
  namespace: string;
  sealEveryMs: number;
  seconds: number;
  noopMs: number;
}

const program = new Command('bench')
  .description('cutpoint benchmarks: copy | orchestration | files | restore | memory | incremental | s3 | pitr (bench/RESULTS.md); render rewrites its tables')
  .argument('<name>', 'copy | orchestration | files | restore | memory | incremental | s3 | pitr | render')
  .addOption(new Option('--size <bytes>', 'copy, restore, incremental, s3: data in the dbpath (4GiB, 512MiB, ...)').argParser(bytesArg).default(DEFAULTS.size, '4GiB'))
  .addOption(new Option('--sizes <list>', 'memory: data sizes, each with fresh workers (1GiB,4GiB,...)').argParser(sizesArg).default(DEFAULTS.sizes, '1GiB,4GiB,16GiB'))
  .addOption(new Option('--runs <n>', 'measured runs of each case (the median is reported)').argParser(positiveArg('--runs')).default(DEFAULTS.runs))
  .addOption(new Option('--cache <mode>', 'page cache before each copy: cold (dropped; needs root), warm (read first), auto').choices(['auto', 'cold', 'warm']).default('auto'))
  .addOption(new Option('--throttle <bytes>', 'copy: the throttle to hold, per second (default: half the unthrottled rate)').argParser(bytesArg).default(0, 'half'))
  .addOption(new Option('--shards <list>', 'orchestration: shard counts').argParser(listArg('--shards')).default(DEFAULTS.shards, '1,4,16'))
  .addOption(new Option('--files <list>', 'files: file counts').argParser(listArg('--files')).default(DEFAULTS.files, '1000,10000,100000'))
  .addOption(new Option('--peers <list>', `incremental: other backup tools to run beside cutpoint and cp -r (${PEERS.join(',')}; restic is built with Go on first use)`).argParser(peersArg).default([], 'none'))
  .addOption(new Option('--profile', "copy, restore: CPU-profile the backups' or the restores' agent; orchestration: the orchestrator and the agent of each case (node --cpu-prof); their busiest functions go into the result").default(false))
  .addOption(new Option('--seal-every-ms <ms>', 'pitr: the seal interval').argParser(positiveArg('--seal-every-ms')).default(DEFAULTS.sealEveryMs))
  .addOption(new Option('--seconds <n>', 'pitr: how long RPO is sampled').argParser(positiveArg('--seconds')).default(DEFAULTS.seconds))
  .addOption(new Option('--noop-ms <ms>', "pitr: the members' periodic no-op interval (an idle replica set's commit point moves only with it)").argParser(positiveArg('--noop-ms')).default(DEFAULTS.noopMs))
  .addOption(new Option('--dir <path>', 'work directory (on the filesystem to measure); a temporary one by default, removed after'))
  .addOption(new Option('--out <file>', 'result file (default bench/results/<name>.json)'))
  .addOption(new Option('--temporal <host:port>', 'use this Temporal server (a dev server is started by default)'))
  .addOption(new Option('--namespace <name>', 'namespace on --temporal').default('default'))
  .action(async (name: string, opts: Opts) => {
    if (name === 'render') {
      renderInto(join(dirname(RESULTS_DIR), 'RESULTS.md'));
      return;
    }
    const known = ['copy', 'orchestration', 'files', 'restore', 'memory', 'incremental', 's3', 'pitr'];
    if (!known.includes(name)) program.error(`unknown benchmark '${name}': one of ${known.join(', ')}, or render`);
    const log = createLogger(process.env.CUTPOINT_LOG_LEVEL ? undefined : 'warn');
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `cutpoint-bench-${name}-`));
    const droppable = opts.cache !== 'warm' && canDropCaches();
    const cache: CacheMode = opts.cache === 'auto' ? (droppable ? 'cold' : 'warm') : opts.cache;
    if (cache === 'cold' && !droppable) program.error('--cache cold needs to write /proc/sys/vm/drop_caches (run as root), or use --cache warm');
    const startedAt = new Date();
    const common = { dir, log, runs: opts.runs, cache, ...(opts.temporal ? { temporal: { address: opts.temporal, namespace: opts.namespace } } : {}) };
    let result: Record<string, unknown>;
    try {
      if (name === 'copy') result = await benchCopy({ ...common, size: opts.size, throttle: opts.throttle, profile: opts.profile });
      else if (name === 'restore') result = await benchRestore({ ...common, size: opts.size, profile: opts.profile });
      else if (name === 'memory') result = await benchMemory({ ...common, sizes: opts.sizes });
      else if (name === 's3') result = await benchS3({ ...common, size: opts.size });
      else if (name === 'incremental') result = await benchIncremental({ ...common, size: opts.size, peers: opts.peers });
      else if (name === 'orchestration') result = await benchOrchestration({ ...common, shards: opts.shards, profile: opts.profile });
      else if (name === 'pitr') result = await benchPitr({ ...common, sealEveryMs: opts.sealEveryMs, seconds: opts.seconds, noopMs: opts.noopMs });
      else result = await benchFiles({ ...common, files: opts.files });
    } finally {
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    }
    const sized =
      name === 'copy' || name === 'restore' || name === 'incremental' || name === 's3'
        ? opts.size === DEFAULTS.size
        : name === 'memory'
          ? `${opts.sizes}` === `${DEFAULTS.sizes}`
          : name === 'orchestration'
            ? `${opts.shards}` === `${DEFAULTS.shards}`
            : name === 'pitr'
              ? opts.sealEveryMs === DEFAULTS.sealEveryMs && opts.seconds === DEFAULTS.seconds && opts.noopMs === DEFAULTS.noopMs
              : `${opts.files}` === `${DEFAULTS.files}`;
    writeResult(
      name,
      {
        bench: name,
        date: startedAt.toISOString(),
        seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
        command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
        defaultSizes: sized && opts.runs === DEFAULTS.runs,
        machine: machine(dir === opts.dir ? dir : tmpdir()),
        ...result,
      },
      opts.out,
    );
  });

await program.parseAsync();
