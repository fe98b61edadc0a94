/** Reads a member's oplog and the captured oplog of a repository, raw, to compare them entry for entry. */
import type { MongoClient } from 'mongodb';
import { expect } from 'vitest';
import { entryTs } from '../../activities/agent/oplog-capture.ts';
import { toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import type { Ts } from '../../common/timestamp.ts';
import { OplogSegments, summarizeChain, type ChainSummary } from '../../repository/oplog-segments.ts';
import type { Repository } from '../../repository/repository.ts';

const RAW = { fieldsAsRaw: { firstBatch: true, nextBatch: true }, promoteValues: false } as const;

/** The raw entries of the member's oplog with ts in [from, to], in order. */
export async function oplogBetween(client: MongoClient, from: Ts, to: Ts): Promise<Buffer[]> {
  const local = client.db('local');
  const out: Buffer[] = [];
  let reply = await local.command({ find: 'oplog.rs', filter: { ts: { $gte: toBsonTimestamp(from), $lte: toBsonTimestamp(to) } }, batchSize: 1000 }, RAW);
  out.push(...(reply.cursor.firstBatch as Buffer[]));
  while (String(reply.cursor.id) !== '0') {
    reply = await local.command({ getMore: reply.cursor.id, collection: 'oplog.rs', batchSize: 1000 }, RAW);
    out.push(...(reply.cursor.nextBatch as Buffer[]));
  }
  return out;
}

/**
 * Checks the captured oplog of one replica set against `client`'s oplog: the segments chained without a gap, and
 * their entries, byte for byte, every entry of the oplog from the first captured one to the last, once, in order.
 * Returns the chain and the number of entries.
 */
export async function expectCapturedExactly(repo: Repository, cluster: string, rs: string, client: MongoClient): Promise<{ chain: ChainSummary; entries: number }> {
  const segments = new OplogSegments(repo);
  const list = await segments.list(cluster, rs);
  const chain = summarizeChain(list);
  expect(chain.gaps, `gaps in the capture of ${rs}`).toEqual([]);
  expect(list.length, `segments of ${rs}`).toBeGreaterThan(0);
  const index = await repo.chunkIndex(true);
  const captured: Buffer[] = [];
  for (const s of list) {
    const entries = await segments.entries(s, index);
    expect(entries.length).toBe(s.count);
    expect(entryTs(entries[0]!)).toEqual(s.first);
    expect(entryTs(entries.at(-1)!)).toEqual(s.last);
    captured.push(...entries);
  }
  const oplog = await oplogBetween(client, chain.from!, chain.to!);
  expect(captured.map((b) => entryTs(b)), `the captured entries of ${rs} against its oplog`).toEqual(oplog.map((b) => entryTs(b)));
  expect(captured.every((b, i) => b.equals(oplog[i]!)), `the captured entries of ${rs} are the oplog's bytes`).toBe(true);
  return { chain, entries: captured.length };
}
