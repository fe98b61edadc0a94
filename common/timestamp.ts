/**
 * MongoDB timestamps as cutpoint stores them in manifests, summaries and workflow state: `{t, i}` (seconds,
 * increment), plain JSON so it crosses Temporal payloads and files unchanged. Workflow-safe.
 */

/** A MongoDB `Timestamp(t, i)`. */
export interface Ts {
  t: number;
  i: number;
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. */
export function compareTs(a: Ts, b: Ts): number {
  return a.t !== b.t ? a.t - b.t : a.i - b.i;
}

/** The latest of one or more timestamps. */
export function maxTs(first: Ts, ...rest: Ts[]): Ts {
  return rest.reduce((m, x) => (compareTs(x, m) > 0 ? x : m), first);
}

/** `Timestamp(t, i)`, as mongosh prints it. */
export function formatTs(ts: Ts): string {
  return `Timestamp(${ts.t}, ${ts.i})`;
}

/** Validates an untrusted `{t, i}` (from a file or a user), naming the problem. */
export function parseTs(value: unknown, what = 'timestamp'): Ts {
  const v = value as Partial<Ts> | null;
  if (!v || typeof v !== 'object' || !Number.isInteger(v.t) || !Number.isInteger(v.i) || v.t! < 0 || v.i! < 0) {
    throw new Error(`${what} must be {"t": <seconds>, "i": <increment>} with non-negative integers, got ${JSON.stringify(value)}`);
  }
  return { t: v.t!, i: v.i! };
}
