/** runWorkers: one failure stops all, the connection closes last, the original error comes back. */
import type { State } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { disposeWorkers, runWorkers, type RunnableWorker } from './run-workers.ts';

const log = createLogger('silent');

/** A stand-in Worker: run() settles when shut down, or fails when told to. */
class FakeWorker implements RunnableWorker {
  state: State = 'INITIALIZED';
  shutdownCalls = 0;
  private finish?: (error?: Error) => void;
  constructor(readonly events: string[], readonly name: string) {}
  getState(): State {
    return this.state;
  }
  run(): Promise<void> {
    this.state = 'RUNNING';
    return new Promise<void>((resolve, reject) => {
      this.finish = (error) => {
        this.events.push(`${this.name} stopped`);
        if (error) {
          this.state = 'FAILED';
          reject(error);
        } else {
          this.state = 'STOPPED';
          resolve();
        }
      };
    });
  }
  shutdown(): void {
    if (this.state !== 'RUNNING') throw new Error(`Not running. Current state: ${this.state}`);
    this.shutdownCalls++;
    this.state = 'DRAINING';
    setTimeout(() => this.finish?.(), 20);
  }
  fail(error: Error): void {
    this.finish?.(error);
  }
}

describe('runWorkers', () => {
  it('on the first failure shuts the others down, closes after all stopped, and rethrows the original error', async () => {
    const events: string[] = [];
    const [a, b, c] = [new FakeWorker(events, 'a'), new FakeWorker(events, 'b'), new FakeWorker(events, 'c')];
    const run = runWorkers([a, b, c], { log, close: async () => void events.push('closed') });
    const boom = new Error('poller crashed');
    b.fail(boom);
    await expect(run.done).rejects.toBe(boom);
    expect(a.shutdownCalls).toBe(1);
    expect(c.shutdownCalls).toBe(1);
    expect(b.shutdownCalls).toBe(0); // FAILED, not RUNNING: never asked
    expect(events.at(-1)).toBe('closed');
    expect(events.slice(0, 3).sort()).toEqual(['a stopped', 'b stopped', 'c stopped']);
  });

  it('shutdown() asks only RUNNING workers and is safe to call twice', async () => {
    const events: string[] = [];
    const [a, b] = [new FakeWorker(events, 'a'), new FakeWorker(events, 'b')];
    const run = runWorkers([a, b], { log, close: async () => void events.push('closed') });
    run.shutdown();
    run.shutdown(); // both DRAINING now: no second call
    await run.done;
    expect([a.shutdownCalls, b.shutdownCalls]).toEqual([1, 1]);
    expect(events).toEqual(['a stopped', 'b stopped', 'closed']);
  });

  it('reports a failure to close when every worker stopped cleanly', async () => {
    const run = runWorkers([new FakeWorker([], 'a')], { log, close: () => Promise.reject(new Error('close failed')) });
    run.shutdown();
    await expect(run.done).rejects.toThrow('close failed');
  });
});

describe('disposeWorkers', () => {
  it('starts and stops workers that never ran, so their connection can close', async () => {
    const events: string[] = [];
    const w = new FakeWorker(events, 'w');
    await disposeWorkers([w], log);
    expect(w.state).toBe('STOPPED');
    expect(w.shutdownCalls).toBe(1);
  });
});
