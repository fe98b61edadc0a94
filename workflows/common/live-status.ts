/**
 * What every long-running cutpoint workflow shows while it runs, in one place: the UI's current details and the
 * search attributes an operator filters on (phase, status, bytes), and the `cancel` signal that cancels the
 * workflow's main scope while leaving its cleanup to run. Workflow code only.
 */
import { CancellationScope, setCurrentDetails, setHandler, upsertSearchAttributes, type SignalDefinition } from '@temporalio/workflow';
import { CutpointBytes, CutpointPhase, CutpointStatus } from '../../common/search-attributes.ts';

/** Shows a progress snapshot: `markdown` as the UI's current details, phase/status/bytes as search attributes. */
export function publishStatus(markdown: string, p: { phase: string; status: string; bytesDone: number }): void {
  setCurrentDetails(markdown);
  upsertSearchAttributes([
    { key: CutpointPhase, value: p.phase },
    { key: CutpointStatus, value: p.status },
    { key: CutpointBytes, value: p.bytesDone },
  ]);
}

/** A main scope that the `cancel` signal cancels, and the reason it was given. */
export interface Cancellable {
  scope: CancellationScope;
  /** The signal's reason (default 'cancel signal'); undefined until a cancel signal arrives. */
  reason(): string | undefined;
}

/** Registers the handler of a `cancel` signal (with `description` for the UI) over a new main scope. */
export function cancellableBySignal(signal: SignalDefinition<[{ reason?: string }?]>, description: string): Cancellable {
  const scope = new CancellationScope();
  let reason: string | undefined;
  setHandler(
    signal,
    (arg) => {
      reason = arg?.reason ?? 'cancel signal';
      scope.cancel();
    },
    { description },
  );
  return { scope, reason: () => reason };
}
