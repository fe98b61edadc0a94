/** Server-level commands: buildInfo, ping, getCmdLineOpts, serverStatus, parameters, shutdown. */
import type { Document } from 'mongodb';
import { Double, Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandImpl } from '../types.ts';

/** PSMDB 7.0 reports `psmdbVersion`; the community flavour does not (cutpoint's capability check reads it). */
export const buildInfo: CommandImpl = ({ node }) => ({
  version: '7.0.14',
  gitVersion: 'sim',
  ...(node.flavor === 'psmdb' ? { psmdbVersion: '7.0.14-8' } : {}),
  versionArray: [7, 0, 14, 0],
  modules: [],
  allocator: 'tcmalloc',
  javascriptEngine: 'none',
  sysInfo: 'deprecated',
  bits: 64,
  debug: false,
  maxBsonObjectSize: 16 * 1024 * 1024,
  storageEngines: ['wiredTiger'],
  openssl: { running: 'disabled', compiled: 'disabled' },
});

export const ping: CommandImpl = () => ({});

/**
 * `getCmdLineOpts`: `argv` as the command line that starts this node would read, and `parsed` under mongod's YAML
 * option names, with only the options given (mongod's parsed options environment: `--keyFile` alone implies
 * authorization but does not add `security.authorization`). cutpoint reads it to carry the options a restore must
 * repeat (docs/psmdb-behaviour.md section 7.1).
 */
export const getCmdLineOpts: CommandImpl = ({ node }) => {
  const o = node.options;
  const argv = ['mongod', '--dbpath', node.dbpath, '--port', String(node.port), '--bind_ip', node.host];
  if (o.replSet) argv.push('--replSet', o.replSet);
  if (o.clusterRole) argv.push(`--${o.clusterRole}`);
  if (o.auth) argv.push('--auth');
  if (o.keyFile !== undefined) argv.push('--keyFile', o.keyFile);
  if (o.clusterAuthMode !== undefined) argv.push('--clusterAuthMode', o.clusterAuthMode);
  if (o.directoryPerDB) argv.push('--directoryperdb');
  if (o.directoryForIndexes) argv.push('--wiredTigerDirectoryForIndexes');
  if (o.wiredTigerCacheSizeGB !== undefined) argv.push('--wiredTigerCacheSizeGB', String(o.wiredTigerCacheSizeGB));
  if (o.enableEncryption) argv.push('--enableEncryption');
  if (o.encryptionKeyFile !== undefined) argv.push('--encryptionKeyFile', o.encryptionKeyFile);
  if (o.encryptionCipherMode !== undefined) argv.push('--encryptionCipherMode', o.encryptionCipherMode);
  if (o.oplogSizeMB !== undefined) argv.push('--oplogSize', String(o.oplogSizeMB));
  for (const [k, v] of Object.entries(o.setParameters ?? {})) argv.push('--setParameter', `${k}=${String(v)}`);

  const engineConfig: Document = {
    ...(o.wiredTigerCacheSizeGB !== undefined ? { cacheSizeGB: new Double(o.wiredTigerCacheSizeGB) } : {}),
    ...(o.directoryForIndexes ? { directoryForIndexes: true } : {}),
  };
  const storage: Document = {
    dbPath: node.dbpath,
    ...(o.directoryPerDB ? { directoryPerDB: true } : {}),
    ...(Object.keys(engineConfig).length ? { wiredTiger: { engineConfig } } : {}),
  };
  const security: Document = {
    ...(o.auth ? { authorization: 'enabled' } : {}),
    ...(o.clusterAuthMode !== undefined ? { clusterAuthMode: o.clusterAuthMode } : {}),
    ...(o.enableEncryption ? { enableEncryption: true } : {}),
    ...(o.encryptionCipherMode !== undefined ? { encryptionCipherMode: o.encryptionCipherMode } : {}),
    ...(o.encryptionKeyFile !== undefined ? { encryptionKeyFile: o.encryptionKeyFile } : {}),
    ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
  };
  return {
    argv,
    parsed: {
      net: { bindIp: node.host, port: node.port },
      storage,
      ...(o.replSet || o.oplogSizeMB !== undefined
        ? { replication: { ...(o.oplogSizeMB !== undefined ? { oplogSizeMB: o.oplogSizeMB } : {}), ...(o.replSet ? { replSet: o.replSet } : {}) } }
        : {}),
      ...(Object.keys(security).length ? { security } : {}),
      ...(o.clusterRole ? { sharding: { clusterRole: o.clusterRole } } : {}),
      ...(o.setParameters && Object.keys(o.setParameters).length ? { setParameter: o.setParameters } : {}),
    },
  };
};

export const serverStatus: CommandImpl = ({ node }) => {
  const engine = node.engine;
  const ckpt = engine.lastCheckpoint();
  return {
    host: node.address,
    version: '7.0.14',
    process: 'mongod',
    pid: Long.fromNumber(process.pid),
    uptime: (Date.now() - node.startedAt.getTime()) / 1000,
    localTime: new Date(),
    storageEngine: {
      name: 'wiredTiger',
      supportsCommittedReads: true,
      persistent: true,
      // isBackupCursorOpen(): false while fsyncLocked or during createBackup, though those pin the checkpoint too.
      backupCursorOpen: node.backup?.isBackupCursorOpen ?? engine.backupPinned,
    },
    metrics: { cursor: { open: { total: Long.fromNumber(node.cursors.size), noTimeout: Long.ZERO, pinned: Long.ZERO } } },
    wiredTiger: { checkpoint: { generation: ckpt.generation, timestamp: ckpt.timestamp } },
  };
};

export const getParameter: CommandImpl = ({ node, command }) => {
  const all = command.getParameter === '*' || command.allParameters === true;
  const names = Object.keys(command).filter((k) => k !== 'getParameter' && !k.startsWith('$') && k !== 'lsid' && k !== 'comment');
  if (!all && names.length === 0) throw new CommandError(ErrorCodes.InvalidOptions, 'no option found to get');
  return node.params.read(all ? '*' : names);
};

export const setParameter: CommandImpl = ({ node, command }) => {
  const names = Object.keys(command).filter((k) => k !== 'setParameter' && !k.startsWith('$') && k !== 'lsid' && k !== 'comment');
  if (names.length === 0) throw new CommandError(ErrorCodes.InvalidOptions, 'no option found to set, use help:true to see options ');
  let was: unknown;
  for (const n of names) was = node.params.set(n, command[n]);
  return { was };
};

/** `shutdown`: the node stops cleanly (final checkpoint) after answering, like `db.shutdownServer()`. */
export const shutdown: CommandImpl = ({ node, db, conn }) => {
  if (db !== 'admin') throw new CommandError(ErrorCodes.Unauthorized, 'shutdown may only be run against the admin database.');
  // mongod closes the connection instead of replying; the driver sees a network error, as with a real shutdown.
  setImmediate(() => {
    conn.close('shutdown');
    void node.stop().then(() => node.onShutdown?.());
  });
  return new Promise<Document>(() => undefined);
};

export const listDatabases: CommandImpl = ({ node }) => {
  const dbs = new Map<string, number>();
  for (const c of node.engine.listCollections()) {
    const db = c.ns.slice(0, c.ns.indexOf('.'));
    dbs.set(db, (dbs.get(db) ?? 0) + 1);
  }
  const databases = [...dbs.keys()].sort().map((name) => ({ name, sizeOnDisk: 4096, empty: false }));
  return { databases, totalSize: databases.length * 4096, totalSizeMb: 0 };
};

/** Sessions are not tracked in this layer yet: ending them is accepted. */
export const endSessions: CommandImpl = () => ({});
