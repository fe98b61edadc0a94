import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './ports.ts';

const listening: Server[] = [];
const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(s));
    listening.push(s);
  });
afterEach(async () => {
  await Promise.all(listening.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('freePort', () => {
  it('chooses bindable ports below the ephemeral range, never the same one twice', async () => {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports: number[] = [];
    for (let i = 0; i < 40; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(10_000);
      expect(p).toBeLessThan(lo);
    }
    await Promise.all(ports.map(listen));
  });

  it('returns the preferred port when free and another when it is taken', async () => {
    const p = await freePort();
    expect(await freePort('127.0.0.1', p)).toBe(p);
    await listen(p);
    const other = await freePort('127.0.0.1', p);
    expect(other).not.toBe(p);
    await listen(other);
  });
});
