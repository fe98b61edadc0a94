/**
 * The server log of the mongod- and mongos-compatible entry points (sim/mongod.ts, sim/mongos.ts): one JSON line per
 * event on **stdout**, in the shape of mongod's structured log (`{t, s, c, id, ctx, msg, attr}`), so whatever waits
 * for a real server's `"id":23016,"msg":"Waiting for connections"` waits for these the same way. The simulator's own
 * diagnostics go to stderr (sim/log.ts).
 */
import type { Document } from 'mongodb';

/** Severity letters of mongod's log: Informational, Warning, Error, Fatal. */
export type Severity = 'I' | 'W' | 'E' | 'F';

/** Writes one log line; `id` is the server's log id for the event (23016 for "Waiting for connections"). */
export function serverLog(severity: Severity, component: string, id: number, msg: string, attr: Document = {}): void {
  process.stdout.write(JSON.stringify({ t: { $date: new Date().toISOString() }, s: severity, c: component, id, ctx: 'main', msg, attr }) + '\n');
}
