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
import { rmSync } from 'node:fs';

export const MONGOD_BIN = fileURLToPath(new URL('./bin/mongod', import.meta.url));

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
  const child = spawn(process.execPath, [MONGOD_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  await eventually(() => done || out.includes('"Waiting for connections"'), 30_000, 'mongod to start or exit');
  return { child, output: () => out, exited };
}

/** Stops a mongod process with SIGTERM and returns its exit code. */
export async function stopMongod(p: MongodProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}
