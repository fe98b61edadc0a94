/** Every workflow type the orchestrator worker registers (its workflowsPath). Deterministic code only. */
export { healthCheck } from './health-check.ts';
