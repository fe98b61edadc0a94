/**
 * Running steps side by side where a step may not be abandoned: unlike `Promise.all`, which rejects at the first
 * failure while the other steps still run, this settles only once every step has ended. At the first failure it calls
 * `onFirstFailure` (a workflow cancels the other steps' scope there, so they stop instead of running to their end),
 * waits for every step, then rejects with that first failure (not with the cancellations it caused).
 */
export async function settleAll<T>(steps: Array<() => Promise<T>>, onFirstFailure: () => void = () => undefined): Promise<T[]> {
  let failed = false;
  let first: unknown;
  const results = await Promise.allSettled(
    steps.map(async (step) => {
      try {
        return await step();
      } catch (e) {
        if (!failed) {
          failed = true;
          first = e;
          onFirstFailure();
        }
        throw e;
      }
    }),
  );
  if (failed) throw first;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
