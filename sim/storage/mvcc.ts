import type { Document } from 'mongodb';
import type { Ts } from './timestamps.ts';

/** One committed version of a key: a document, or `null` for a delete (tombstone). */
export interface Version {
  /** Commit timestamp; `null` for an untimestamped write, visible to every reader. */
  readonly ts: Ts | null;
  readonly value: Document | null;
  /**
   * A prepared transaction's durable timestamp (its commit oplog entry), later than `ts`: reads at `ts` or after see
   * the version, a checkpoint only once its timestamp reaches `durable` (WiredTiger's durable_timestamp).
   */
  readonly durable?: Ts;
}

/** Read point: a timestamp, or `undefined` for "latest" (everything committed). */
export type ReadAt = Ts | undefined;

function visible(version: Version, at: ReadAt, checkpoint = false): boolean {
  if (at === undefined || version.ts === null) return true;
  return (checkpoint ? (version.durable ?? version.ts) : version.ts) <= at;
}

/** Index of the first element of sorted `keys` that is `>= key` (`keys.length` if none). */
export function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A key → version-chain map with sorted keys: the in-memory half of a table.
 *
 * Chains are in commit order. A read at `at` sees the newest version (by commit order, not by timestamp) that is
 * untimestamped or has `ts <= at`, as WiredTiger does. Every write marks its key dirty so the next checkpoint knows
 * which pages to re-serialize.
 */
export class VersionedTable {
  private readonly chains = new Map<string, Version[]>();
  private readonly sorted: string[] = [];
  /** Keys written since a checkpoint last captured them. */
  readonly dirty = new Set<string>();
  /** Keys with more than one version: the only ones pruning can shrink. */
  private readonly multi = new Set<string>();

  /** Number of keys with at least one version (tombstones included). */
  get keyCount(): number {
    return this.sorted.length;
  }

  /** Appends a version to `key`'s chain (`durable`: a prepared transaction's, see {@link Version}). */
  write(key: string, value: Document | null, ts: Ts | null, durable?: Ts): void {
    const version: Version = durable === undefined ? { ts, value } : { ts, value, durable };
    const chain = this.chains.get(key);
    if (chain) {
      chain.push(version);
      this.multi.add(key);
    } else {
      this.chains.set(key, [version]);
      this.insertSorted(key);
    }
    this.dirty.add(key);
  }

  /**
   * Loads a checkpointed value as the key's base version; loading does not make the key dirty. Data tables load
   * untimestamped (a checkpoint keeps no history); the oplog loads each entry at its own timestamp.
   */
  loadBase(key: string, value: Document, ts: Ts | null = null): void {
    if (this.chains.has(key)) throw new Error(`duplicate key ${key} in checkpoint`);
    this.chains.set(key, [{ ts, value }]);
    this.insertSorted(key);
  }

  /**
   * The visible value of `key` at `at`, or undefined when absent or deleted; `checkpoint`: as a checkpoint at `at`
   * sees it (durable timestamps).
   */
  read(key: string, at: ReadAt, checkpoint = false): Document | undefined {
    const chain = this.chains.get(key);
    if (!chain) return undefined;
    for (let i = chain.length - 1; i >= 0; i--) {
      const version = chain[i] as Version;
      if (visible(version, at, checkpoint)) return version.value ?? undefined;
    }
    return undefined;
  }

  /** Visible `[key, value]` pairs in key order, for keys in `[from, to)` (`to` undefined: to the end). */
  *scan(at: ReadAt, from = '', to?: string, checkpoint = false): Generator<[string, Document]> {
    for (let i = lowerBound(this.sorted, from); i < this.sorted.length; i++) {
      const key = this.sorted[i] as string;
      if (to !== undefined && key >= to) return;
      const value = this.read(key, at, checkpoint);
      if (value !== undefined) yield [key, value];
    }
  }

  /** Visible pairs in descending key order (for "top of the oplog" reads). */
  *scanBackward(at: ReadAt): Generator<[string, Document]> {
    for (let i = this.sorted.length - 1; i >= 0; i--) {
      const key = this.sorted[i] as string;
      const value = this.read(key, at);
      if (value !== undefined) yield [key, value];
    }
  }

  /** Every non-tombstone value still held, history included (the catalog's idents still reachable by some read). */
  *allValues(): Generator<Document> {
    for (const chain of this.chains.values()) for (const v of chain) if (v.value !== null) yield v.value;
  }

  /** True when some version of `key` is newer than `at` (so a checkpoint at `at` has not captured it). */
  hasVersionAfter(key: string, at: Ts): boolean {
    const chain = this.chains.get(key);
    return chain !== undefined && chain.some((v) => v.ts !== null && (v.durable ?? v.ts) > at);
  }

  /**
   * Physically removes every key greater than `key` (no tombstones): the oplog's capped truncation, which WiredTiger
   * applies to the logged oplog table without history. Returns the keys removed.
   */
  removeAfter(key: string): string[] {
    const start = lowerBound(this.sorted, key + '\u0000');
    const removed = this.sorted.splice(start);
    for (const k of removed) {
      this.chains.delete(k);
      this.multi.delete(k);
      this.dirty.add(k);
    }
    return removed;
  }

  /**
   * Physically removes every key before `key` (no tombstones): the capped oplog's truncation of its oldest entries.
   * Returns the keys removed.
   */
  removeBefore(key: string): string[] {
    const removed = this.sorted.splice(0, lowerBound(this.sorted, key));
    for (const k of removed) {
      this.chains.delete(k);
      this.multi.delete(k);
      this.dirty.add(k);
    }
    return removed;
  }

  /**
   * Drops versions no reader at or after `oldest` can see: everything older (in commit order) than the newest version
   * visible at `oldest`. A key left with only a tombstone disappears. `oldest === null` prunes nothing.
   */
  prune(oldest: Ts | null): void {
    if (oldest === null) return;
    for (const key of this.multi) {
      const chain = this.chains.get(key);
      if (!chain) {
        this.multi.delete(key);
        continue;
      }
      let base = -1;
      for (let i = chain.length - 1; i >= 0; i--) {
        if (visible(chain[i] as Version, oldest, true)) {
          base = i;
          break;
        }
      }
      if (base > 0) chain.splice(0, base);
      if (chain.length <= 1) this.multi.delete(key);
      if (chain.length === 1 && (chain[0] as Version).value === null) this.removeKey(key);
    }
  }

  private removeKey(key: string): void {
    this.chains.delete(key);
    const i = lowerBound(this.sorted, key);
    if (this.sorted[i] === key) this.sorted.splice(i, 1);
  }

  private insertSorted(key: string): void {
    const last = this.sorted[this.sorted.length - 1];
    if (last === undefined || key > last) this.sorted.push(key);
    else this.sorted.splice(lowerBound(this.sorted, key), 0, key);
  }
}
