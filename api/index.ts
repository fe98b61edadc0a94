/**
 * The programmatic client API: everything the CLI does, for any Node program. Each function that talks to Temporal
 * takes a `@temporalio/client` `Client` (repo.ts's read the repository only);
 * `connectClient(temporalTargetFromEnv())` makes one from the environment the CLI reads
 * (README, "Environment variables"). The modules behind this index hold the details: backups.ts, restores.ts,
 * catalogue.ts, prune.ts, repo.ts, schedules.ts.
 */
export * from './backups.ts';
export * from './catalogue.ts';
export * from './export.ts';
export * from './prune.ts';
export * from './repo.ts';
export * from './restores.ts';
export * from './schedules.ts';
export { connectClient, temporalTargetFromEnv, type TemporalTarget } from '../lib/temporal-connection.ts';
