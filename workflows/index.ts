/** Every workflow type the orchestrator worker registers (its workflowsPath). Deterministic code only. */
export { healthCheck } from './health-check.ts';
export { clusterBackup } from './backup/cluster-backup.ts';
export { replicaSetBackup } from './backup/replica-set-backup.ts';
