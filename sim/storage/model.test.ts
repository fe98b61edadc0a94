import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { StorageEngine } from './engine.ts';
import { cleanup, create, entry, openEngine, tmpDir, ts, write } from './testkit.ts';

/**
 * Randomized check of the copy-on-write checkpoint against the engine's own reads: after every checkpoint, a copy of
 * the dbpath opened standalone (data exactly at the checkpoint) must equal what the running engine reads at the
 * checkpoint's timestamp (or at latest, for an unstable one). Stable, unstable, forward-only stable timestamps, drops
 * and re-creates are mixed so pages split, merge, and go unchanged across checkpoints.
 */

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function snapshot(engine: StorageEngine, at: ReturnType<typeof ts> | undefined): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const c of engine.listCollections(at)) out[c.ns] = engine.scan(c.ns, c.ns === 'local.oplog.rs' ? undefined : at);
  return out;
}

describe('checkpoint model check', () => {
  it.each([1, 2, 3])('seed %i: every checkpoint holds exactly the state at its timestamp', (seed) => {
    const rand = rng(seed);
    const src = tmpDir();
    dirs.push(src);
    const engine = openEngine(src, 'replicaSet');
    const names = ['db.a', 'db.b'];
    const live = new Set<string>();
    let next = 1;
    let checks = 0;
    for (let step = 0; step < 120; step++) {
      const r = rand();
      const ns = names[Math.floor(rand() * names.length)] as string;
      if (!live.has(ns) && r < 0.9) {
        create(engine, next++, ns);
        live.add(ns);
      } else if (r < 0.6) {
        const id = Math.floor(rand() * 30);
        const op = rand() < 0.15 ? 'd' : 'u';
        write(engine, next++, op, ns, { _id: id, v: next, pad: 'z'.repeat(Math.floor(rand() * 120)) });
      } else if (r < 0.63) {
        engine.logAndApply(entry(next++, 'c', 'db.$cmd', { drop: ns.slice(3) }));
        live.delete(ns);
      } else if (r < 0.8) {
        engine.setStableTimestamp(ts(Math.max(1, next - 1 - Math.floor(rand() * 8))));
      } else {
        const unstable = rand() < 0.2;
        const info = engine.checkpoint({ unstable });
        const at = info.timestamp ?? undefined;
        const copy = tmpDir();
        dirs.push(copy);
        fs.cpSync(src, copy, { recursive: true });
        fs.writeFileSync(`${copy}/mongod.lock`, '');
        const restored = openEngine(copy, 'standalone');
        // A standalone start replays the journal into the oplog, so compare the oplog as of now.
        expect(snapshot(restored, undefined)).toEqual(snapshot(engine, at));
        restored.close();
        checks++;
      }
    }
    expect(checks).toBeGreaterThan(8);
    // And a crash at the end: a replica-set start brings every table back to the latest state through the oplog.
    const latest = snapshot(engine, undefined);
    engine.crash();
    const recovered = openEngine(src, 'replicaSet');
    expect(snapshot(recovered, undefined)).toEqual(latest);
    recovered.close();
  });
});
