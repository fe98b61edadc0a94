import { describe, expect, it } from 'vitest';
import { limiterKey, RateLimiter, RateLimiterRegistry } from './rate-limiter.ts';
import { sleep } from '../../../lib/process.ts';

const MB = 1_000_000;

/** `workers` loops taking `chunk` bytes until `stop()` returns true; returns the bytes taken with their times. */
function pump(limiter: RateLimiter, workers: number, chunk: number, stop: () => boolean) {
  const log: Array<{ at: number; bytes: number }> = [];
  const done = Promise.all(
    Array.from({ length: workers }, async () => {
      while (!stop()) {
        await limiter.take(chunk);
        log.push({ at: performance.now(), bytes: chunk });
      }
    }),
  );
  const bytesBetween = (from: number, to: number) => log.filter((e) => e.at >= from && e.at < to).reduce((n, e) => n + e.bytes, 0);
  return { done, log, bytesBetween };
}


describe('RateLimiter', () => {
  // Timing here runs beside the integration suite on 2 cores: a starved process only ever copies slower, so the
  // checks bound what a limiter must never do (exceed its rate, keep a released waiter waiting) with wide margins,
  // and compare rates by ratio rather than to the wall clock's exact figures.
  it('never exceeds 4 MB/s over 2 s (at most +15%), shared by 4 concurrent copies, and does not crawl', async () => {
    const limiter = new RateLimiter(4 * MB);
    const t0 = performance.now();
    const p = pump(limiter, 4, 256 * 1024, () => performance.now() - t0 >= 2000);
    await p.done;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = p.bytesBetween(t0, Infinity) / elapsed;
    expect(rate).toBeGreaterThan(4 * MB * 0.5);
    expect(rate).toBeLessThan(4 * MB * 1.15);
  });

  it('a rate change takes effect within a second, up and down', async () => {
    const limiter = new RateLimiter(1 * MB);
    const t0 = performance.now();
    const p = pump(limiter, 3, 128 * 1024, () => performance.now() - t0 >= 3300);
    await sleep(1000);
    const up = performance.now();
    limiter.setRate(6 * MB);
    await sleep(1100);
    const down = performance.now();
    limiter.setRate(1 * MB);
    await p.done;
    // The second after each change, starting 0.1 s in.
    const afterUp = p.bytesBetween(up + 100, up + 1100);
    const afterDown = p.bytesBetween(down + 100, down + 1100);
    expect(afterUp).toBeLessThan(6 * MB * 1.2);
    expect(afterDown).toBeLessThan(1 * MB * 1.4);
    // Six times the rate after the rise than after the fall (3 leaves room for a starved second).
    expect(afterUp / afterDown).toBeGreaterThan(3);
  });

  it('a waiter with a long wait is released when the rate rises or becomes unlimited', async () => {
    const limiter = new RateLimiter(100_000); // a 10 MB take would wait 100 s
    const t0 = performance.now();
    const big = limiter.take(10 * MB);
    await sleep(50);
    expect(limiter.waiting).toBe(1);
    limiter.setRate(0);
    await big;
    expect(performance.now() - t0).toBeLessThan(5000); // not the 100 s the take would wait
    expect(limiter.waiting).toBe(0);
    await limiter.take(100 * MB); // unlimited: immediate
  });

  it('0 is unlimited', async () => {
    const limiter = new RateLimiter(0);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) await limiter.take(10 * MB);
    expect(performance.now() - t0).toBeLessThan(5000); // 10 GB: any finite rate would take far longer
  });

  it('an aborted wait rejects at once with the signal reason, and later takes are not charged for it', async () => {
    const limiter = new RateLimiter(1 * MB);
    const ac = new AbortController();
    const t0 = performance.now();
    const waiting = limiter.take(5 * MB, ac.signal);
    setTimeout(() => ac.abort(new Error('cancelled by test')), 50);
    await expect(waiting).rejects.toThrow('cancelled by test');
    expect(performance.now() - t0).toBeLessThan(2500); // not the 5 s the take would wait
    expect(limiter.waiting).toBe(0);
    const t1 = performance.now();
    await limiter.take(100_000);
    expect(performance.now() - t1).toBeLessThan(2500); // 0.1 s, not the 5.1 s of a limiter charged for the aborted 5 MB
    await expect(limiter.take(1, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('concurrent copies get fair shares', async () => {
    const limiter = new RateLimiter(4 * MB);
    const t0 = performance.now();
    const per = [0, 0];
    await Promise.all(
      per.map(async (_, k) => {
        while (performance.now() - t0 < 1000) {
          await limiter.take(k === 0 ? 64 * 1024 : 256 * 1024);
          per[k]! += k === 0 ? 64 * 1024 : 256 * 1024;
        }
      }),
    );
    // Small-chunk and large-chunk copies each get a real share (arrival-order service, not starvation).
    expect(Math.min(...per) / Math.max(...per)).toBeGreaterThan(0.15);
  });
});

describe('RateLimiterRegistry', () => {
  it('shares one limiter per key between concurrent holders and forgets it with the last one', () => {
    const reg = new RateLimiterRegistry();
    const key = limiterKey('backup-1', 'rs0');
    expect(key).toBe('backup-1/rs0');
    const a = reg.acquire(key, 5 * MB);
    const b = reg.acquire(key);
    const other = reg.acquire(limiterKey('backup-1', 'rs1'), 1 * MB);
    expect(b.limiter).toBe(a.limiter);
    expect(other.limiter).not.toBe(a.limiter);
    expect(a.limiter.rate).toBe(5 * MB);
    expect(reg.setRate(key, 7 * MB)).toBe(true);
    expect(b.limiter.rate).toBe(7 * MB);
    const c = reg.acquire(key, 3 * MB); // the newest throttle wins
    expect(a.limiter.rate).toBe(3 * MB);
    a.release();
    a.release();
    b.release();
    expect(reg.get(key)).toBe(c.limiter);
    c.release();
    expect(reg.get(key)).toBeUndefined();
    expect(reg.setRate(key, 1)).toBe(false);
    expect(reg.keys()).toEqual(['backup-1/rs1']);
    other.release();
  });
});
