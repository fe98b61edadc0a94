/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`): where a worker process spent its time, as self time per function,
 * so a result file shows what bounds a figure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The parts of a `.cpuprofile` read here. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time of the sampled functions of every profile in a directory, seconds. */
export interface ProfileSummary {
  /** Sampled time, all threads' profiles together. */
  seconds: number;
  /** Of it, with nothing to run (waiting for I/O, the thread pool or the network). */
  idleSeconds: number;
  garbageCollectorSeconds: number;
  /** The functions with the most self time, most first. */
  top: Array<{ function: string; where: string; seconds: number }>;
}

/** Sums every `.cpuprofile` in `dir` by function (name and source position); keeps the `top` largest. */
export function summarizeProfiles(dir: string, top = 12): ProfileSummary {
  const self = new Map<string, { function: string; where: string; seconds: number }>();
  let total = 0;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, name), 'utf8')) as CpuProfile;
    const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
    p.samples.forEach((id, i) => {
      const f = frames.get(id)!;
      const seconds = (p.timeDeltas[i] ?? 0) / 1e6;
      const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
      const key = `${f.functionName}@${where}`;
      const entry = self.get(key) ?? { function: f.functionName || '(anonymous)', where, seconds: 0 };
      entry.seconds += seconds;
      self.set(key, entry);
      total += seconds;
    });
  }
  const of = (fn: string) => [...self.values()].filter((e) => e.function === fn).reduce((s, e) => s + e.seconds, 0);
  const busy = [...self.values()].filter((e) => !['(idle)', '(program)', '(garbage collector)'].includes(e.function));
  return {
    seconds: total,
    idleSeconds: of('(idle)'),
    garbageCollectorSeconds: of('(garbage collector)'),
    top: busy.sort((a, b) => b.seconds - a.seconds).slice(0, top),
  };
}
