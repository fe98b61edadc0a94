/**
 * signalWorkflows: one signal to every workflow named; a workflow that has closed is skipped (the parent learns its end
 * from its result), any other failure fails the activity (retried as a whole: the handlers take a repeat as the same).
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { signalWorkflowActivities } from './signal-workflows.ts';

/** A client whose handles record signals; `fail` says what a signal to an id throws. */
function fakeClient(fail: (id: string) => Error | undefined) {
  const sent: Array<[string, string, unknown[]]> = [];
  const client = {
    workflow: {
      getHandle: (id: string) => ({
        signal: async (name: string, ...args: unknown[]) => {
          const e = fail(id);
          if (e) throw e;
          sent.push([id, name, args]);
        },
      }),
    },
  } as unknown as Client;
  return { client, sent };
}

describe('signalWorkflows', () => {
  it('signals every workflow, with the argument when there is one', async () => {
    const { client, sent } = fakeClient(() => undefined);
    const { signalWorkflows } = signalWorkflowActivities(client);
    await new MockActivityEnvironment().run(signalWorkflows, { workflowIds: ['a', 'b'], signal: 'extendTo', arg: { to: { t: 1, i: 1 } } });
    await new MockActivityEnvironment().run(signalWorkflows, { workflowIds: ['a'], signal: 'openCursors' });
    expect(sent).toEqual([
      ['a', 'extendTo', [{ to: { t: 1, i: 1 } }]],
      ['b', 'extendTo', [{ to: { t: 1, i: 1 } }]],
      ['a', 'openCursors', []],
    ]);
  });

  it('skips a workflow that has closed; fails on any other error', async () => {
    const closed = fakeClient((id) => (id === 'gone' ? new WorkflowNotFoundError('workflow execution already completed', id, undefined) : undefined));
    await new MockActivityEnvironment().run(signalWorkflowActivities(closed.client).signalWorkflows, { workflowIds: ['gone', 'b'], signal: 'finish', arg: {} });
    expect(closed.sent.map(([id]) => id)).toEqual(['b']);
    const broken = fakeClient(() => new Error('connection refused'));
    await expect(new MockActivityEnvironment().run(signalWorkflowActivities(broken.client).signalWorkflows, { workflowIds: ['b'], signal: 'finish' })).rejects.toThrow('connection refused');
  });
});
