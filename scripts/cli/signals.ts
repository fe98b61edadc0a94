/**
 * Ctrl-C / SIGTERM handling for long-running verbs: the first signal starts a graceful shutdown (workers drain,
 * servers stop), a second one exits at once.
 */
export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void> | void): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`\ncutpoint: ${signal} again, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`\ncutpoint: ${signal} received, shutting down (again to force)\n`);
    void Promise.resolve(shutdown(signal)).catch((e: unknown) => {
      process.stderr.write(`cutpoint: error during shutdown: ${String(e)}\n`);
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
