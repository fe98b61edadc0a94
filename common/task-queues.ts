/** Task queue names: the orchestrator's and one per mongod for its agent (docs/architecture.md, "Processes"). */

/** The orchestrator worker's task queue: every workflow and the control-plane activities. */
export const ORCHESTRATOR_TASK_QUEUE = 'cutpoint';

const AGENT_PREFIX = 'cutpoint-agent:';

/**
 * Validates and normalizes a `host:port` (lower-case host, decimal port) so that the agent and the workflow that
 * routes work to it always derive the same queue name from what a user typed and what `hello.me` reports.
 */
export function normalizeHostPort(hostPort: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(hostPort.trim());
  if (!m || !m[1] || !m[2]) throw new Error(`'${hostPort}' is not host:port (for example 127.0.0.1:27017)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`'${hostPort}': port ${port} is out of range 1-65535`);
  return `${m[1].toLowerCase()}:${port}`;
}

/** The task queue of the agent that serves the mongod at `hostPort`. */
export function agentTaskQueue(hostPort: string): string {
  return AGENT_PREFIX + normalizeHostPort(hostPort);
}
