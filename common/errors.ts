/**
 * The registry of cutpoint's stable error codes (in the spirit of pgBackRest's error.yaml and mongosh's codes).
 *
 * Each code is an `ApplicationFailure` type string, so retry policies key on it, and maps to one CLI exit code.
 * Codes are API: add freely, never rename or reuse one. Workflow-safe (no I/O).
 */
import { ApplicationFailure } from '@temporalio/common';

/** Exit codes of interfaces.md section 2. */
export const EXIT = { ok: 0, failure: 1, usage: 2, cancelled: 3 } as const;

export interface ErrorSpec {
  /** Whether Temporal may retry an activity that failed with this code. */
  retryable: boolean;
  /** The CLI's exit code when a command ends with this error. */
  exit: (typeof EXIT)[keyof typeof EXIT];
  /** One line for the README's table. */
  summary: string;
}

export const ERRORS = {
  BAD_USAGE: { retryable: false, exit: EXIT.usage, summary: 'a command line or input value is invalid' },
  TEMPORAL_UNAVAILABLE: {
    retryable: true,
    exit: EXIT.failure,
    summary: 'the Temporal service cannot be reached, or no dev server could be provisioned',
  },
  CANCELLED: { retryable: false, exit: EXIT.cancelled, summary: 'the operation was cancelled by a user' },
  INTERNAL: { retryable: false, exit: EXIT.failure, summary: 'a bug in cutpoint: please report it with the log' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a registry code, thrown by activities and CLI code alike. */
export class CutpointError extends Error {
  override name = 'CutpointError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** True when `code` is a registry code (e.g. an `ApplicationFailure.type` coming back from a workflow). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The `ApplicationFailure` for a code, retryable or not as the registry says. */
export function toFailure(code: ErrorCode, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({
    type: code,
    message,
    nonRetryable: !ERRORS[code].retryable,
    details: details ? [details] : undefined,
  });
}

/** Every non-retryable code, for `RetryPolicy.nonRetryableErrorTypes`. */
export function nonRetryableCodes(): ErrorCode[] {
  return (Object.keys(ERRORS) as ErrorCode[]).filter((c) => !ERRORS[c].retryable);
}

/** The exit code for a registry code; unknown codes are failures. */
export function exitCodeFor(code: string | undefined): number {
  return isErrorCode(code) ? ERRORS[code].exit : EXIT.failure;
}
