/** Every workflow type the orchestrator worker registers (its workflowsPath). Deterministic code only. */
export { healthCheck } from './health-check.ts';
export { clusterBackup } from './backup/cluster-backup.ts';
export { replicaSetBackup } from './backup/replica-set-backup.ts';
export { clusterLock } from './backup/cluster-lock.ts';
export { clusterRestore } from './restore/cluster-restore.ts';
export { replicaSetRestore } from './restore/replica-set-restore.ts';
export { verifyBackup } from './restore/verify-backup.ts';
export { seedMember } from './restore/seed-member.ts';
export { scheduledBackup } from './schedule/scheduled-backup.ts';
export { retention } from './schedule/retention.ts';
export { pitrCapture } from './pitr/pitr-capture.ts';
