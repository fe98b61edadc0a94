/** How the CLI ends: exit codes per error, and what it prints (redacted, with the cause chain). */
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { CutpointError } from '../common/errors.ts';
import { TemporalCliUnavailableError } from '../scripts/temporal/cli-locator.ts';
import { agentTargets } from './cmd-agent.ts';
import { reportError, run } from './program.ts';

function report(e: unknown): { code: number; text: string } {
  let text = '';
  const code = reportError(e, (t) => (text += t));
  return { code, text };
}

describe('reportError', () => {
  it('prints the redacted cause chain of a failed `up` health check (WorkflowFailedError → ActivityFailure → TimeoutFailure)', () => {
    const timeout = new TimeoutFailure('activity ScheduleToClose timeout', undefined, TimeoutType.SCHEDULE_TO_CLOSE);
    const activity = new ActivityFailure('Activity task timed out', 'describeWorker', '1', RetryState.TIMEOUT, 'w@h', timeout);
    const err = new WorkflowFailedError('Workflow execution failed for mongodb://u:wf-secret@h:1', activity, RetryState.NON_RETRYABLE_FAILURE);
    const { code, text } = report(err);
    expect(code).toBe(1);
    expect(text).toMatch(/^cutpoint: WorkflowFailedError: Workflow execution failed for mongodb:\/\/u:\*\*\*@h:1/);
    expect(text).toContain('\n  caused by ActivityFailure: Activity task timed out\n  caused by TimeoutFailure: activity ScheduleToClose timeout\n');
    expect(text).not.toContain('wf-secret');
  });

  it('exits with the registry code found in a workflow failure chain', () => {
    const failure = ApplicationFailure.create({ type: 'WORKER_UNAVAILABLE', message: 'the agent of mongod h:1 did not answer' });
    const { code, text } = report(new WorkflowFailedError('Workflow execution failed', failure, RetryState.NON_RETRYABLE_FAILURE));
    expect(code).toBe(1);
    expect(text).toMatch(/^cutpoint: WORKER_UNAVAILABLE: WorkflowFailedError: Workflow execution failed\n  caused by ApplicationFailure: the agent of mongod h:1/);
  });

  it('maps TemporalCliUnavailableError to TEMPORAL_UNAVAILABLE (exit 1) with its message and cause', () => {
    const err = new TemporalCliUnavailableError('No Temporal server could be provisioned.', { cause: new Error('getaddrinfo ENOTFOUND x') });
    const { code, text } = report(err);
    expect(code).toBe(1);
    expect(text).toBe('cutpoint: TEMPORAL_UNAVAILABLE: No Temporal server could be provisioned.\n  caused by Error: getaddrinfo ENOTFOUND x\n');
  });

  it('exits 2 on BAD_USAGE and lists AggregateError members', () => {
    expect(report(new CutpointError('BAD_USAGE', 'nope')).code).toBe(2);
    const { text } = report(new AggregateError([new Error('mongodb://a:agg-secret@h:1 down')], 'two failed'));
    expect(text).toContain('\n  - Error: mongodb://a:***@h:1 down');
    expect(text).not.toContain('agg-secret');
  });
});

describe('run', () => {
  it('ends a verb\'s usage error with exit 2 (commander propagates exitOverride to subcommands)', async () => {
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await run(['node', 'cutpoint', 'agent', '--bogus'])).toBe(2);
      expect(await run(['node', 'cutpoint', 'agent', '--mongod', 'h:1', '--mongod', 'H:01'])).toBe(2);
    } finally {
      process.stderr.write = stderr;
    }
  });

  it.each([
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--rate', 'fast'], "'fast' is not a rate"],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--max-lag', ''], "--max-lag must be an integer >= 0, got ''"],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--parallel', '0'], "--parallel must be an integer >= 1, got '0'"],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--keep-alive-ms', '1e3'], "--keep-alive-ms must be an integer >= 1000, got '1e3'"],
    [['restore', 'b1', '--repo', '/r', '--to', 'm.json', '--agent-timeout-ms', '999'], "--agent-timeout-ms must be an integer >= 1000, got '999'"],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--keep-alive-ms', '600000'], '--keep-alive-ms must be at most 300000'],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/r', '--parallel', '65'], '--parallel must be at most 64, got 65'],
    [['prune', '--repo', '/r', '--keep-last', '-1'], "--keep-last must be an integer >= 0, got '-1'"],
    [['prune', '--repo', '/r', '--clean-after-hours', 'soon'], "--clean-after-hours must be a number >= 0, got 'soon'"],
    [['prune', '--repo', '/r', '--keep-last', '1', '--if-locked', 'later'], '--if-locked is wait or fail, not "later"'],
    [['throttle', 'b1', '5 parsecs'], "'5 parsecs' is not a rate"],
  ])('refuses a bad option value before connecting anywhere (exit 2): %j', async (args, message) => {
    const stderr = process.stderr.write;
    let text = '';
    process.stderr.write = ((t: string) => ((text += t), true)) as typeof process.stderr.write;
    try {
      expect(await run(['node', 'cutpoint', ...args])).toBe(2);
    } finally {
      process.stderr.write = stderr;
    }
    expect(text).toContain(`cutpoint: BAD_USAGE: ${message}`);
  });
});

describe('agentTargets', () => {
  it('rejects a mongod given twice (after normalizing) before anything connects', () => {
    expect(() => agentTargets(['db1:27017', 'DB1:27017'], [])).toThrow(/--mongod db1:27017 is given twice/);
    expect(() => agentTargets(['db1:27017', 'DB1:27017'], [])).toThrow(expect.objectContaining({ code: 'BAD_USAGE' }) as Error);
    expect(agentTargets(['db1:27017', 'db2:27017'], ['/a', '/b'])).toEqual([
      { mongod: 'db1:27017', dbpath: '/a' },
      { mongod: 'db2:27017', dbpath: '/b' },
    ]);
  });
});
