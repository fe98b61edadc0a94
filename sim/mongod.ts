/**
 * The mongod-compatible single-node entry point (docs/simulator.md, "sim/bin/mongod"): the restore workflow starts it
 * exactly as it starts a real `mongod` binary, with mongod's own flags, and talks to it over the wire.
 *
 *   sim/bin/mongod --dbpath D --port P [--bind_ip H] [--replSet NAME] [--configsvr|--shardsvr] [--setParameter k=v]...
 *
 * Like mongod it logs JSON lines on stdout (id 23016 "Waiting for connections" when ready), stops cleanly on
 * SIGTERM/SIGINT or the `shutdown` command (exit 0), and exits 100 when startup fails, naming the cause.
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { Document } from 'mongodb';
import { simLogger } from './log.ts';
import { MongodNode } from './node/node.ts';
import { CommandError, ErrorCodes } from './wire/index.ts';
import { ReplicaSet } from './node/replset.ts';
import { initialConfig, REPLSET_CONFIG_NS, type ReplSetConfig } from './node/replset-config.ts';
import { serverLog as mongodLog } from './server-log.ts';

const EXIT_UNCAUGHT = 100;

const collect = (v: string, prev: string[] = []) => [...prev, v];

const program = new Command('mongod')
  .description('cutpoint simulator: a mongod-compatible node')
  .requiredOption('--dbpath <dir>', 'data directory (must exist)')
  .option('--port <port>', 'port', (v) => Number(v), 27017)
  .option('--bind_ip <host>', 'address to bind', '127.0.0.1')
  .option('--bind_ip_all', 'bind every address (the simulator binds 127.0.0.1 only)')
  .option('--replSet <name>', 'replica set name')
  .addOption(new Option('--configsvr', 'config server role').conflicts('shardsvr'))
  .option('--shardsvr', 'shard server role')
  .option('--setParameter <name=value>', 'server parameter (repeatable)', collect, [])
  .option('--community', 'simulator only: pretend to be MongoDB Community (no $backupCursor)')
  .option('--auth', 'require authentication (users from admin.system.users; localhost exception while there are none)')
  .option('--quiet', 'accepted for compatibility')
  .exitOverride();

async function main(): Promise<number> {
  try {
    program.parse(process.argv);
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const o = program.opts<{
    dbpath: string; port: number; bind_ip: string; replSet?: string; configsvr?: boolean; shardsvr?: boolean;
    setParameter: string[]; community?: boolean; auth?: boolean;
  }>();
  const setParameters: Record<string, string> = {};
  for (const p of o.setParameter) {
    const eq = p.indexOf('=');
    if (eq <= 0) {
      mongodLog('F', 'CONTROL', 20574, 'Error during global initialization', { error: `Illegal --setParameter parameter: "${p}"` });
      return 2;
    }
    setParameters[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (!existsSync(o.dbpath)) {
    mongodLog('F', 'STORAGE', 22280, `Data directory ${o.dbpath} not found. Create the missing directory or specify another path using (1) the --dbpath command line option, or (2) by adding the 'storage.dbPath' option in the configuration file.`);
    return EXIT_UNCAUGHT;
  }
  const log = simLogger();
  let node: MongodNode;
  try {
    node = new MongodNode({
      host: o.bind_ip === '0.0.0.0' ? '127.0.0.1' : o.bind_ip,
      port: o.port,
      dbpath: o.dbpath,
      replSet: o.replSet,
      clusterRole: o.configsvr ? 'configsvr' : o.shardsvr ? 'shardsvr' : undefined,
      setParameters,
      flavor: o.community ? 'community' : 'psmdb',
      auth: o.auth === true,
      log,
    });
    await node.start();
  } catch (e) {
    const err = e as { code?: number; message?: string };
    mongodLog('F', 'STORAGE', 28595, 'Terminating.', { error: { code: err.code, errmsg: err.message } });
    process.stderr.write(`mongod (sim): startup failed: ${err.message ?? String(e)}\n`);
    return EXIT_UNCAUGHT;
  }

  const joinSet = (config: ReplSetConfig, joining = false) => {
    const rs = new ReplicaSet(config._id, config, log);
    rs.attach(node, { joining });
    rs.start();
    mongodLog('I', 'REPL', 21358, 'Replica set state transition', { newState: node.state });
  };
  if (o.replSet) {
    const stored = node.engine.findById(REPLSET_CONFIG_NS, o.replSet) as ReplSetConfig | undefined;
    if (stored && stored.members.some((m) => m.host === node.address)) joinSet(stored);
    else {
      node.initiate = async (given) => {
        const hasConfig = given !== undefined && given !== null && Object.keys(given).length > 0;
        if (hasConfig && !Array.isArray(given.members)) throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, 'Missing expected field "members"');
        const config = hasConfig
          ? initialConfig(String(given._id ?? o.replSet), (given.members as Document[]) ?? [], Boolean(given.configsvr))
          : initialConfig(o.replSet!, [{ _id: 0, host: node.address }], Boolean(o.configsvr));
        if (config._id !== o.replSet) {
          throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `Attempting to initiate a replica set with name ${config._id}, but command line reports ${o.replSet}; rejecting`);
        }
        if (!config.members.some((m) => m.host === node.address)) {
          throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `No host described in new configuration with version 1 for replica set ${config._id} maps to this node`);
        }
        joinSet(config);
      };
      // A running set that adds this member delivers its config through heartbeats (node/heartbeat.ts), as mongod's do.
      node.adoptConfig = (config) => {
        mongodLog('I', 'REPL', 21392, 'New replica set config in use', { config: { _id: config._id, version: config.version, members: config.members.map((m) => m.host) } });
        joinSet(config, true);
      };
    }
  }

  mongodLog('I', 'NETWORK', 23016, 'Waiting for connections', { port: o.port, ssl: 'off' });
  return new Promise<number>((resolve) => {
    const stop = async (why: string) => {
      mongodLog('I', 'CONTROL', 23377, 'Received signal', { signal: why });
      await node.rs?.stop();
      await node.stop();
      mongodLog('I', 'CONTROL', 20565, 'Now exiting');
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    node.onShutdown = () => {
      void (node.rs?.stop() ?? Promise.resolve()).then(() => {
        mongodLog('I', 'CONTROL', 20565, 'Now exiting');
        resolve(0);
      });
    };
  });
}

process.exitCode = await main();
// Open handles (timers are unref'd, but sockets may linger a moment): leave promptly like mongod.
setTimeout(() => process.exit(process.exitCode ?? 0), 50).unref();
