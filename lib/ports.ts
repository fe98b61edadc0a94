/**
 * Free TCP ports for servers that are told their port before they bind it (a replica set's config names every
 * member's port before any member listens).
 *
 * Why not `listen(0)`: the kernel hands out listening ports from the same ephemeral range it uses for the local
 * end of outgoing connections. Between choosing a port and binding it (seconds, when a 16-node cluster boots one
 * node after another) any outgoing connection of the same machine (a driver, a Temporal worker) may take it, and
 * the bind fails with EADDRINUSE. Ports below the ephemeral range are never used for outgoing connections, so a
 * port chosen there stays free unless another server deliberately binds it.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports handed out by this process and not yet known to be bound: never handed out twice. */
const handedOut = new Set<number>();

/** The lowest port of the kernel's ephemeral range (Linux default 32768; other systems: a conservative guess). */
function ephemeralLow(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && Number.isInteger(lo) && lo > 0) return lo;
  } catch {
    // not Linux
  }
  return 32768;
}

function tryListen(ip: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: ip, port, exclusive: true }, () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

/**
 * A TCP port on `ip` that is free now and outside the ephemeral range: `preferred` when free, else a random one
 * between 10000 and the ephemeral range's start; the kernel's choice (`listen(0)`) only when that range is too
 * small or every try failed.
 */
export async function freePort(ip = '127.0.0.1', preferred?: number): Promise<number> {
  if (preferred) {
    try {
      return await tryListen(ip, preferred);
    } catch {
      // taken: fall through
    }
  }
  const lo = 10_000;
  const hi = ephemeralLow() - 1;
  if (hi - lo >= 1000) {
    for (let i = 0; i < 50; i++) {
      const candidate = lo + Math.floor(Math.random() * (hi - lo + 1));
      if (handedOut.has(candidate)) continue;
      try {
        const p = await tryListen(ip, candidate);
        handedOut.add(p);
        return p;
      } catch {
        // in use: another candidate
      }
    }
  }
  return tryListen(ip, 0);
}
