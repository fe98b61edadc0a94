/** Shutdown-signal handling: failures of the shutdown itself, thrown or rejected, make the exit code non-zero. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { finalExitCode, onShutdownSignal, shutdownRequest, untilAborted } from './signals.ts';

const releases: Array<() => void> = [];
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let others: Array<[NodeJS.Signals, NodeJS.SignalsListener[]]> = [];

// process.emit(signal) below must reach only the handlers under test, not the test runner's own.
beforeEach(() => {
  others = SIGNALS.map((s) => [s, process.listeners(s)]);
  for (const s of SIGNALS) process.removeAllListeners(s);
});

afterEach(() => {
  releases.splice(0).forEach((r) => r());
  for (const [s, listeners] of others) listeners.forEach((l) => process.on(s, l));
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

const quiet = () => vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
const tick = () => new Promise((r) => setTimeout(r, 10));

describe('onShutdownSignal', () => {
  it.each([
    ['throws synchronously', () => {
      throw new Error('sync boom');
    }],
    ['rejects', () => Promise.reject(new Error('async boom'))],
  ])('catches a shutdown that %s and sets exit code 1', async (_how, shutdown) => {
    const write = quiet();
    releases.push(onShutdownSignal(shutdown));
    expect(() => process.emit('SIGTERM', 'SIGTERM')).not.toThrow();
    await tick();
    expect(process.exitCode).toBe(1);
    expect(write.mock.calls.map((c) => String(c[0])).join('')).toMatch(/error during shutdown: (sync|async) boom/);
  });
});

describe('shutdownRequest', () => {
  it('aborts its signal on the first SIGINT, which ends untilAborted', async () => {
    quiet();
    const req = shutdownRequest();
    releases.push(req.release);
    const pending = untilAborted(new Promise<string>(() => undefined), req.signal);
    process.emit('SIGINT', 'SIGINT');
    await expect(pending).resolves.toBeUndefined();
    expect(req.signal.aborted).toBe(true);
    await expect(untilAborted(Promise.resolve('x'), new AbortController().signal)).resolves.toBe('x');
  });
});

describe('finalExitCode', () => {
  it('keeps a non-zero code set by a failed shutdown instead of overwriting it with 0', () => {
    expect(finalExitCode(0, 1)).toBe(1);
    expect(finalExitCode(0, undefined)).toBe(0);
    expect(finalExitCode(2, 1)).toBe(2);
    expect(finalExitCode(0, 0)).toBe(0);
  });
});
