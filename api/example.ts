// The README's API example, type-checked by `npm run check` (api/example.test.ts keeps the two equal).
import {
  backupResult,
  connectClient,
  createSchedule,
  listBackups,
  readTargetMap,
  restoreResult,
  setBackupThrottle,
  startBackup,
  startRestore,
  temporalTargetFromEnv,
  watchBackup,
} from './index.ts';

const { client, connection } = await connectClient(temporalTargetFromEnv());
const { id } = await startBackup(client, { uri: 'mongodb://db1:27017/?replicaSet=rs0', repo: '/backups', ifBusy: 'wait' });
await setBackupThrottle(client, id, 50 * 1024 * 1024); // 50 MiB/s from now on
for await (const p of watchBackup(client, id)) console.log(p.phase, p.bytesDone, '/', p.bytesTotal);
const summary = await backupResult(client, id); // docs/interfaces.md section 3; cancelBackup(client, id) stops a backup
console.log(summary.status, summary.commonTimestamp);
const { backups } = await listBackups('/backups', { client }); // the catalogue, from the manifests
console.log(backups.map((b) => `${b.id} ${b.status}`));
const restore = await startRestore(client, { backupId: id, repo: '/backups', to: readTargetMap('map.json') });
console.log((await restoreResult(client, restore.id)).status);
await createSchedule(client, {
  name: 'nightly',
  cron: '0 3 * * *',
  backup: { uri: 'mongodb://mongos1:27017/', repo: '/backups' },
  retention: { keepDaily: 7, keepWeekly: 4 },
});
await connection.close();
