/**
 * PSMDB's `createBackup` (docs/psmdb-behaviour.md section 6): `{createBackup: 1, backupDir: "<absolute path>"}` on
 * `admin`. Synchronous and server-side: a checkpoint, then the hot-backup state of the backup hooks (29101, 29102,
 * 29103 when the slot is taken; `$backupCursor` meanwhile gets 29098, an extend 29099, `fsync {lock}` 29097), the
 * checkpoint pinned, every file of the backup copied whole into `backupDir` (log files under `journal/`) plus
 * `storage.bson`, then `{ok: 1}`. Restoring the directory as a dbpath gives the data at the pinned checkpoint.
 *
 * `archive` and `s3` destinations are not simulated (115 CommandNotSupported).
 */
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../../../lib/process.ts';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandImpl } from '../types.ts';

export const createBackup: CommandImpl = async ({ node, db, command }) => {
  if (node.flavor !== 'psmdb') throw new CommandError(ErrorCodes.CommandNotFound, "no such command: 'createBackup'");
  if (db !== 'admin') throw new CommandError(ErrorCodes.Unauthorized, 'createBackup may only be run against the admin database.');
  const destinations = ['backupDir', 'archive', 's3'].filter((k) => command[k] !== undefined);
  if (destinations.length !== 1) return { ok: 0, errmsg: "one of 'backupDir', 'archive' or 's3' parameters must be specified" };
  if (destinations[0] !== 'backupDir') {
    throw new CommandError(ErrorCodes.CommandNotSupported, `createBackup with '${destinations[0]!}' is not supported by the simulator; use backupDir`);
  }
  const dir = command.backupDir as unknown;
  // mongod's errmsg-style failures: {ok: 0, errmsg} without a code.
  if (typeof dir !== 'string' || !path.isAbsolute(dir)) return { ok: 0, errmsg: 'Destination path must be absolute' };
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    return { ok: 0, errmsg: `Cannot create destination directory: ${(e as Error).message}` };
  }
  const hooks = node.backup!;
  node.engine.checkpoint(); // flushAllFiles
  const files = await hooks.enterHotBackup();
  try {
    while (hooks.failPoints.isOn('simHangDuringCreateBackup') && node.up) await sleep(20);
    for (const f of files) {
      const dest = path.join(dir, f.path);
      await fs.promises.mkdir(path.dirname(dest), { recursive: true });
      await fs.promises.copyFile(path.join(node.dbpath, f.path), dest);
    }
    await fs.promises.copyFile(path.join(node.dbpath, 'storage.bson'), path.join(dir, 'storage.bson'));
  } catch (e) {
    return { ok: 0, errmsg: (e as Error).message };
  } finally {
    hooks.exitHotBackup();
  }
  return {};
};
