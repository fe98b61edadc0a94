import type { WireLogger } from './logger.ts';

/** One captured log line. */
export interface CapturedLog {
  readonly level: keyof WireLogger;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A {@link WireLogger} that keeps every line in memory, so tests can assert what was logged. */
export function captureLogger(): WireLogger & { readonly lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const at =
    (level: keyof WireLogger) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
