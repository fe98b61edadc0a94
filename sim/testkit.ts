/**
 * Shared helpers for the simulator's own tests: quiet loggers, fast clusters, the mongod entry point as a process.
 * Not part of the simulator's API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { sleep } from '../lib/process.ts';
import { SimCluster, type ClusterOptions } from './cluster/cluster.ts';
import { simLogger } from './log.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongodNode } from './node/node.ts';
import { freePort } from '../lib/ports.ts';

export const MONGOD_BIN = fileURLToPath(new URL('./bin/mongod', import.meta.url));
export const MONGOS_BIN = fileURLToPath(new URL('./bin/mongos', import.meta.url));

/** sim/log.ts's logger, under the name the integration tests' helpers use. */
export const quietLog = simLogger;

/**
 * A cluster with test-sized timings: checkpoints every second, no-ops every 200 ms, 256 KiB journal files. Unless
 * the caller gives its `dir`, the cluster's data directory is removed when it stops.
 */
export async function startTestCluster(options: Partial<ClusterOptions> = {}): Promise<SimCluster> {
  const cluster = await SimCluster.start({ checkpointMs: 1000, noopMs: 200, logFileSize: 256 * 1024, log: simLogger(), ...options });
  if (options.dir === undefined) {
    const stop = cluster.stop.bind(cluster);
    cluster.stop = async () => {
      await stop();
      rmSync(cluster.dir, { recursive: true, force: true });
    };
  }
  return cluster;
}

/** lib/process.ts's, re-exported for the tests that already take their helpers from here. */
export { sleep };

/** Polls until `fn` returns a truthy value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

/** A standalone node (no replication) on a fresh dbpath and a direct client to it; `stop()` also removes the dbpath. */
export async function startStandalone(): Promise<{ node: MongodNode; client: MongoClient; stop: () => Promise<void> }> {
  const dbpath = mkdtempSync(join(tmpdir(), 'cutpoint-standalone-'));
  const node = new MongodNode({ port: await freePort(), dbpath, log: simLogger(), setParameters: { simFsync: false, simLogFileSize: 64 * 1024 } });
  await node.start();
  const client = direct(node.address);
  return {
    node,
    client,
    stop: async () => {
      await client.close();
      await node.stop();
      rmSync(dbpath, { recursive: true, force: true });
    },
  };
}

/** A direct connection to one node (secondary reads allowed). */
export function direct(host: string): MongoClient {
  return new MongoClient(`mongodb://${host}/?directConnection=true&readPreference=primaryPreferred`, { serverSelectionTimeoutMS: 5000 });
}

export interface MongodProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs sim/bin/mongod with mongod's flags; resolves once it waits for connections or has exited. */
export async function runMongod(args: string[]): Promise<MongodProcess> {
  return runServer(MONGOD_BIN, args);
}

/** Runs sim/bin/mongos with mongos's flags; resolves once it waits for connections or has exited. */
export async function runMongos(args: string[]): Promise<MongodProcess> {
  return runServer(MONGOS_BIN, args);
}

/** A running sim/bin/mongos (see {@link startMongosProcess}). */
export interface MongosProcess {
  /** `mongodb://127.0.0.1:<port>`: connect a driver here to read through the router. */
  readonly uri: string;
  readonly port: number;
  /** Its stdout and stderr so far (JSON log lines). */
  output(): string;
  /** Stops it with SIGTERM (idempotent) and returns its exit code. */
  stop(): Promise<number | null>;
}

export interface MongosProcessOptions {
  /** Port to listen on (a free one when absent). */
  port?: number;
  /** `--keyFile`. */
  keyFile?: string;
  /** `--setParameter name=value` each (e.g. `defaultFindReplicaSetHostTimeoutMS`). */
  setParameters?: Record<string, string | number>;
}

/**
 * Starts sim/bin/mongos over the config server replica set `configdb` (`<rs>/<host:port>,...`, as `--configdb` takes
 * it, e.g. a restored cluster's `cfg/127.0.0.1:P`) and resolves once it waits for connections; rejects with its output
 * when it exits first.
 */
export async function startMongosProcess(configdb: string, opts: MongosProcessOptions = {}): Promise<MongosProcess> {
  const port = opts.port ?? (await freePort());
  const args = ['--configdb', configdb, '--port', String(port)];
  if (opts.keyFile !== undefined) args.push('--keyFile', opts.keyFile);
  for (const [k, v] of Object.entries(opts.setParameters ?? {})) args.push('--setParameter', `${k}=${String(v)}`);
  const p = await runMongos(args);
  if (p.child.exitCode !== null || p.child.signalCode !== null) {
    throw new Error(`sim/bin/mongos ${args.join(' ')} exited (${String(p.child.exitCode ?? p.child.signalCode)}): ${p.output()}`);
  }
  let stopping: Promise<number | null> | undefined;
  return {
    uri: `mongodb://127.0.0.1:${port}`,
    port,
    output: p.output,
    stop: () => (stopping ??= stopMongod(p)),
  };
}

async function runServer(bin: string, args: string[]): Promise<MongodProcess> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  await eventually(() => done || out.includes('"Waiting for connections"'), 30_000, `${bin} to start or exit`);
  return { child, output: () => out, exited };
}

/** Stops a mongod (or mongos) process with SIGTERM and returns its exit code. */
export async function stopMongod(p: MongodProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}
