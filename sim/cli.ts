/**
 * `npm run -s sim -- up …`: starts a simulated cluster and prints, when every node answers, one JSON line on stdout
 * (docs/interfaces.md section 1); runs until SIGTERM/SIGINT, then shuts every node down cleanly. Logs go to stderr.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { SimCluster } from './cluster/cluster.ts';
import { BankWorkload } from './cluster/bank.ts';
import { simLogger } from './log.ts';

function int(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`);
    return n;
  };
}

const program = new Command('sim').description('the cutpoint mongod simulator').exitOverride();

program
  .command('up')
  .description('start a simulated sharded cluster (or one replica set) and print its JSON description')
  .option('--shards <n>', 'shard replica sets', int('--shards', 1), 2)
  .option('--members <m>', 'members per replica set', int('--members', 1), 3)
  .option('--base-port <p>', 'first port (consecutive ports follow); free ports when absent', int('--base-port', 1))
  .option('--dir <d>', 'parent directory of the dbpaths (a temp dir when absent)')
  .option('--lag-ms <l>', 'replication lag of secondaries', int('--lag-ms'), 0)
  .option('--checkpoint-ms <c>', 'checkpoint interval per node (staggered)', int('--checkpoint-ms', 1), 60_000)
  .option('--cursor-timeout-ms <t>', 'cursorTimeoutMillis: idle life of cursors opened outside a session', int('--cursor-timeout-ms', 1))
  .option('--session-timeout-ms <s>', 'idle life of a logical session and so of its cursors (mongod: 30 min)', int('--session-timeout-ms', 1))
  .option('--noop-ms <k>', 'periodic no-op writer interval of primaries', int('--noop-ms', 1), 10_000)
  .option('--log-file-size <bytes>', 'preallocated journal file size', int('--log-file-size', 4096))
  .option('--auth', 'require SCRAM authentication; creates the users printed in the JSON line')
  .option('--replset-only', 'one replica set, no config server, no mongos')
  .option('--config-shard', 'MongoDB 8.0 config shard: the config server replica set is also a shard (listShards id "config")')
  .option('--community', 'pretend to be MongoDB Community (no $backupCursor)')
  .option('--key-file <path>', '--keyFile of every node: internal authentication (implies --auth)')
  .option('--directory-per-db', '--directoryperdb on every node')
  .option('--directory-for-indexes', '--wiredTigerDirectoryForIndexes on every node')
  .option('--encryption-key-file <path>', '--enableEncryption --encryptionKeyFile <path> on every node')
  .option('--oplog-size-mb <mb>', '--oplogSize of every node: capped oplog size in MB (a fraction allowed; unset: never truncated)', positive('--oplog-size-mb'))
  .addOption(new Option('--workload <name>', 'run a workload while up').choices(['bank']))
  .action(async (o: Record<string, unknown>) => {
    const log = simLogger();
    if (o.configShard && o.replsetOnly) throw new InvalidArgumentError('--config-shard needs a sharded cluster, not --replset-only');
    const cluster = await SimCluster.start({
      shards: o.shards as number,
      members: o.members as number,
      basePort: o.basePort as number | undefined,
      dir: o.dir as string | undefined,
      lagMs: o.lagMs as number,
      checkpointMs: o.checkpointMs as number,
      cursorTimeoutMs: o.cursorTimeoutMs as number | undefined,
      sessionTimeoutMs: o.sessionTimeoutMs as number | undefined,
      auth: Boolean(o.auth),
      noopMs: o.noopMs as number,
      logFileSize: o.logFileSize as number | undefined,
      replsetOnly: Boolean(o.replsetOnly),
      configShard: Boolean(o.configShard),
      flavor: o.community ? 'community' : 'psmdb',
      keyFile: o.keyFile as string | undefined,
      directoryPerDB: Boolean(o.directoryPerDb),
      directoryForIndexes: Boolean(o.directoryForIndexes),
      encryptionKeyFile: o.encryptionKeyFile as string | undefined,
      oplogSizeMB: o.oplogSizeMb as number | undefined,
      log,
    });
    const workload = o.workload === 'bank' ? await BankWorkload.start(cluster, { log }) : undefined;
    process.stdout.write(JSON.stringify(cluster.describe()) + '\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    workload?.stop();
    await cluster.stop();
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as { code?: string; exitCode?: number; message?: string };
  if (err.code?.startsWith('commander.')) process.exitCode = err.exitCode === 0 ? 0 : 2;
  else {
    process.stderr.write(`sim: ${err.message ?? String(e)}\n`);
    process.exitCode = 2;
  }
}
