/**
 * The registry of cutpoint's stable error codes (in the spirit of pgBackRest's error.yaml and mongosh's codes).
 *
 * Each code is an `ApplicationFailure` type string, so retry policies key on it, and maps to one CLI exit code.
 * Codes are API: add freely, never rename or reuse one. Workflow-safe (no I/O).
 */
import { ApplicationFailure } from '@temporalio/common';

/** Exit codes of docs/interfaces.md section 2. */
export const EXIT = { ok: 0, failure: 1, usage: 2, cancelled: 3 } as const;

/** How the registry describes one code. */
export interface ErrorSpec {
  /** Whether Temporal may retry an activity that failed with this code. */
  retryable: boolean;
  /** The CLI's exit code when a command ends with this error. */
  exit: (typeof EXIT)[keyof typeof EXIT];
  /** One line for the README's table. */
  summary: string;
}

/** The registry: every code cutpoint raises, with its retryability and exit code. */
export const ERRORS = {
  BAD_USAGE: { retryable: false, exit: EXIT.usage, summary: 'a command line or input value is invalid' },
  TEMPORAL_UNAVAILABLE: {
    retryable: true,
    exit: EXIT.failure,
    summary: 'the Temporal service cannot be reached, or no dev server could be provisioned',
  },
  WORKER_UNAVAILABLE: {
    retryable: true,
    exit: EXIT.failure,
    summary: 'a worker (the orchestrator, or the agent beside a mongod) did not answer on its task queue',
  },
  CANCELLED: { retryable: false, exit: EXIT.cancelled, summary: 'the operation was cancelled by a user' },
  MONGO_UNREACHABLE: { retryable: true, exit: EXIT.failure, summary: 'a MongoDB host cannot be reached' },
  MONGO_AUTH_FAILED: { retryable: false, exit: EXIT.usage, summary: 'MongoDB rejected the credentials the workers hold' },
  NO_BACKUP_CURSOR: {
    retryable: false,
    exit: EXIT.usage,
    summary: 'the server has no $backupCursor: Percona Server for MongoDB or MongoDB Enterprise is needed',
  },
  NOT_AUTHORIZED: {
    retryable: false,
    exit: EXIT.usage,
    summary: "MongoDB refused the backup user: a missing privilege (e.g. 'fsync': hostManager or clusterAdmin), or a cursor opened by another user",
  },
  BACKUP_CURSOR_BUSY: { retryable: false, exit: EXIT.failure, summary: 'another backup cursor is open on the chosen node' },
  CLUSTER_BUSY: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'another cutpoint backup of the same cluster is running (the message names it; --if-busy wait waits for it)',
  },
  NO_ELIGIBLE_NODE: { retryable: false, exit: EXIT.failure, summary: 'no member of a replica set can be backed up (health, lag ceiling, delay)' },
  NODE_BEHIND: {
    retryable: false,
    exit: EXIT.failure,
    summary: "the backed-up member's majority-committed point did not reach the common timestamp in time (replication stalled or far behind)",
  },
  CURSOR_LOST: { retryable: false, exit: EXIT.failure, summary: 'the backup cursor died before the copy was proven complete' },
  NO_STABLE_CHECKPOINT: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'the chosen member took no stable checkpoint within minutes (just started, or in initial sync): a backup of it could not be restored',
  },
  NOT_SUPPORTED: { retryable: false, exit: EXIT.usage, summary: 'the deployment or option is not supported by this version of cutpoint' },
  REPO_UNUSABLE: {
    retryable: false,
    exit: EXIT.usage,
    summary: 'the repository path cannot be used (not a directory, not writable, read-only, or not a cutpoint repository)',
  },
  DISK_FULL: { retryable: false, exit: EXIT.failure, summary: 'the repository ran out of space (ENOSPC or quota)' },
  REPO_IO: { retryable: true, exit: EXIT.failure, summary: 'a transient I/O error on the repository' },
  REPO_UNREACHABLE: {
    retryable: true,
    exit: EXIT.failure,
    summary: 'the object store holding the repository cannot be reached (connection refused, DNS, timeout); the message names the endpoint',
  },
  REPO_AUTH_FAILED: {
    retryable: false,
    exit: EXIT.usage,
    summary: 'the object store rejected the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or denied access to the bucket',
  },
  REPO_BUCKET_MISSING: { retryable: false, exit: EXIT.usage, summary: 'the bucket named by --repo s3://<bucket>/<prefix> does not exist' },
  REPO_FILE_MISSING: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'a file the repository should hold is missing (for a chunk: no index names it, or its pack is gone; the message names the chunk)',
  },
  REPO_CORRUPT: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'a repository file (manifest, work file, pack, index file) is unreadable or invalid; the message names the file and field',
  },
  COPY_SOURCE_INVALID: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'a file listed by the backup cursor is missing, unreadable or shorter than its listed size in the dbpath',
  },
  CAPTURE_SUPERSEDED: {
    retryable: false,
    exit: EXIT.failure,
    summary: "an oplog capture found that another capture of its replica set had sealed past it (an attempt given up on, still running): it stops, and the capture resumes from the newest segment",
  },
  COMMON_TIMESTAMP_UNSETTLED: {
    retryable: true,
    exit: EXIT.failure,
    summary: 'distributed transactions kept committing across every candidate common timestamp for a minute (activities/orchestrator/distributed-transactions.ts); retried',
  },
  BACKUP_NOT_FOUND: { retryable: false, exit: EXIT.usage, summary: 'no backup with this id in the repository' },
  PITR_NOT_RESTORABLE: {
    retryable: false,
    exit: EXIT.usage,
    summary: 'the point-in-time target is outside the restorable window, in a gap, or waits on an undecided transaction (the message names the window)',
  },
  BACKUP_NOT_RESTORABLE: { retryable: false, exit: EXIT.usage, summary: 'the backup is not complete (running, failed or cancelled): it cannot be restored' },
  CHECKSUM_MISMATCH: {
    retryable: false,
    exit: EXIT.failure,
    summary: "a backed-up file's or chunk's size or SHA-256 differs from its manifest or index; the message names the file, or the chunk and its pack",
  },
  TARGET_NOT_EMPTY: { retryable: false, exit: EXIT.usage, summary: 'a restore target dbpath or an export directory holds data (restore: --overwrite keeps it aside; export: --force)' },
  RESTORE_STEP_FAILED: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'a step of a restore on a target member failed after retries; the message names the member and what failed (e.g. the collection)',
  },
  MONGOD_START_FAILED: { retryable: false, exit: EXIT.failure, summary: 'a mongod a restore started exited or did not answer; the message has the end of its log' },
  REPO_PASSWORD_MISSING: {
    retryable: false,
    exit: EXIT.usage,
    summary: 'the repository is encrypted and this process has no password (CUTPOINT_REPO_PASSWORD, CUTPOINT_REPO_PASSWORD_FILE or --password-file)',
  },
  REPO_PASSWORD_WRONG: { retryable: false, exit: EXIT.usage, summary: "the password opens none of the encrypted repository's key files" },
  OBJECT_AUTH_FAILED: {
    retryable: false,
    exit: EXIT.failure,
    summary: 'an encrypted repository object failed authentication (modified, truncated, moved, or not written with its key); the message names the object',
  },
  REPO_LOCKED: { retryable: false, exit: EXIT.failure, summary: 'another process holds a lock of the repository (e.g. a prune; the message names its host and pid)' },
  INTERNAL: { retryable: false, exit: EXIT.failure, summary: 'a bug in cutpoint: please report it with the log' },
} as const satisfies Record<string, ErrorSpec>;

/** A registry code. */
export type ErrorCode = keyof typeof ERRORS;

/**
 * An error with a registry code, thrown by activities and CLI code alike. It is an `ApplicationFailure` whose `type`
 * is the code and whose `nonRetryable` comes from the registry, so an activity that throws one fails with a stable,
 * registry-typed failure (Temporal would otherwise report any other error as type `Error`, retryable).
 */
export class CutpointError extends ApplicationFailure {
  override name = 'CutpointError';
  /**
   * @param code the registry code (decides the exit code and retryability)
   * @param message what went wrong and what to do about it, for a user
   * @param details structured data for logs, carried as `ApplicationFailure.details[0]`
   * @param options `cause`: the error this one wraps (printed as a cause chain by the CLI); `nonRetryable`:
   *   overrides the registry for this occurrence (e.g. an unreachable host at the very first contact: the driver
   *   already tried for its whole server-selection timeout, so fail fast instead of retrying for minutes)
   */
  constructor(
    readonly code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    options?: { cause?: unknown; nonRetryable?: boolean },
  ) {
    const cause = options?.cause;
    super(message, code, options?.nonRetryable ?? !ERRORS[code].retryable, details ? [details] : undefined, cause instanceof Error ? cause : undefined);
    // A non-Error cause (rare) still reaches the CLI's cause chain.
    if (cause !== undefined && !(cause instanceof Error)) (this as { cause?: unknown }).cause = cause;
  }
}

/** True when `code` is a registry code (e.g. an `ApplicationFailure.type` coming back from a workflow). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The `ApplicationFailure` for a code, retryable or not as the registry says, optionally wrapping a cause. */
export function toFailure(code: ErrorCode, message: string, details?: Record<string, unknown>, cause?: Error): ApplicationFailure {
  return ApplicationFailure.create({
    type: code,
    message,
    nonRetryable: !ERRORS[code].retryable,
    details: details ? [details] : undefined,
    cause,
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
