/**
 * The process-wide pino logger and its bridge to the Temporal Runtime.
 *
 * Every log line passes through {@link redactValue}: connection strings lose their passwords and secret-named
 * fields are replaced, whatever the call site logged. Logs go to stderr because stdout belongs to `--json` output.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { redactJsonText, redactString, redactValue } from '../common/redact.ts';

/** Levels accepted in CUTPOINT_LOG_LEVEL. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type CutpointLogLevel = (typeof LOG_LEVELS)[number];

/** Reads CUTPOINT_LOG_LEVEL, rejecting unknown values instead of silently logging at a default. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env, fallback: CutpointLogLevel = 'info'): CutpointLogLevel {
  const raw = env.CUTPOINT_LOG_LEVEL?.trim().toLowerCase();
  if (!raw) return fallback;
  if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as CutpointLogLevel;
  throw new Error(`CUTPOINT_LOG_LEVEL=${env.CUTPOINT_LOG_LEVEL} is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

/** pino options with redaction wired into every path a value can take into a line (arguments and bindings). */
export function loggerOptions(level: CutpointLogLevel): LoggerOptions {
  return {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => redactValue(a)) as Parameters<typeof method>);
      },
    },
    formatters: {
      bindings: (b) => redactValue(b) as Record<string, unknown>,
      log: (o) => redactValue(o) as Record<string, unknown>,
    },
    serializers: {
      err: (e: unknown) => redactValue(pino.stdSerializers.err(e as Error)),
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

/** Replaces the process-wide logger (tests, and the CLI when a verb wants a quieter default). */
export function setLogger(logger: Logger): void {
  root = logger;
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
