/**
 * `--metrics` on a taken address: `worker`, `agent` and `up` exit 2 naming the address, before connecting to Temporal
 * or starting anything (TEMPORAL_ADDRESS points at nothing; a start-up would fail otherwise, with exit 1).
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test/helpers/cli.ts';

describe('--metrics', () => {
  it('on a port in use: a clear error and exit 2 for worker, agent and up (also through CUTPOINT_METRICS_ADDRESS)', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(taken.address() as { port: number }).port}`;
    const env = { TEMPORAL_ADDRESS: '127.0.0.1:1' };
    try {
      const runs = await Promise.all([
        runCli(['worker', '--metrics', address], env),
        runCli(['agent', '--mongod', '127.0.0.1:27017'], { ...env, CUTPOINT_METRICS_ADDRESS: address }),
        runCli(['up', '--no-backup', '--metrics', address], env),
      ]);
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`cutpoint: BAD_USAGE: --metrics ${address}: the address is in use by another process`);
      }
    } finally {
      taken.close();
    }
  });
});
