/**
 * The process-wide pino logger and its bridge to the Temporal Runtime.
 *
 * Every log line passes through {@link redactValue}: connection strings lose their passwords and secret-named
 * fields are replaced, whatever the call site logged. Logs go to stderr because stdout belongs to `--json` output.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { CutpointError } from '../common/errors.ts';
import { redactJsonText, redactString, redactValue } from '../common/redact.ts';

/** Levels accepted in CUTPOINT_LOG_LEVEL. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of {@link LOG_LEVELS}. */
export type CutpointLogLevel = (typeof LOG_LEVELS)[number];

/** Reads CUTPOINT_LOG_LEVEL, rejecting unknown values instead of silently logging at a default. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env, fallback: CutpointLogLevel = 'info'): CutpointLogLevel {
  const raw = env.CUTPOINT_LOG_LEVEL?.trim().toLowerCase();
  if (!raw) return fallback;
  if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as CutpointLogLevel;
  throw new CutpointError('BAD_USAGE', `CUTPOINT_LOG_LEVEL=${env.CUTPOINT_LOG_LEVEL} is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

/** pino options with redaction wired into every path a value can take into a line (arguments and bindings). */
export function loggerOptions(level: CutpointLogLevel): LoggerOptions {
  return {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      logMethod(args, method) {
        // `log.error(err)` and `log.error(err, 'msg')`: pino's own Error handling (err key, message as msg) would be
        // lost once the error is turned into a redacted plain object, so do it here.
        let parts: unknown[] = args;
        if (parts[0] instanceof Error) {
          const err = parts[0];
          parts = [{ err }, ...(parts.length > 1 ? parts.slice(1) : [err.message])];
        }
        method.apply(this, parts.map((a) => redactValue(a)) as Parameters<typeof method>);
      },
    },
    formatters: {
      bindings: (b) => redactValue(b) as Record<string, unknown>,
      log: (o) => redactValue(o) as Record<string, unknown>,
    },
    // Errors are already plain objects here (redactValue in the hook): type (the error's name), message, stack,
    // fields, cause chain and AggregateError errors, all redacted. pino's std serializer would rename the type.
    serializers: {
      err: (e: unknown) => redactValue(e),
    },
  };
}

/**
 * Wraps a destination so every finished line is redacted once more as text: child-logger bindings and anything
 * else that bypasses the object-level hooks cannot carry a credential out.
 */
export function redactingDestination(destination: pino.DestinationStream): pino.DestinationStream {
  return { write: (line: string) => destination.write(redactJsonText(line)) };
}

/** Creates a logger writing JSON lines to `destination` (stderr by default). */
export function createLogger(level: CutpointLogLevel = logLevelFromEnv(), destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino(loggerOptions(level), redactingDestination(destination));
}

let root: Logger | undefined;

/** The process-wide logger, created on first use from CUTPOINT_LOG_LEVEL. */
export function log(): Logger {
  root ??= createLogger();
  return root;
}

const temporalToPino: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Adapts pino to the Temporal SDK's Logger interface so Runtime, worker and core messages land in the same stream. */
export class PinoTemporalLogger implements TemporalLogger {
  /** @param logger where the SDK's messages go (usually a child logger with a `component` binding). */
  constructor(private readonly logger: Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const fields: Record<string, unknown> = {};
    if (meta) for (const [k, v] of Object.entries(meta)) fields[k] = v;
    this.logger[temporalToPino[level]](fields, redactString(message));
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
