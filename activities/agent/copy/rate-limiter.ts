/**
 * {@link RateLimiter}: a token bucket in bytes per second, shared by the concurrent copies of one replica set, whose
 * rate may change while they run (the `setThrottle` update). {@link rateLimiters} is the process-wide registry that
 * lets concurrent activities of one backup and replica set find the same limiter by key.
 *
 * Model: the bucket holds at most `rate × burstSeconds` tokens and may go into debt. `take(n)` reserves `n` tokens
 * at once (so waiters are served in arrival order and the long-run rate is exact) and then waits until the refill
 * since its reservation has paid its share of the debt. The wait is recomputed whenever the rate changes, so a
 * higher or unlimited rate releases waiters at once and a lower one slows them from that moment on.
 *
 * @module
 */

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Seconds of tokens the bucket may hold when idle (the largest burst). Default 0.05 s. */
  burstSeconds?: number;
  /** Clock in milliseconds (tests). Default `performance.now`. */
  now?: () => number;
}

interface Waiter {
  /** The cumulative refill at which this waiter may go. */
  target: number;
  resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

/** A token bucket of bytes per second; 0 means unlimited. Safe to share between any number of concurrent copies. */
export class RateLimiter {
  #rate: number;
  readonly #burstSeconds: number;
  readonly #now: () => number;
  /** Tokens in the bucket; negative while copies are in debt. */
  #tokens = 0;
  /** Total tokens refilled since creation: the clock waiters' targets are expressed in. */
  #refilled = 0;
  #last: number;
  readonly #waiters = new Set<Waiter>();

  /** @param bytesPerSec the initial rate; 0 or less is unlimited. */
  constructor(bytesPerSec = 0, options: RateLimiterOptions = {}) {
    this.#burstSeconds = options.burstSeconds ?? 0.05;
    this.#now = options.now ?? (() => performance.now());
    this.#rate = Math.max(0, bytesPerSec);
    this.#last = this.#now();
    this.#tokens = this.#capacity();
  }

  /** The current rate in bytes per second (0 = unlimited). */
  get rate(): number {
    return this.#rate;
  }

  /** Copies waiting for tokens right now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Changes the rate for every copy using this limiter, effective at once: waiting copies recompute their wait
   * (0 releases them). Debt already taken at the old rate is paid at the new one.
   */
  setRate(bytesPerSec: number): void {
    const rate = Number.isFinite(bytesPerSec) ? Math.max(0, bytesPerSec) : 0;
    this.#refill();
    this.#rate = rate;
    if (rate === 0) this.#tokens = 0;
    else this.#tokens = Math.min(this.#tokens, this.#capacity());
    for (const w of this.#waiters) this.#schedule(w);
  }

  /**
   * Waits until `bytes` may be transferred. Resolves at once when unlimited. Rejects with `signal.reason` as soon
   * as `signal` aborts (the tokens are given back).
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#rate === 0 || bytes <= 0) return;
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    const waiter: Waiter = { target: this.#refilled - this.#tokens, resolve: () => undefined, timer: undefined };
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(waiter.timer);
        this.#waiters.delete(waiter);
        this.#tokens += bytes;
        reject(signal?.reason);
      };
      waiter.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
      this.#schedule(waiter);
    });
  }

  #capacity(): number {
    return this.#rate * this.#burstSeconds;
  }

  #refill(): void {
    const now = this.#now();
    const add = ((now - this.#last) / 1000) * this.#rate;
    this.#last = now;
    if (add <= 0) return;
    this.#refilled += add;
    this.#tokens = Math.min(this.#capacity(), this.#tokens + add);
  }

  /** (Re)arms the waiter's timer for the current rate, or releases it. */
  #schedule(w: Waiter): void {
    clearTimeout(w.timer);
    this.#refill();
    const owed = w.target - this.#refilled;
    if (this.#rate === 0 || owed <= 0) {
      this.#waiters.delete(w);
      w.resolve();
      return;
    }
    w.timer = setTimeout(() => this.#schedule(w), Math.max(1, Math.ceil((owed / this.#rate) * 1000)));
  }
}

/** A limiter held through the registry; release it when the copy ends. */
export interface LimiterLease {
  readonly limiter: RateLimiter;
  /** Drops this holder; the limiter leaves the registry with its last holder. Idempotent. */
  release(): void;
}

/**
 * Limiters by key (e.g. `<backup id>/<replica set>`), reference-counted: concurrent copy activities of one replica
 * set in one process share one limiter, so the throttle holds for all of them together.
 */
export class RateLimiterRegistry {
  readonly #entries = new Map<string, { limiter: RateLimiter; holders: number }>();

  /**
   * The limiter for `key`, created at `bytesPerSec` if absent. When `bytesPerSec` is given and differs, the shared
   * limiter takes it (the newest activity carries the newest throttle).
   */
  acquire(key: string, bytesPerSec?: number, options?: RateLimiterOptions): LimiterLease {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { limiter: new RateLimiter(bytesPerSec ?? 0, options), holders: 0 };
      this.#entries.set(key, entry);
    } else if (bytesPerSec !== undefined && entry.limiter.rate !== Math.max(0, bytesPerSec)) {
      entry.limiter.setRate(bytesPerSec);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      limiter: held.limiter,
      release: () => {
        if (released) return;
        released = true;
        if (--held.holders === 0 && this.#entries.get(key) === held) this.#entries.delete(key);
      },
    };
  }

  /** The limiter for `key`, if some copy holds it. */
  get(key: string): RateLimiter | undefined {
    return this.#entries.get(key)?.limiter;
  }

  /** Changes the rate of `key`'s limiter, if it exists; returns whether it did. */
  setRate(key: string, bytesPerSec: number): boolean {
    const entry = this.#entries.get(key);
    entry?.limiter.setRate(bytesPerSec);
    return entry !== undefined;
  }

  /** Keys in use. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }
}

/** The process-wide registry used by the copy activities. */
export const rateLimiters = new RateLimiterRegistry();

/** The registry key of one replica set of one backup. */
export function limiterKey(backupId: string, rs: string): string {
  return `${backupId}/${rs}`;
}
