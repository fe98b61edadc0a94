/**
 * How a workflow ends, the same way for backups, restores and verifies: its main scope's failure (or none) and the
 * reason of a `cancel` signal become a status and a registry error; the summary is returned when the workflow
 * completed, or thrown as the details of a cancellation or failure, so that Temporal (and its UI) shows the workflow
 * Canceled or Failed while clients still get the summary.
 */
import { ApplicationFailure, CancelledFailure, isCancellation } from '@temporalio/workflow';
import { isErrorCode } from '../../common/errors.ts';

/** A registry code and a message for a user. */
export interface ErrorInfo {
  code: string;
  message: string;
}

export interface Outcome {
  status: 'complete' | 'cancelled' | 'failed';
  error?: ErrorInfo;
}

interface FailureLike {
  message?: string;
  type?: string;
  cause?: unknown;
}

/**
 * The registry code and message of a failure, looking through the Child/Activity failure wrappers to the
 * ApplicationFailure that carries a registry type. Unknown failures are INTERNAL with their message.
 */
export function failureInfo(e: unknown): { code: string; message: string } {
  let cur = e as FailureLike | undefined;
  let deepest: FailureLike | undefined;
  for (let depth = 0; cur && depth < 10; depth++) {
    if (cur.type && isErrorCode(cur.type)) return { code: cur.type, message: cur.message ?? cur.type };
    deepest = cur;
    cur = cur.cause as FailureLike | undefined;
  }
  return { code: 'INTERNAL', message: deepest?.message ?? String(e) };
}

/** The outcome of a main scope that ended with `failure` (undefined: it completed); `cancelReason` from the cancel signal. */
export function outcomeOf(failure: unknown, cancelReason: string | undefined): Outcome {
  if (failure === undefined) return { status: 'complete' };
  if (isCancellation(failure) || cancelReason !== undefined) {
    return { status: 'cancelled', error: { code: 'CANCELLED', message: `cancelled: ${cancelReason ?? 'workflow cancellation'}` } };
  }
  return { status: 'failed', error: failureInfo(failure) };
}

/** A workflow's failure with the registry code of `error` (from {@link failureInfo} or a summary), not retried. */
export function failWith(error: ErrorInfo, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: isErrorCode(error.code) ? error.code : 'INTERNAL', message: error.message, nonRetryable: true, details: details === undefined ? undefined : [details] });
}

/** Returns `summary` when `outcome` is complete; otherwise throws it as the details of a cancellation or a failure. */
export function settle<S>(outcome: Outcome, summary: S): S {
  if (outcome.status === 'complete') return summary;
  const error = outcome.error ?? { code: 'INTERNAL', message: `ended ${outcome.status} without an error` };
  if (outcome.status === 'cancelled') throw new CancelledFailure(error.message, [summary]);
  throw failWith(error, summary);
}
