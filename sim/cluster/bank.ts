/**
 * The bank workload (docs/simulator.md): accounts `{_id, balance}` with integer balances in `bank.accounts`, spread
 * over every shard; transfers at a steady rate, each a transaction through the router (one session, one txnNumber per
 * transfer), at least half of them between two shards and so committed with two-phase commit at one commitTimestamp
 * (router-transactions.ts). Every committed transfer is recorded in a {@link BankHistory} at the timestamp it became
 * visible, so the oracle knows each replica set's exact state at any timestamp. Invariant: the sum of balances never
 * changes.
 */
import { randomUUID } from 'node:crypto';
import type { Document, Timestamp } from 'mongodb';
import { Binary, Long } from 'mongodb';
import { NO_AUTH_UID, type LogicalSessionId } from '../node/session-cache.ts';
import type { Logger } from 'pino';
import { compareTs } from '../node/clock.ts';
import { applyWrites, ensureCollection } from '../node/writes.ts';
import type { SimCluster } from './cluster.ts';
import { BANK_NS } from './topology.ts';
import { BankHistory } from './history.ts';

export interface BankOptions {
  /** Accounts per shard (default 20). */
  accountsPerShard?: number;
  initialBalance?: number;
  /** Transfers per second (default 60; the workload must sustain at least 50). */
  rate?: number;
  log: Logger;
  /** Seeded choice of accounts and amounts, so a failing run can be replayed. */
  seed?: number;
  /**
   * Transfers as transactions through the router, cross-shard ones with two-phase commit (default true). False: each
   * transfer committed on its shards at one cluster timestamp, an idealised distributed transaction whose commit
   * entries no restore point can fall between (docs/simulator.md, "A cut between the commit entries of a distributed
   * transaction").
   */
  distributedTransactions?: boolean;
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class BankWorkload {
  readonly history = new BankHistory();
  private timer: NodeJS.Timeout | undefined;
  private readonly random: () => number;
  private byShard: string[][] = [];
  private counter = 0;
  /** The workload's logical session and its last transaction number. */
  private readonly session: LogicalSessionId;
  private readonly lsid: Document;
  private txnNumber = 0;
  /** Transfers committed so far, and how many of them crossed shards. */
  committed = 0;
  crossShard = 0;
  failed = 0;

  private constructor(
    private readonly cluster: SimCluster,
    private readonly options: BankOptions,
  ) {
    this.random = prng(options.seed ?? Date.now());
    const id = randomUUID().replaceAll('-', '');
    this.session = { id, uid: NO_AUTH_UID };
    this.lsid = { id: new Binary(Buffer.from(id, 'hex'), Binary.SUBTYPE_UUID) };
  }

  /** Creates the accounts (each replica set at its own timestamp) and starts transferring. */
  static async start(cluster: SimCluster, options: BankOptions): Promise<BankWorkload> {
    const w = new BankWorkload(cluster, options);
    w.createAccounts();
    w.resume();
    return w;
  }

  private createAccounts(): void {
    const perShard = this.options.accountsPerShard ?? 20;
    const balance = this.options.initialBalance ?? 1000;
    const shards = this.cluster.dataShards;
    this.byShard = shards.map(() => []);
    // Account ids are chosen so every shard gets exactly `perShard` of them under the router's hash.
    const router = this.cluster.mongos;
    for (let n = 0; this.byShard.some((a) => a.length < perShard); n++) {
      const id = `acct-${n}`;
      const idx = router ? shards.indexOf(router.shardOfAccount(id)) : 0;
      if (this.byShard[idx]!.length < perShard) this.byShard[idx]!.push(id);
    }
    for (const [i, rs] of shards.entries()) {
      const primary = rs.primary();
      if (!primary) throw new Error(`bank: ${rs.name} has no primary`);
      ensureCollection(primary, BANK_NS);
      const ops = this.byShard[i]!.map((id) => ({ op: 'i' as const, ns: BANK_NS, o: { _id: id, balance } }));
      applyWrites(primary, ops);
      const ts = rs.applied(primary);
      for (const id of this.byShard[i]!) this.history.open(id, rs.name, balance, ts);
    }
  }

  /**
   * Starts (or restarts) the transfer loop. Each tick catches up to `rate × elapsed`, so the rate holds on average
   * even when a loaded machine fires timers late.
   */
  resume(): void {
    if (this.timer) return;
    const rate = this.options.rate ?? 60;
    const started = Date.now();
    let attempted = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - started) * rate) / 1000) - attempted;
      // A long stall (a paused process) does not turn into a burst of hundreds of transfers.
      for (let k = 0; k < Math.min(due, rate); k++) this.transferOnce();
      attempted += due;
    }, 10);
    this.timer.unref();
  }

  /** Stops transferring. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private pick(list: string[]): string {
    return list[Math.floor(this.random() * list.length)]!;
  }

  /** One transfer: every other one crosses shards (so at least half do, with two or more shards). */
  transferOnce(): Timestamp | undefined {
    const shards = this.byShard.length;
    const cross = shards > 1 && this.counter++ % 2 === 0;
    const a = Math.floor(this.random() * shards);
    const b = cross ? (a + 1 + Math.floor(this.random() * (shards - 1))) % shards : a;
    const from = this.pick(this.byShard[a]!);
    let to = this.pick(this.byShard[b]!);
    if (to === from) to = this.byShard[b]!.find((x) => x !== from) ?? to;
    if (to === from) return undefined;
    const amount = 1 + Math.floor(this.random() * 50);
    const fromBal = this.history.balance(from);
    const toBal = this.history.balance(to);
    try {
      const docs = [
        { _id: from, balance: fromBal - amount },
        { _id: to, balance: toBal + amount },
      ];
      const ts = this.commit(docs, a === b ? a : undefined);
      this.history.transfer(ts, from, to, amount);
      this.committed++;
      if (a !== b) this.crossShard++;
      return ts;
    } catch (e) {
      // A primary that is down (a crash test) fails the transfer before anything is written: nothing to record.
      this.failed++;
      this.options.log.debug({ err: e }, 'bank transfer failed');
      return undefined;
    }
  }

  private commit(docs: Array<{ _id: string; balance: number }>, sameShard: number | undefined): Timestamp {
    const router = this.cluster.mongos;
    if (router && this.options.distributedTransactions === false) return router.commitAtOneTimestamp(docs);
    if (router) return router.transact(this.session, this.lsid, Long.fromNumber(++this.txnNumber), docs);
    const rs = this.cluster.dataShards[sameShard ?? 0]!;
    const primary = rs.primary();
    if (!primary) throw new Error(`${rs.name} has no primary`);
    return rs.write(primary, docs.map((o) => ({ op: 'u' as const, ns: BANK_NS, o, o2: { _id: o._id } })));
  }

  /** The newest timestamp of a committed transfer (or account creation). */
  lastTimestamp(): Timestamp {
    return this.history.last();
  }
}

export { compareTs };
