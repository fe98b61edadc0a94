/**
 * The mongod-compatible single-node entry point (docs/simulator.md, "sim/bin/mongod"): the restore workflow starts it
 * exactly as it starts a real `mongod` binary, with mongod's own flags, and talks to it over the wire.
 *
 *   sim/bin/mongod --dbpath D --port P [--bind_ip H] [--replSet NAME] [--configsvr|--shardsvr] [--setParameter k=v]...
 *     [--auth] [--keyFile F [--clusterAuthMode keyFile|sendKeyFile]] [--directoryperdb] [--wiredTigerDirectoryForIndexes]
 *     [--wiredTigerCacheSizeGB G] [--enableEncryption --encryptionKeyFile F [--encryptionCipherMode AES256-CBC|AES256-GCM]]
 *
 * Like mongod it logs JSON lines on stdout (id 23016 "Waiting for connections" when ready), stops cleanly on
 * SIGTERM/SIGINT or the `shutdown` command (exit 0), and fails as mongod fails: exit 2 for refused options (the status
 * on stderr), 1 for a bad key file, 100 for an exception during startup (e.g. storage.bson's layout differs: 72
 * InvalidOptions), 14 for a fatal assertion (an encrypted dbpath opened without its key), naming the cause.
 */
import { existsSync } from 'node:fs';
import { KeyFileError } from '../lib/mongo/keyfile.ts';
import { Command, Option } from 'commander';
import type { Document } from 'mongodb';
import { simLogger } from './log.ts';
import { MongodNode } from './node/node.ts';
import { CommandError, ErrorCodes } from './wire/index.ts';
import { ReplicaSet } from './node/replset.ts';
import { initialConfig, REPLSET_CONFIG_NS, type ReplSetConfig } from './node/replset-config.ts';
import { serverLog as mongodLog } from './server-log.ts';
import { startupOptionError } from './node/startup-options.ts';
import type { ClusterAuthMode, SimNodeOptions } from './node/types.ts';
import type { CipherMode } from './storage/index.ts';

/** mongod's exit codes: `ExitCode::fail`, `badOptions`, `abrupt` (fatal assertions) and `uncaught`. */
const EXIT_FAILURE = 1;
const EXIT_BADOPTIONS = 2;
const EXIT_ABRUPT = 14;
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
  .option('--keyFile <file>', 'key file for internal authentication (implies --auth)')
  .option('--clusterAuthMode <mode>', 'keyFile | sendKeyFile (sendX509 | x509 need TLS: refused)')
  .option('--directoryperdb', "each database's files in a directory of its own")
  .option('--wiredTigerDirectoryForIndexes', 'collections and indexes in separate directories')
  .option('--oplogSize <mb>', 'size of the capped oplog in MB (oldest entries truncated past it)')
  .option('--wiredTigerCacheSizeGB <gb>', 'WiredTiger cache size (accepted and reported only)')
  .option('--enableEncryption', "PSMDB's encryption at rest (needs --encryptionKeyFile)")
  .option('--encryptionKeyFile <file>', 'master key of encryption at rest')
  .option('--encryptionCipherMode <mode>', 'AES256-CBC (default) | AES256-GCM')
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
    setParameter: string[]; community?: boolean; auth?: boolean; keyFile?: string; clusterAuthMode?: string;
    directoryperdb?: boolean; wiredTigerDirectoryForIndexes?: boolean; wiredTigerCacheSizeGB?: string; oplogSize?: string;
    enableEncryption?: boolean; encryptionKeyFile?: string; encryptionCipherMode?: string;
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
  const log = simLogger();
  const options: SimNodeOptions = {
    host: o.bind_ip === '0.0.0.0' ? '127.0.0.1' : o.bind_ip,
    port: o.port,
    dbpath: o.dbpath,
    replSet: o.replSet,
    clusterRole: o.configsvr ? 'configsvr' : o.shardsvr ? 'shardsvr' : undefined,
    setParameters,
    flavor: o.community ? 'community' : 'psmdb',
    auth: o.auth === true,
    ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
    ...(o.clusterAuthMode !== undefined ? { clusterAuthMode: o.clusterAuthMode as ClusterAuthMode } : {}),
    ...(o.directoryperdb ? { directoryPerDB: true } : {}),
    ...(o.wiredTigerDirectoryForIndexes ? { directoryForIndexes: true } : {}),
    ...(o.wiredTigerCacheSizeGB !== undefined ? { wiredTigerCacheSizeGB: Number(o.wiredTigerCacheSizeGB) } : {}),
    ...(o.oplogSize !== undefined ? { oplogSizeMB: Number(o.oplogSize) } : {}),
    ...(o.enableEncryption ? { enableEncryption: true } : {}),
    ...(o.encryptionKeyFile !== undefined ? { encryptionKeyFile: o.encryptionKeyFile } : {}),
    ...(o.encryptionCipherMode !== undefined ? { encryptionCipherMode: o.encryptionCipherMode as CipherMode } : {}),
    log,
  };
  // Options mongod refuses while parsing its command line: the status and a hint on stderr, exit 2.
  const refused = startupOptionError(options);
  if (refused) {
    process.stderr.write(`${refused.codeName}: ${refused.message}\ntry 'mongod --help' for more information\n`);
    return EXIT_BADOPTIONS;
  }
  let node: MongodNode;
  try {
    // Reads the key file (initializeServerSecurityGlobalState: a bad one exits 1 before the dbpath is touched).
    node = new MongodNode(options);
  } catch (e) {
    const err = e as { code?: number; codeName?: string; message?: string };
    process.stderr.write(`mongod (sim): startup failed: ${err.message ?? String(e)}\n`);
    if (e instanceof KeyFileError) {
      // The log id is the simulator's; the message, the exit code and the moment (before the dbpath) are mongod's.
      mongodLog('E', 'ACCESS', 20254, 'Read security file failed', { error: { code: e.code, codeName: e.codeName, errmsg: e.message } });
      return EXIT_FAILURE;
    }
    mongodLog('F', 'STORAGE', 28595, 'Terminating.', { error: { code: err.code, errmsg: err.message } });
    return EXIT_UNCAUGHT;
  }
  if (!existsSync(o.dbpath)) {
    mongodLog('F', 'STORAGE', 22280, `Data directory ${o.dbpath} not found. Create the missing directory or specify another path using (1) the --dbpath command line option, or (2) by adding the 'storage.dbPath' option in the configuration file.`);
    return EXIT_UNCAUGHT;
  }
  try {
    await node.start();
  } catch (e) {
    const err = e as { code?: number; codeName?: string; message?: string; exitCode?: number };
    if (err.exitCode === EXIT_ABRUPT) {
      mongodLog('F', 'STORAGE', err.code ?? 28595, 'Fatal assertion', { error: { code: err.code, errmsg: err.message } });
    } else if (err.code === 72) {
      mongodLog('E', 'CONTROL', 20557, 'DBException in initAndListen, terminating', { error: `${err.codeName ?? 'InvalidOptions'}: ${err.message ?? ''}` });
    } else {
      mongodLog('F', 'STORAGE', 28595, 'Terminating.', { error: { code: err.code, errmsg: err.message } });
    }
    process.stderr.write(`mongod (sim): startup failed: ${err.message ?? String(e)}\n`);
    return err.exitCode ?? EXIT_UNCAUGHT;
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
