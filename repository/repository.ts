/**
 * {@link Repository}: layout v1 (docs/interfaces.md section 4) on a {@link Storage}: cutpoint.json, cluster and
 * replica-set manifests, data files, and the work files of a running backup (the file list, per-batch copy results)
 * from which the replica-set manifest is assembled. Plain async code: the Temporal activities call it.
 *
 * Invariants (README.md in this directory): manifests are validated on write and on read; the cluster manifest is
 * written `complete` only after every replica-set manifest it names is durable (checked here); every write is
 * atomic.
 *
 * @module
 */
import { posix } from 'node:path';
import { CutpointError } from '../common/errors.ts';
import {
  type ClusterManifest,
  layout,
  type ManifestFile,
  READABLE_FORMATS,
  REPOSITORY_FORMAT,
  REPOSITORY_FORMAT_V1,
  type ReplicaSetManifest,
  type RepositoryConfig,
  validateBackupId,
} from '../common/manifest.ts';
import { CorruptFileError } from './errors.ts';
import { ChunkIndex } from './v2/chunk-index.ts';
import { ChunkReader } from './v2/chunk-reader.ts';
import { ChunkWriter } from './v2/chunk-writer.ts';
import { type ChunkHasher, sha256Hasher } from './v2/chunk-id.ts';
import { PackWriter } from './v2/pack.ts';
import { defaultRepositoryConfigV2, type RepositoryConfigV2, repositoryConfigV2Schema } from './v2/format.ts';
import { FileList } from './file-list.ts';
import { storageAt, type StorageAtOptions } from './storage-at.ts';
import { RetryStorage, type RetryOptions } from './retry-storage.ts';
import {
  batchResultSchema,
  clusterManifestSchema,
  describeIssues,
  replicaSetManifestSchema,
  repositoryConfigSchema,
} from './schema.ts';
import { type Storage, StorageError, validatePath } from './storage.ts';
import { EncryptingStorage } from './encryption/encrypting-storage.ts';
import { addKey, createMasterKey, KEYS_DIR, type KeyInfo, listKeys, removeKey, type RepositoryKeys, type ScryptParams, unlock } from './encryption/keys.ts';
import { type PasswordSource, passwordFromEnvironment } from './encryption/password.ts';
import type { z } from 'zod';

/** One copied file in a batch result: a manifest entry plus its index in the file list. */
export interface BatchFile extends ManifestFile {
  index: number;
}

/** `layout.work(id, rs, 'batch-<n>.json')`: what one copy batch stored. */
export interface BatchResult {
  files: BatchFile[];
}

/** What {@link Repository.listBackups} found. */
export interface BackupListing {
  /** Readable backups, sorted by id. */
  backups: Array<{ id: string; manifest: ClusterManifest }>;
  /** Directories under `backups/` whose manifest is missing or unreadable, each with the reason. */
  problems: Array<{ id: string; path: string; error: string }>;
}

/** The replica-set manifest fields other than the files (which come from the batch results). */
export type ReplicaSetMeta = Omit<ReplicaSetManifest, 'format' | 'name' | 'files'>;

/**
 * A replica-set name becomes a directory beside `manifest.json`: letters, digits, '.', '_', '-', not starting with
 * '.', and not `manifest.json`.
 */
export function validateReplicaSetName(rs: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(rs) || rs === 'manifest.json') {
    throw new CutpointError('BAD_USAGE', `replica set name '${rs}' cannot be stored: use 1-128 letters, digits, '.', '_' or '-', not starting with '.'`);
  }
  return rs;
}

const BATCH_FILE = /^batch-(\d+)\.json$/;

/** Options of {@link Repository}. */
export interface RepositoryOptions {
  /** Where the password of an encrypted repository comes from (default: this process's environment). */
  password?: PasswordSource;
  /** scrypt cost of key files this repository writes (tests lower it). */
  scrypt?: ScryptParams;
}

/** Options of {@link Repository.init}. */
export interface InitOptions {
  /** Encrypt the new repository (default: when a password is available). */
  encrypt?: boolean;
  /** How new chunks are stored (default `zstd`; `none`: plain, docs/repository-format.md section 6). */
  compression?: 'zstd' | 'none';
}

/** A cutpoint repository on a {@link Storage}. Stateless: safe to share between concurrent activities. */
export class Repository {
  /** The format of cutpoint.json, once read. */
  #format: string | undefined;
  /** v2: the chunk index, loaded on first use (reads and the commit check). */
  #index: Promise<ChunkIndex> | undefined;
  /** The keys once unlocked (`null`: not encrypted). */
  #keys: Promise<RepositoryKeys | null> | undefined;
  readonly #password: PasswordSource;
  readonly #scrypt: ScryptParams | undefined;
  /**
   * What every reader and writer of the repository goes through: in an encrypted repository it seals and opens
   * every object but cutpoint.json and key files (repository/encryption/encrypting-storage.ts).
   */
  readonly storage: Storage;

  constructor(
    /** The storage as it is, ciphertext and all. */
    readonly raw: Storage,
    options: RepositoryOptions = {},
  ) {
    this.#password = options.password ?? (() => passwordFromEnvironment());
    this.#scrypt = options.scrypt;
    this.storage = new EncryptingStorage(raw, async () => (await this.keys())?.objects ?? null);
  }

  /**
   * The keys of an encrypted repository, unlocked with this process's password once (a failure is not kept: the
   * next call tries again); `null` for a repository that is not encrypted or does not exist yet.
   */
  keys(): Promise<RepositoryKeys | null> {
    if (this.#keys) return this.#keys;
    const loading = (async () => {
      const config = await this.#readConfig();
      if (!config) return null;
      if (!config.encryption) {
        const keyFiles = await this.raw.listChildren(KEYS_DIR);
        if (keyFiles.length) {
          throw new CorruptFileError(this.#where(layout.config()), 'encryption', `${this.#where(layout.config())} says the repository is not encrypted, but it holds key files under ${KEYS_DIR}/: refusing to read or write it in the clear`);
        }
        return null;
      }
      return unlock(this.raw, this.#password(), config.encryption.keyCheck);
    })();
    this.#keys = loading;
    loading.then(
      (k) => {
        if (k === null && this.#format === undefined && this.#keys === loading) this.#keys = undefined; // no repository yet
      },
      () => {
        if (this.#keys === loading) this.#keys = undefined;
      },
    );
    return loading;
  }

  /** Whether the repository is encrypted (opening it). */
  async encrypted(): Promise<boolean> {
    return (await this.keys()) !== null;
  }

  /** The chunk-id hash of the repository: HMAC-SHA-256 under its chunk-id key when encrypted, else SHA-256. */
  async chunkHasher(): Promise<ChunkHasher> {
    return (await this.keys())?.chunkHasher ?? sha256Hasher;
  }

  /** The key files (no password needed). */
  listKeys(): Promise<KeyInfo[]> {
    return listKeys(this.raw);
  }

  /** Adds a key file for `password` (the repository must open with the current one); returns its id. */
  async addKey(password: string): Promise<string> {
    const keys = await this.#requireKeys();
    return addKey(this.raw, keys.masterKey(), password, this.#scrypt);
  }

  /** Removes key file `id` (or a unique prefix); never the last one, nor the one this process opened it with. */
  async removeKey(id: string): Promise<string> {
    const keys = await this.#requireKeys();
    return removeKey(this.raw, id, keys.keyId);
  }

  /**
   * Changes the password: a new key file for `password`, then the removal of the key file the current password
   * opened. No data is rewritten. Returns the new key's id.
   */
  async changePassword(password: string): Promise<{ added: string; removed: string }> {
    const keys = await this.#requireKeys();
    const added = await addKey(this.raw, keys.masterKey(), password, this.#scrypt);
    await this.raw.remove(`${KEYS_DIR}/${keys.keyId}.json`);
    return { added, removed: keys.keyId };
  }

  async #requireKeys(): Promise<RepositoryKeys> {
    await this.open();
    const keys = await this.keys();
    if (!keys) throw new CutpointError('BAD_USAGE', `repository ${this.location} is not encrypted: it has no keys (create an encrypted one with 'cutpoint repo init --encrypt')`);
    return keys;
  }

  /** Where the repository is, for messages. */
  get location(): string {
    return this.storage.location;
  }

  #where(path: string): string {
    return `${this.storage.location}/${path}`;
  }

  /**
   * Opens the repository, creating it (cutpoint.json) in an empty or missing directory. Refuses a non-empty
   * directory that is not a repository, and a repository of another format (`REPO_UNUSABLE`).
   */
  async init(now: Date = new Date(), options: InitOptions = {}): Promise<RepositoryConfig> {
    const existing = await this.#readConfig();
    if (existing) {
      await this.keys(); // an encrypted repository opens only with its password
      return existing;
    }
    const children = await this.storage.listChildren('');
    if (children.includes(layout.config())) return this.open(); // created concurrently
    // Key files alone: an encrypted repository being created by another process right now.
    if (children.some((c) => c !== KEYS_DIR)) {
      throw new CutpointError(
        'REPO_UNUSABLE',
        `${this.location} is not empty and is not a cutpoint repository (no ${layout.config()}; it holds ${children.slice(0, 3).join(', ')}${children.length > 3 ? ', …' : ''}): use an empty or new directory`,
        { location: this.location },
      );
    }
    const password = this.#password();
    const encrypt = options.encrypt ?? password !== undefined;
    let keys: RepositoryKeys | undefined;
    if (encrypt) {
      if (password === undefined) await unlock(this.raw, undefined); // throws REPO_PASSWORD_MISSING
      // The key file first: a cutpoint.json that says "encrypted" always has a key beside it.
      keys = await createMasterKey(this.raw, password!, this.#scrypt);
    }
    let config: RepositoryConfig = defaultRepositoryConfigV2(now, keys?.keyCheck, options.compression);
    await this.raw.writeFile(layout.config(), json(config));
    if (keys) {
      // Two first writes at once (no exclusive create on object stores): the cutpoint.json that stays names its
      // master key (`keyCheck`), and every open unlocks only a key file that matches it: a key created for a config
      // that was overwritten opens nothing (removed here when this process sees it lost).
      const kept = await this.#readConfig();
      if (kept && kept.encryption?.keyCheck !== keys.keyCheck) {
        await this.raw.remove(`${KEYS_DIR}/${keys.keyId}.json`);
        config = kept;
      }
      this.#keys = undefined;
    }
    this.#format = config.format;
    return config;
  }

  /**
   * Opens (creating it if the location is empty) a repository that new backups can be written to: a v1 repository
   * is refused (`REPO_UNUSABLE`), since this cutpoint writes v2 only; it stays listable, verifiable and restorable.
   */
  async initWritable(now: Date = new Date(), options: InitOptions = {}): Promise<RepositoryConfig> {
    const config = await this.init(now, options);
    if (config.format === REPOSITORY_FORMAT_V1) {
      throw new CutpointError(
        'REPO_UNUSABLE',
        `${this.location} is a ${REPOSITORY_FORMAT_V1} repository (written by an earlier cutpoint): new backups are written in ${REPOSITORY_FORMAT} only. Start a v2 repository in a new, empty location (--repo); this one stays listable, verifiable and restorable`,
        { location: this.location, format: config.format },
      );
    }
    return config;
  }

  /** Opens an existing repository; a directory without cutpoint.json is refused (`REPO_UNUSABLE`), naming it. */
  async open(): Promise<RepositoryConfig> {
    const config = await this.#readConfig();
    if (!config) {
      throw new CutpointError(
        'REPO_UNUSABLE',
        `${this.location} is not a cutpoint repository (no ${layout.config()}): point --repo at a repository, or at an empty or new directory for a first backup`,
        { location: this.location },
      );
    }
    await this.keys(); // an encrypted repository opens only with its password
    return config;
  }

  async #readConfig(): Promise<RepositoryConfig | undefined> {
    const config = await this.#readJson(layout.config(), 'repository configuration', repositoryConfigSchema);
    if (config && !READABLE_FORMATS.includes(config.format)) {
      throw new CutpointError(
        'REPO_UNUSABLE',
        `${this.#where(layout.config())}: repository format '${config.format}' is not supported by this cutpoint (it reads ${READABLE_FORMATS.join(' and ')})`,
        { location: this.location, format: config.format },
      );
    }
    if (config?.format === REPOSITORY_FORMAT) {
      // A v2 reader needs the chunking parameters: a cutpoint.json without them is not a v2 repository it can read.
      const v2 = repositoryConfigV2Schema.safeParse(config);
      if (!v2.success) {
        const { text, field } = describeIssues(v2.error);
        throw new CorruptFileError(this.#where(layout.config()), field, `repository configuration ${this.#where(layout.config())} is invalid: ${text}`);
      }
    }
    if (config) this.#format = config.format;
    return config;
  }

  /** The repository's format, read from cutpoint.json once (opening it). */
  async format(): Promise<string> {
    return this.#format ?? (await this.open()).format;
  }

  /** Reads and validates a JSON file; `undefined` when it does not exist; `REPO_CORRUPT` naming file and field. */
  async #readJson<S extends z.ZodType>(path: string, what: string, schema: S): Promise<z.infer<S> | undefined> {
    let raw: Buffer;
    try {
      raw = await this.storage.readFile(path);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'REPO_FILE_MISSING') return undefined;
      throw err;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new CorruptFileError(this.#where(path), '(the document)', `${what} ${this.#where(path)} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const { text, field } = describeIssues(parsed.error);
      throw new CorruptFileError(this.#where(path), field, `${what} ${this.#where(path)} is invalid: ${text}`);
    }
    return parsed.data;
  }

  /** Validates before writing: an invalid manifest is a bug in cutpoint (`INTERNAL`), never written. */
  async #writeJson<S extends z.ZodType>(path: string, what: string, schema: S, value: unknown): Promise<void> {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new CutpointError('INTERNAL', `refusing to write an invalid ${what} to ${this.#where(path)}: ${describeIssues(parsed.error).text}`);
    }
    await this.storage.writeFile(path, json(value));
  }

  #checkFormat(path: string, what: string, format: string): void {
    if (!READABLE_FORMATS.includes(format)) {
      throw new CorruptFileError(this.#where(path), 'format', `${what} ${this.#where(path)} has format '${format}', not one this cutpoint reads (${READABLE_FORMATS.join(', ')}): written by another version of cutpoint?`);
    }
  }

  // ---- manifests ----

  /** The cluster manifest of backup `id`, validated; `undefined` when the backup has none. */
  async readClusterManifest(id: string): Promise<ClusterManifest | undefined> {
    const path = layout.clusterManifest(validateBackupId(id));
    const m = await this.#readJson(path, 'cluster manifest', clusterManifestSchema);
    if (!m) return undefined;
    this.#checkFormat(path, 'cluster manifest', m.format);
    if (m.id !== id) throw new CorruptFileError(this.#where(path), 'id', `cluster manifest ${this.#where(path)} has id '${m.id}', not '${id}'`);
    return m;
  }

  /**
   * Writes the cluster manifest (atomically). Writing `status: "complete"` is the backup's commit point: it is
   * refused unless `finishedAt` and `commonTimestamp` are set and every replica-set manifest it names is readable.
   */
  async writeClusterManifest(m: ClusterManifest): Promise<void> {
    const path = layout.clusterManifest(validateBackupId(m.id));
    if (m.status === 'complete') {
      if (!m.finishedAt || !m.commonTimestamp) {
        throw new CutpointError('INTERNAL', `refusing to mark backup ${m.id} complete without finishedAt and commonTimestamp`);
      }
      for (const rs of m.replicaSets) {
        const rm = await this.readReplicaSetManifest(m.id, rs.name);
        if (!rm) {
          throw new CutpointError(
            'REPO_FILE_MISSING',
            `refusing to mark backup ${m.id} complete: replica-set manifest ${this.#where(layout.replicaSetManifest(m.id, rs.name))} is missing`,
          );
        }
        // v2: every chunk the backup needs is in a durable pack, listed by a durable index (docs/repository-format.md).
        if (rm.format === REPOSITORY_FORMAT) {
          const index = await this.chunkIndex(true);
          for (const f of rm.files) {
            const missing = (f.chunks ?? []).find((c) => !index.has(c));
            if (missing) throw new CutpointError('REPO_FILE_MISSING', `refusing to mark backup ${m.id} complete: chunk ${missing} of ${rs.name}/${f.path} is in no index of ${this.location}`);
          }
        }
      }
    }
    await this.#writeJson(path, 'cluster manifest', clusterManifestSchema, m);
  }

  /** The replica-set manifest of `rs` in backup `id`, validated; `undefined` when not written (yet). */
  async readReplicaSetManifest(id: string, rs: string): Promise<ReplicaSetManifest | undefined> {
    const path = layout.replicaSetManifest(validateBackupId(id), validateReplicaSetName(rs));
    const m = await this.#readJson(path, 'replica-set manifest', replicaSetManifestSchema);
    if (!m) return undefined;
    this.#checkFormat(path, 'replica-set manifest', m.format);
    if (m.name !== rs) throw new CorruptFileError(this.#where(path), 'name', `replica-set manifest ${this.#where(path)} names replica set '${m.name}', not '${rs}'`);
    return m;
  }

  /** Writes the replica-set manifest of backup `id` (atomically) under `m.name`. */
  async writeReplicaSetManifest(id: string, m: ReplicaSetManifest): Promise<void> {
    const path = layout.replicaSetManifest(validateBackupId(id), validateReplicaSetName(m.name));
    await this.#writeJson(path, 'replica-set manifest', replicaSetManifestSchema, m);
  }

  /**
   * Every backup under `backups/` with its cluster manifest, sorted by id. A directory whose manifest is missing or
   * unreadable does not stop the listing: it is reported in `problems` with the reason.
   */
  async listBackups(): Promise<BackupListing> {
    const listing: BackupListing = { backups: [], problems: [] };
    for (const id of await this.storage.listChildren('backups')) {
      const path = layout.clusterManifest(id);
      try {
        validateBackupId(id);
        const manifest = await this.readClusterManifest(id);
        if (manifest) listing.backups.push({ id, manifest });
        else listing.problems.push({ id, path, error: `${this.#where(path)} is missing (an incomplete backup, or not cutpoint's)` });
      } catch (err) {
        listing.problems.push({ id, path, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return listing;
  }

  // ---- data files ----

  /**
   * v2: the chunk index of the repository (every `index/` file), loaded once per Repository; `reload` reads it again
   * (the commit check, after this process's own packs were written).
   */
  chunkIndex(reload = false): Promise<ChunkIndex> {
    if (reload || !this.#index) {
      const loading = ChunkIndex.load(this.storage);
      // A failed load is not cached: the next call tries again.
      loading.catch(() => {
        if (this.#index === loading) this.#index = undefined;
      });
      this.#index = loading;
    }
    return this.#index;
  }

  /** v2: a writer for the chunks of one copy activity (repository/v2/chunk-writer.ts), over the repository's index. */
  async chunkWriter(): Promise<ChunkWriter> {
    // A v2 configuration was checked against its schema when it was read (writers are v2 only); none yet: defaults.
    const compression = ((await this.#readConfig()) as RepositoryConfigV2 | undefined)?.compression;
    const pack = new PackWriter(this.storage, compression ? { compressionLevel: compression.type === 'none' ? 'none' : compression.level } : {});
    return new ChunkWriter(await this.chunkIndex(), pack, await this.chunkHasher());
  }

  /**
   * The stored bytes of one file of a replica-set manifest, as a stream: v1 the stored copy, v2 its chunks read from
   * their packs, each checked against its id (a bad chunk fails naming chunk and pack). Callers check the file's size
   * against the manifest, and its SHA-256 when it has one (docs/repository-format.md section 9).
   */
  async openStoredFile(id: string, rs: string, file: ManifestFile): Promise<AsyncIterable<Buffer>> {
    if (file.chunks === undefined) return (await this.storage.openRead(this.dataFilePath(id, rs, file.path))) as AsyncIterable<Buffer>;
    // The file's chunks sit together in its packs: each pack is opened once for them, not once per chunk.
    const reader = new ChunkReader(this.storage, await this.chunkIndex(), await this.chunkHasher(), { keepPacksOpen: true });
    const chunks = file.chunks;
    return (async function* () {
      // One chunk ahead: the next pack read and decompression run while the caller writes this one.
      let next: Promise<Buffer> | undefined = chunks.length ? reader.read(chunks[0]!) : undefined;
      try {
        for (let i = 0; i < chunks.length; i++) {
          const current = next!;
          next = i + 1 < chunks.length ? reader.read(chunks[i + 1]!) : undefined;
          next?.catch(() => undefined);
          yield await current;
        }
      } finally {
        await next?.catch(() => undefined);
        await reader.close();
      }
    })();
  }

  /** Where a file of the dbpath (`relPath`, '/'-separated, relative to the dbpath) is stored. */
  dataFilePath(id: string, rs: string, relPath: string): string {
    return validatePath(layout.file(validateBackupId(id), validateReplicaSetName(rs), validatePath(relPath)));
  }

  /**
   * Removes the data files (`<rs>/files/`) of one replica set, or of every replica set of the backup, keeping every
   * manifest (docs/interfaces.md section 4: a failed or cancelled backup keeps its manifest; data may be removed).
   * Work files are kept too; see {@link removeWorkFiles}. Idempotent.
   */
  async removeBackupData(id: string, rs?: string): Promise<void> {
    for (const name of await this.#replicaSets(id, rs)) await this.storage.remove(`${layout.replicaSetDir(id, name)}/files`);
  }

  /**
   * Removes a whole backup (retention): the data and work files of every replica set, then the replica-set
   * directories with their manifests, then the cluster manifest, then the emptied directory. The cluster manifest
   * goes last, so a crash part-way leaves a backup that is still listed (and can be removed again). Idempotent.
   */
  async removeBackup(id: string): Promise<void> {
    const names = await this.#replicaSets(id);
    for (const name of names) {
      await this.storage.remove(`${layout.replicaSetDir(id, name)}/files`);
      await this.storage.remove(`${layout.replicaSetDir(id, name)}/.work`);
    }
    for (const name of names) await this.storage.remove(layout.replicaSetDir(id, name));
    await this.storage.remove(layout.clusterManifest(id));
    await this.storage.remove(layout.backupDir(id));
  }

  /** Removes the work files (`<rs>/.work/`) of one or every replica set of the backup. Idempotent. */
  async removeWorkFiles(id: string, rs?: string): Promise<void> {
    for (const name of await this.#replicaSets(id, rs)) await this.storage.remove(this.workDir(id, name));
  }

  async #replicaSets(id: string, rs?: string): Promise<string[]> {
    validateBackupId(id);
    if (rs !== undefined) return [validateReplicaSetName(rs)];
    const names = await this.storage.listChildren(layout.backupDir(id));
    return names.filter((n) => n !== posix.basename(layout.clusterManifest(id)));
  }

  // ---- work files ----

  /** The directory of the work files of one replica set (`<rs>/.work`). */
  workDir(id: string, rs: string): string {
    return posix.dirname(layout.work(validateBackupId(id), validateReplicaSetName(rs), 'x'));
  }

  /** The server's file list of replica set `rs` (see {@link FileList}). */
  fileList(id: string, rs: string): FileList {
    return new FileList(this.storage, validateBackupId(id), validateReplicaSetName(rs));
  }

  /** Records what copy batch `batch` stored (atomically; a retried batch overwrites its own result). */
  async writeBatchResult(id: string, rs: string, batch: number, result: BatchResult): Promise<void> {
    await this.#writeJson(this.#batchPath(id, rs, batch), 'batch result', batchResultSchema, result);
  }

  /** The result of copy batch `batch`, validated; `undefined` when the batch has not finished. */
  async readBatchResult(id: string, rs: string, batch: number): Promise<BatchResult | undefined> {
    return this.#readJson(this.#batchPath(id, rs, batch), 'batch result', batchResultSchema);
  }

  /** The numbers of the batches that have a result, ascending. */
  async listBatchResults(id: string, rs: string): Promise<number[]> {
    const names = await this.storage.listChildren(this.workDir(id, rs));
    return names
      .map((n) => BATCH_FILE.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  #batchPath(id: string, rs: string, batch: number): string {
    if (!Number.isSafeInteger(batch) || batch < 0) throw new CutpointError('INTERNAL', `batch number must be a non-negative integer, got ${batch}`);
    return layout.work(validateBackupId(id), validateReplicaSetName(rs), `batch-${batch}.json`);
  }

  /**
   * Builds the replica-set manifest of `rs` from its file list and every batch result, with files in file-list
   * order. Refuses (`REPO_CORRUPT`, naming what is wrong) unless every listed file has exactly one result, with the
   * listed path and kind, and every data file listed with a size was stored at exactly that size. Does not write.
   */
  async assembleReplicaSetManifest(id: string, rs: string, meta: ReplicaSetMeta): Promise<ReplicaSetManifest> {
    const list = this.fileList(id, rs);
    const info = await list.info();
    if (!info) {
      throw new CutpointError('REPO_FILE_MISSING', `cannot assemble the manifest of ${rs} in backup ${id}: no file list at ${this.#where(list.path)}`);
    }
    const where = `replica set ${rs} of backup ${id} (${this.#where(this.workDir(id, rs))})`;
    const byIndex: Array<BatchFile | undefined> = new Array<BatchFile | undefined>(info.count);
    const fromBatch = new Int32Array(info.count);
    for (const n of await this.listBatchResults(id, rs)) {
      const result = await this.readBatchResult(id, rs, n);
      for (const f of result?.files ?? []) {
        if (f.index >= info.count) {
          throw new CorruptFileError(this.#where(this.#batchPath(id, rs, n)), 'files[].index', `${where}: batch ${n} has a result for file index ${f.index}, but the file list has ${info.count} entries`);
        }
        const seen = byIndex[f.index];
        // A journal file is copied whole again after a later extend (it grew): the later batch's copy supersedes.
        const recopied = seen?.kind === 'journal' && f.kind === 'journal' && seen.path === f.path && n > fromBatch[f.index]!;
        if (seen && !recopied && (seen.path !== f.path || seen.size !== f.size || seen.sha256 !== f.sha256 || String(seen.chunks) !== String(f.chunks) || seen.kind !== f.kind)) {
          throw new CorruptFileError(
            this.#where(this.#batchPath(id, rs, n)),
            'files[].index',
            `${where}: file ${f.index} (${f.path}) has different results in batches ${fromBatch[f.index]} and ${n}`,
          );
        }
        byIndex[f.index] = f;
        fromBatch[f.index] = n;
      }
    }
    const missing: number[] = [];
    for (let i = 0; i < byIndex.length; i++) if (!byIndex[i]) missing.push(i);
    if (missing.length) {
      throw new CorruptFileError(
        this.#where(this.workDir(id, rs)),
        'batch results',
        `${where}: no copy result for ${missing.length} of ${info.count} listed files (indexes ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''})`,
      );
    }
    for await (const e of list.entries()) {
      const f = byIndex[e.index]!;
      if (f.path !== e.path || f.kind !== e.kind) {
        throw new CorruptFileError(this.#where(this.#batchPath(id, rs, fromBatch[e.index]!)), 'files[].path', `${where}: file ${e.index} is listed as ${e.kind} ${e.path} but its result says ${f.kind} ${f.path}`);
      }
      if (e.size >= 0 && f.size !== e.size) {
        throw new CorruptFileError(this.#where(this.#batchPath(id, rs, fromBatch[e.index]!)), 'files[].size', `${where}: ${e.path} was stored with ${f.size} bytes, but ${e.size} were listed`);
      }
    }
    const files = byIndex.map((f) => ({ path: f!.path, size: f!.size, sha256: f!.sha256, kind: f!.kind, ...(f!.chunks ? { chunks: f!.chunks } : {}) }));
    return { format: REPOSITORY_FORMAT, name: rs, ...meta, files };
  }
}

/**
 * The repository at a location, a directory or `s3://<bucket>/<prefix>` (repository/storage-at.ts), with transient
 * errors retried: what the activities and the CLI use.
 */
export function fsRepository(root: string, options: StorageAtOptions & { retry?: RetryOptions } & RepositoryOptions = {}): Repository {
  return new Repository(new RetryStorage(storageAt(root, options), options.retry), options);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
