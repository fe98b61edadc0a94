/**
 * The mongos-compatible router entry point (docs/simulator.md, "sim/bin/mongos"): a router over a config server
 * replica set and shards that run in other processes (sim/cluster/remote-router.ts), started with mongos's own flags,
 * as an operator starts a mongos over a restored cluster to read through it.
 *
 *   sim/bin/mongos --configdb <cfgRs>/<host>,... --port P [--bind_ip H] [--keyFile F] [--setParameter k=v]...
 *
 * Like mongos it logs JSON lines on stdout (id 23016 "Waiting for connections" when ready) and stops on SIGTERM/SIGINT
 * (exit 0). It listens without waiting for the config server: a command that needs it fails once
 * `defaultFindReplicaSetHostTimeoutMS` has passed. Bad options exit 2, a port it cannot bind 48, as mongos's do.
 */
import { Command } from 'commander';
import { simLogger } from './log.ts';
import { RemoteRouter } from './cluster/remote-router.ts';
import { serverLog } from './server-log.ts';
import { KeyFileError, readKeyFile } from '../lib/mongo/keyfile.ts';

const EXIT_BADOPTIONS = 2;
const EXIT_NET_ERROR = 48;

/** The parameters this router knows (`--setParameter name=value`), all mongos's own, with their defaults. */
const PARAMETERS: Record<string, number> = {
  defaultFindReplicaSetHostTimeoutMS: 20_000,
  cursorTimeoutMillis: 600_000,
};

const collect = (v: string, prev: string[] = []) => [...prev, v];

const program = new Command('mongos')
  .description('cutpoint simulator: a mongos-compatible router over replica sets in other processes')
  .requiredOption('--configdb <rs/hosts>', 'config server replica set: <name>/<host:port>,...')
  .option('--port <port>', 'port', (v) => Number(v), 27017)
  .option('--bind_ip <host>', 'address to bind', '127.0.0.1')
  .option('--bind_ip_all', 'bind every address (the simulator binds 127.0.0.1 only)')
  .option('--keyFile <file>', 'key file: the router authenticates to the members as __system with it (internal authentication)')
  .option('--setParameter <name=value>', 'server parameter (repeatable)', collect, [])
  .option('--quiet', 'accepted for compatibility')
  .exitOverride();

function fail(code: number, error: string): number {
  serverLog('F', 'CONTROL', 20574, 'Error during global initialization', { error });
  process.stderr.write(`mongos (sim): ${error}\n`);
  return code;
}

async function main(): Promise<number> {
  try {
    program.parse(process.argv);
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : EXIT_BADOPTIONS;
  }
  const o = program.opts<{ configdb: string; port: number; bind_ip: string; keyFile?: string; setParameter: string[] }>();
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) return fail(EXIT_BADOPTIONS, `Bad value for --port: ${String(o.port)}`);
  const params = { ...PARAMETERS };
  for (const p of o.setParameter) {
    const eq = p.indexOf('=');
    const name = p.slice(0, eq);
    const value = Number(p.slice(eq + 1));
    if (eq <= 0) return fail(EXIT_BADOPTIONS, `Illegal --setParameter parameter: "${p}"`);
    if (!(name in PARAMETERS)) return fail(EXIT_BADOPTIONS, `Unknown --setParameter '${name}'`);
    if (!Number.isInteger(value) || value < 0) return fail(EXIT_BADOPTIONS, `Bad value for parameter "${name}": ${p.slice(eq + 1)}`);
    params[name] = value;
  }
  if (o.keyFile !== undefined) {
    // As mongod (sim/mongod.ts): a key file mongos would refuse ends it (exit 1) before it listens.
    try {
      readKeyFile(o.keyFile);
    } catch (e) {
      if (!(e instanceof KeyFileError)) throw e;
      serverLog('E', 'ACCESS', 20254, 'Read security file failed', { error: { code: e.code, codeName: e.codeName, errmsg: e.message } });
      process.stderr.write(`mongos (sim): ${e.message}\n`);
      return 1;
    }
  }
  let router: RemoteRouter;
  try {
    router = new RemoteRouter({
      configdb: o.configdb,
      host: o.bind_ip === '0.0.0.0' ? '127.0.0.1' : o.bind_ip,
      port: o.port,
      findHostTimeoutMs: params.defaultFindReplicaSetHostTimeoutMS,
      cursorTimeoutMs: params.cursorTimeoutMillis,
      keyFile: o.keyFile,
      argv: ['mongos', ...process.argv.slice(2)],
      log: simLogger('sim-mongos'),
    });
  } catch (e) {
    return fail(EXIT_BADOPTIONS, `BadValue: ${(e as Error).message}`);
  }
  try {
    await router.start();
  } catch (e) {
    await router.stop();
    return fail(EXIT_NET_ERROR, `Failed to set up listener: ${(e as Error).message}`);
  }
  serverLog('I', 'NETWORK', 23016, 'Waiting for connections', { port: router.port, ssl: 'off' });
  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      serverLog('I', 'CONTROL', 23377, 'Received signal', { signal });
      await router.stop();
      serverLog('I', 'CONTROL', 20565, 'Now exiting');
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}

process.exitCode = await main();
// Open handles (timers are unref'd, but sockets may linger a moment): leave promptly like mongos.
setTimeout(() => process.exit(process.exitCode ?? 0), 50).unref();
