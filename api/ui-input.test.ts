/**
 * The README's Start Workflow recipe for the Temporal UI: its JSON input is a valid backup input and the workflow
 * type it names is the one the orchestrator registers.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BackupInput } from '../common/backup-types.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import * as workflows from '../workflows/index.ts';
import { validateBackupInput } from './backups.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## From the Temporal UI'), readme.indexOf('## Failure handling'));

describe('README: starting a backup from the Temporal UI', () => {
  it('documents a JSON input that is a valid backup input', () => {
    const json = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
    expect(json, 'a ```json block in the section').toBeDefined();
    const input = JSON.parse(json!) as BackupInput;
    expect(() => validateBackupInput(input)).not.toThrow();
    expect(input.uri).not.toMatch(/@/);
  });

  it('names the registered workflow type and the orchestrator task queue', () => {
    const type = /Workflow Type `(\w+)`/.exec(section)?.[1];
    expect(type).toBe('clusterBackup');
    expect(typeof (workflows as Record<string, unknown>)[type!]).toBe('function');
    expect(section).toContain(`Task Queue \`${ORCHESTRATOR_TASK_QUEUE}\``);
  });
});
