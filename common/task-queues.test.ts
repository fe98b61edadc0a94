import { describe, expect, it } from 'vitest';
import { agentTaskQueue, normalizeHostPort } from './task-queues.ts';

describe('task queues', () => {
  it('normalizes host:port so agent and workflow agree', () => {
    expect(agentTaskQueue('DB1.Example.net:27017')).toBe('cutpoint-agent:db1.example.net:27017');
    expect(normalizeHostPort(' 127.0.0.1:07018 ')).toBe('127.0.0.1:7018');
    expect(normalizeHostPort('[::1]:27017')).toBe('[::1]:27017');
  });

  it.each(['localhost', 'host:', ':27017', 'host:70000', 'host:0', 'a b:1'])('rejects %s', (bad) => {
    expect(() => normalizeHostPort(bad)).toThrow(/host:port|out of range/);
  });
});
