/**
 * `cutpoint repo init|check|stats|key`: maintenance of a repository, read directly (api/repo.ts); no Temporal
 * connection. `check` exits 1 when it finds damage, as `verify` does. `key add|list|remove|passwd` manage the keys
 * of an encrypted repository (docs/repository-format.md section 16).
 */
import type { Command } from 'commander';
import { EXIT } from '../common/errors.ts';
import { formatBytes } from '../common/units.ts';
import { type CheckReport, checkRepository, repositoryStats } from '../api/repo.ts';
import {
  addRepositoryKey,
  changeRepositoryPassword,
  initRepository,
  listRepositoryKeys,
  removeRepositoryKey,
} from '../api/repo.ts';
import { readPasswordFile } from '../repository/encryption/password.ts';
import type { CliContext } from './context.ts';
import { passwordFileOption } from './password-file.ts';

function printCheck(ctx: CliContext, r: CheckReport): void {
  const c = r.checked;
  ctx.out(
    `check of ${r.repo} (${r.format ?? 'unknown format'}${r.readData ? ', data read' : ', structure only'}): ${c.packs} packs, ${c.indexes} index files, ${c.chunks} chunks, ${c.backups} backups, ${c.files} files`,
  );
  for (const p of r.problems) {
    ctx.out(`  DAMAGED ${p.kind} ${p.object}: ${p.message}`);
    if (p.backups.length) ctx.out(`    needed by backups: ${p.backups.join(', ')}`);
    for (const f of p.files.slice(0, 20)) ctx.out(`    ${f.backup} ${f.replicaSet}/${f.path}`);
    if (p.files.length > 20) ctx.out(`    … and ${p.files.length - 20} more files`);
  }
  for (const g of r.garbage) ctx.out(`  garbage ${g.object} (${formatBytes(g.size)}): ${g.message}`);
  ctx.out(r.problems.length ? `${r.problems.length} damaged objects` : 'no damage found');
}

/** Packs done / total on stderr, at most once a second (a line each time when stderr is not a terminal). */
function progressPrinter(): (done: number, total: number) => void {
  let last = 0;
  const tty = process.stderr.isTTY;
  return (done, total) => {
    const now = Date.now();
    if (done < total && now - last < 1000) return;
    last = now;
    process.stderr.write(`${tty ? '\r' : ''}read ${done}/${total} packs${tty && done < total ? '' : '\n'}`);
  };
}

export function registerRepo(program: Command, ctx: CliContext): void {
  const repo = program.command('repo').description('repository maintenance: create it, check its integrity, show its statistics, manage its keys');

  passwordFileOption(
    repo
      .command('init')
      .description('create a format-v2 repository in an empty or new location; encrypted with --encrypt, or when a password is set')
      .requiredOption('--repo <dir>', 'repository directory')
      .option('--encrypt', 'encrypt it (the password: CUTPOINT_REPO_PASSWORD, CUTPOINT_REPO_PASSWORD_FILE or --password-file)')
      .option('--compression <type>', 'zstd (default), or none: chunks stored as they are (fastest; deduplicated all the same)')
      .option('--json', 'print the result as JSON'),
  ).action(async (o: { repo: string; encrypt?: boolean; compression?: string; json?: boolean }) => {
    const r = await initRepository(o.repo, { encrypt: o.encrypt === true, ...(o.compression ? { compression: o.compression } : {}) });
    if (o.json) ctx.out(JSON.stringify(r));
    else ctx.out(`created ${r.format} repository ${r.repo}${r.compression === 'none' ? ' (chunks not compressed)' : ''}${r.encrypted ? ' (encrypted: keep the password safe; without any key nothing in it can be read)' : ''}`);
  });

  const key = repo.command('key').description('the keys of an encrypted repository: several passwords open it; changing one rewrites no data');
  passwordFileOption(
    key
      .command('list')
      .description('the key files (the one the current password opens is marked *)')
      .requiredOption('--repo <dir>', 'repository directory')
      .option('--json', 'print the keys as JSON'),
  ).action(async (o: { repo: string; json?: boolean }) => {
    const keys = await listRepositoryKeys(o.repo);
    if (o.json) {
      ctx.out(JSON.stringify({ keys }));
      return;
    }
    for (const k of keys) ctx.out(`${k.current ? '*' : ' '} ${k.id.slice(0, 8)}  ${k.createdAt}  ${k.user}@${k.host}`);
  });
  passwordFileOption(
    key
      .command('add')
      .description('add a key for another password (the current one must open the repository)')
      .requiredOption('--repo <dir>', 'repository directory')
      .requiredOption('--new-password-file <file>', 'file whose first line is the new password'),
  ).action(async (o: { repo: string; newPasswordFile: string }) => {
    const id = await addRepositoryKey(o.repo, readPasswordFile(o.newPasswordFile));
    ctx.out(`added key ${id.slice(0, 8)}`);
  });
  passwordFileOption(
    key
      .command('remove')
      .description('remove a key (an id or a unique prefix); the last key, and the one the current password opens, are refused')
      .argument('<id>', 'key id, or a unique prefix of it (see: repo key list)')
      .requiredOption('--repo <dir>', 'repository directory'),
  ).action(async (id: string, o: { repo: string }) => {
    const removed = await removeRepositoryKey(o.repo, id);
    ctx.out(`removed key ${removed.slice(0, 8)}`);
  });
  passwordFileOption(
    key
      .command('passwd')
      .description("change the password: a key for the new one replaces the current one's key; no data is rewritten")
      .requiredOption('--repo <dir>', 'repository directory')
      .requiredOption('--new-password-file <file>', 'file whose first line is the new password'),
  ).action(async (o: { repo: string; newPasswordFile: string }) => {
    const r = await changeRepositoryPassword(o.repo, readPasswordFile(o.newPasswordFile));
    ctx.out(`password changed: key ${r.added.slice(0, 8)} replaces ${r.removed.slice(0, 8)}`);
  });

  repo
    .command('check')
    .description('check a repository: index files, packs and their headers, every chunk the manifests name; exits 1 naming every damaged object and the backups that need it')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--read-data', 'also read every pack whole and check every chunk (slow: reads the whole repository)')
    .option('--json', 'print the report as JSON')
    .action(async (o: { repo: string; readData?: boolean; json?: boolean }) => {
      const report = await checkRepository(o.repo, { readData: o.readData === true, ...(o.json || !o.readData ? {} : { onProgress: progressPrinter() }) });
      if (o.json) ctx.out(JSON.stringify(report));
      else printCheck(ctx, report);
      if (report.problems.length) ctx.setExit(EXIT.failure);
    });

  repo
    .command('stats')
    .description('what a repository holds: backups, chunks, stored and logical bytes, compression and deduplication ratios')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--json', 'print the statistics as JSON')
    .action(async (o: { repo: string; json?: boolean }) => {
      const s = await repositoryStats(o.repo);
      if (o.json) {
        ctx.out(JSON.stringify(s));
        return;
      }
      const r = (x: number | null) => (x === null ? '—' : x.toFixed(2));
      ctx.out(`format             ${s.format}${s.encrypted ? ' (encrypted)' : ''}`);
      ctx.out(`complete backups   ${s.backups}`);
      ctx.out(`chunks             ${s.chunks}`);
      ctx.out(`stored             ${formatBytes(s.storedBytes)}`);
      ctx.out(`logical            ${formatBytes(s.logicalBytes)}`);
      ctx.out(`compression ratio  ${r(s.compressionRatio)}`);
      ctx.out(`dedup ratio        ${r(s.dedupRatio)}`);
    });

  for (const name of ['check', 'stats']) passwordFileOption(repo.commands.find((c) => c.name() === name)!);
}
