/**
 * Ctrl-C / SIGTERM handling for long-running verbs: the first signal starts a graceful shutdown (workers drain,
 * servers stop; a start-up still under way is abandoned cleanly), a second one exits at once with code 130.
 *
 * cutpoint owns these signals: the Temporal Runtime is installed with `shutdownSignals: []` (workers/runtime.ts).
 */

/** The exit code of a second Ctrl-C / SIGTERM, which exits without waiting for the graceful shutdown. */
export const FORCED_EXIT_CODE = 130;

/**
 * Calls `shutdown` on the first SIGINT/SIGTERM. A failure of `shutdown`, thrown or rejected, is printed and makes the
 * process exit non-zero (see {@link finalExitCode}). Returns the un-registration.
 */
export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void> | void): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`\ncutpoint: ${signal} again, exiting now\n`);
      process.exit(FORCED_EXIT_CODE);
    }
    stopping = true;
    process.stderr.write(`\ncutpoint: ${signal} received, shutting down (again to force)\n`);
    // new Promise(...) turns a synchronous throw of `shutdown` into a rejection as well.
    void new Promise<void>((resolve) => resolve(shutdown(signal))).catch((e: unknown) => {
      process.stderr.write(`cutpoint: error during shutdown: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** An AbortSignal that the first SIGINT/SIGTERM aborts, and the un-registration of its handlers. */
export interface ShutdownRequest {
  signal: AbortSignal;
  release(): void;
}

/**
 * Registers the shutdown handlers and returns a signal that the first SIGINT/SIGTERM aborts. Long-running verbs call
 * this before their slow start-up (dev server, bundling), so a Ctrl-C at any moment ends them cleanly.
 */
export function shutdownRequest(): ShutdownRequest {
  const controller = new AbortController();
  const release = onShutdownSignal((signal) => controller.abort(new Error(`${signal} received`)));
  return { signal: controller.signal, release };
}

/** Resolves with `promise`'s value, or with undefined as soon as `signal` is aborted (whichever comes first). */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}

/**
 * The process's exit code once a verb returned `code`: a non-zero code set meanwhile by a failed shutdown
 * (`process.exitCode = 1` in {@link onShutdownSignal}) is kept rather than overwritten with 0.
 */
export function finalExitCode(code: number, current: number | string | null | undefined): number {
  if (code !== 0) return code;
  const previous = Number(current ?? 0);
  return Number.isInteger(previous) && previous !== 0 ? previous : 0;
}
