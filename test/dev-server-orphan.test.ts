/**
 * The dev server never outlives the Node process that started it, even when that process is SIGKILLed (no handler
 * of ours runs then): the watchdog shell notices and stops the server.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

const CHILD = fileURLToPath(new URL('./helpers/dev-server-child.ts', import.meta.url));

/** True when something accepts TCP connections on host:port. */
function answers(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    socket.setTimeout(1_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

describe('dev server lifetime', () => {
  it('dies within seconds when its parent Node process is SIGKILLed', async () => {
    const logDir = tempDir('cutpoint-orphan-');
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, logDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(() => stdout.includes('\n') || child.exitCode !== null, 90_000, 'the child to start a dev server');
      expect(child.exitCode, stderr).toBeNull();
      const { address } = JSON.parse(stdout.split('\n')[0]!) as { address: string };
      expect(await answers(address)).toBe(true);

      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      let up = true;
      while (up && Date.now() - killedAt < 10_000) {
        await new Promise((r) => setTimeout(r, 250));
        up = await answers(address);
      }
      expect(up, `server ${address} still answers 10 s after its parent was SIGKILLed`).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
