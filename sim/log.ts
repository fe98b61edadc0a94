/**
 * The simulator's one logger set-up: pino, JSON lines on **stderr** (stdout carries the launcher's JSON line and the
 * mongod-style log of sim/bin/mongod), level from `CUTPOINT_LOG_LEVEL`, else `warn` (failures and state changes
 * worth a look, not every connection). Lines are written synchronously, so none is lost when a process exits right
 * after logging (sim/mongod.ts leaves promptly, as mongod does).
 */
import { pino, type Logger } from 'pino';

/** A logger for the simulator; `name` tells its lines apart (e.g. `sim-wire`). */
export function simLogger(name?: string): Logger {
  return pino({ ...(name ? { name } : {}), level: process.env.CUTPOINT_LOG_LEVEL ?? 'warn' }, pino.destination({ dest: 2, sync: true }));
}

/** Logging method: structured fields first, then the message (pino's calling convention). */
export type LogFn = (fields: object, message: string) => void;

/** The narrow logger the wire layer writes to: a pino `Logger` satisfies it, and so does {@link captureLogger}. */
export interface LogSink {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** One line a {@link captureLogger} kept. */
export interface CapturedLog {
  readonly level: keyof LogSink;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A {@link LogSink} that keeps every line in memory, so tests can assert what was logged. */
export function captureLogger(): LogSink & { readonly lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const at =
    (level: keyof LogSink) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
