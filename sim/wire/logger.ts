import { pino } from 'pino';

/** Logging method: structured fields first, then the message (pino's calling convention). */
export type WireLogFn = (fields: object, message: string) => void;

/** The logger the wire layer writes to. A pino `Logger` satisfies it, so the simulator can pass its own. */
export interface WireLogger {
  debug: WireLogFn;
  info: WireLogFn;
  warn: WireLogFn;
  error: WireLogFn;
}

/**
 * Default logger: pino on **stderr**, because the simulator launcher's stdout carries its JSON result line. Level from
 * `CUTPOINT_LOG_LEVEL`, else `warn` (connection drops and handler crashes, not every connection).
 */
export function defaultWireLogger(): WireLogger {
  return pino(
    { name: 'sim-wire', level: process.env.CUTPOINT_LOG_LEVEL ?? 'warn' },
    pino.destination({ dest: 2, sync: true }),
  );
}
