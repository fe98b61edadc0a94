/**
 * Server monitoring by the real driver (7.x) against the three ways a server can answer `hello`:
 * - `stream`: `topologyVersion` in hello, awaitable hello held until a change or maxAwaitTimeMS, replies streamed with
 *   moreToCome (mongod's behaviour). The driver streams; few hellos; changes arrive at once.
 * - `none`: no `topologyVersion`: the driver polls every heartbeatFrequencyMS. Also sane, but changes arrive late.
 * - `wait`: `topologyVersion` but a single plain reply to the awaitable hello. The driver rejects it ("Server ended
 *   moreToCome unexpectedly"), marks the server Unknown and clears its pool on every heartbeat: never do this.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Long, MongoClient } from 'mongodb';
import type { MongoClientOptions, ServerDescription } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { WireServer } from './server.ts';
import { captureLogger } from '../log.ts';
import { TestHandler } from './test-handler.ts';
import type { TestHandlerOptions } from './test-handler.ts';

interface Run {
  readonly handler: TestHandler;
  readonly client: MongoClient;
  readonly events: {
    succeeded: { awaited: boolean }[];
    failed: { awaited: boolean; message: string }[];
    poolCleared: number;
    descriptions: ServerDescription[];
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(handlerOptions: TestHandlerOptions, clientOptions: MongoClientOptions = {}): Promise<Run> {
  const handler = new TestHandler(handlerOptions);
  const server = new WireServer({ handler, logger: captureLogger() });
  const { port } = await server.listen();
  cleanups.push(() => server.close());
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, clientOptions);
  const events: Run['events'] = { succeeded: [], failed: [], poolCleared: 0, descriptions: [] };
  client.on('serverHeartbeatSucceeded', (e) => events.succeeded.push({ awaited: e.awaited }));
  client.on('serverHeartbeatFailed', (e) => events.failed.push({ awaited: e.awaited, message: e.failure.message }));
  client.on('connectionPoolCleared', () => events.poolCleared++);
  client.on('serverDescriptionChanged', (e) => events.descriptions.push(e.newDescription));
  await client.connect();
  cleanups.push(() => client.close());
  return { handler, client, events };
}

/** Runs a few commands, as a real user of the connection would. */
async function work(client: MongoClient): Promise<void> {
  const admin = client.db('admin');
  for (let i = 0; i < 5; i++) expect(await admin.command({ ping: 1 })).toEqual({ ok: 1 });
  expect(await admin.command({ buildInfo: 1 })).toMatchObject({ version: '7.0.14' });
}

const helloCount = (handler: TestHandler): number => handler.count('hello', 'isMaster', 'ismaster');

describe('awaitable hello and streaming monitoring', () => {
  it('streams: a handful of hellos in 3 s, no failures, topology changes delivered at once', async () => {
    const { handler, client, events } = await start({ awaitableHello: 'stream' });
    await work(client);
    await sleep(3000);
    await work(client);
    // Two handshakes (monitor + pool) and one awaitable hello still held open by the server.
    expect(helloCount(handler)).toBeLessThanOrEqual(5);
    expect(events.failed).toEqual([]);
    expect(events.poolCleared).toBe(0);

    const before = events.descriptions.length;
    const changedAt = Date.now();
    handler.changeTopology();
    await expect.poll(() => events.descriptions.length, { timeout: 2000 }).toBeGreaterThan(before);
    expect(Date.now() - changedAt).toBeLessThan(1000); // not after heartbeatFrequencyMS (10 s)
    const latest = events.descriptions.at(-1);
    expect(Long.fromValue(latest?.topologyVersion?.counter ?? -1).toNumber()).toBe(1);
    expect(events.succeeded.at(-1)?.awaited).toBe(true);
    // The streamed reply came without a new request: still one awaitable hello sent per monitor connection.
    expect(helloCount(handler)).toBeLessThanOrEqual(5);
    await work(client);
  });

  it('polls sanely when hello carries no topologyVersion', async () => {
    const { handler, client, events } = await start({ awaitableHello: 'none' });
    await work(client);
    await sleep(3000);
    await work(client);
    expect(helloCount(handler)).toBeLessThanOrEqual(5);
    expect(events.failed).toEqual([]);
    expect(events.succeeded.every((e) => !e.awaited)).toBe(true);
  });

  it('breaks the driver when an awaitable hello is answered without streaming', async () => {
    // heartbeatFrequencyMS is maxAwaitTimeMS; at its minimum (500 ms) the breakage shows within 2.5 s.
    const { client, events } = await start({ awaitableHello: 'wait' }, { heartbeatFrequencyMS: 500 });
    await sleep(2500);
    expect(events.failed.length).toBeGreaterThan(0);
    expect(events.failed[0]?.message).toMatch(/Server ended moreToCome unexpectedly/);
    expect(events.poolCleared).toBeGreaterThan(0);
    // Commands still work between failures, which is what makes this mode easy to miss (one issued at the moment a
    // failure clears the pool fails with it: the next one goes through).
    let pong: unknown;
    for (let i = 0; i < 5 && pong === undefined; i++) {
      pong = await client.db('admin').command({ ping: 1 }).catch(async () => void (await sleep(100)));
    }
    expect(pong).toEqual({ ok: 1 });
  });
});
