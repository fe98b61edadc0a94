/**
 * What the bank workload committed, kept outside the simulated cluster: accounts with their replica set and
 * opening balance, and every transfer with its cluster timestamp. From it the oracle derives each replica set's
 * exact bank state at any timestamp, independently of the storage engine under test.
 */
import type { Timestamp } from 'mongodb';
import { compareTs, ZERO_TS } from '../node/clock.ts';

interface Account {
  rs: string;
  opening: number;
  openedAt: Timestamp;
  balance: number;
}

export interface Transfer {
  ts: Timestamp;
  from: string;
  to: string;
  amount: number;
}

export class BankHistory {
  private readonly accounts = new Map<string, Account>();
  readonly transfers: Transfer[] = [];
  private newest: Timestamp = ZERO_TS;

  open(id: string, rs: string, balance: number, ts: Timestamp): void {
    this.accounts.set(id, { rs, opening: balance, openedAt: ts, balance });
    if (compareTs(ts, this.newest) > 0) this.newest = ts;
  }

  transfer(ts: Timestamp, from: string, to: string, amount: number): void {
    if (compareTs(ts, this.newest) <= 0) throw new Error(`history: transfer at ${ts.toString()} is not after ${this.newest.toString()}`);
    this.transfers.push({ ts, from, to, amount });
    this.accounts.get(from)!.balance -= amount;
    this.accounts.get(to)!.balance += amount;
    this.newest = ts;
  }

  /** Current balance of an account. */
  balance(id: string): number {
    const a = this.accounts.get(id);
    if (!a) throw new Error(`history: no account ${id}`);
    return a.balance;
  }

  /** The newest timestamp recorded. */
  last(): Timestamp {
    return this.newest;
  }

  /** The sum of all balances (constant by construction; the invariant a restore must keep). */
  total(): number {
    let sum = 0;
    for (const a of this.accounts.values()) sum += a.opening;
    return sum;
  }

  /** The replica set holding an account. */
  replicaSetOf(id: string): string | undefined {
    return this.accounts.get(id)?.rs;
  }

  /** Replica sets holding accounts. */
  replicaSets(): string[] {
    return [...new Set([...this.accounts.values()].map((a) => a.rs))].sort();
  }

  /** The `{_id → balance}` of one replica set's `bank.accounts` at timestamp `ts`. */
  stateAt(rs: string, ts: Timestamp): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, a] of this.accounts) if (a.rs === rs && compareTs(a.openedAt, ts) <= 0) out.set(id, a.opening);
    for (const t of this.transfers) {
      if (compareTs(t.ts, ts) > 0) break;
      if (out.has(t.from)) out.set(t.from, out.get(t.from)! - t.amount);
      if (out.has(t.to)) out.set(t.to, out.get(t.to)! + t.amount);
    }
    return out;
  }
}
